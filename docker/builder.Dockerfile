# syntax=docker/dockerfile:1
# The whole Flowline workspace, built once for every image (context: the repository root).
#   docker build -t flowline/builder:dev -f docker/builder.Dockerfile .
FROM node:20-bookworm-slim AS build
ENV DEBIAN_FRONTEND=noninteractive NX_DAEMON=false NX_NO_CLOUD=true \
    # node-gyp builds the DPDK addon against this image's own Node.js headers (no download).
    npm_config_nodedir=/usr/local
# Debian's DPDK 22.11 headers for the native addon, and the compilers node-gyp needs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential python3 pkg-config libdpdk-dev libnuma-dev libpcap-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Manifests first: the npm ci layer is reused while only sources change.
COPY package.json package-lock.json nx.json tsconfig.base.json vitest.shared.mjs ./
COPY packages ./packages
COPY services ./services
COPY cni-plugin ./cni-plugin
COPY device-plugin ./device-plugin
COPY tools ./tools
RUN npm ci --no-audit --no-fund \
 && npx nx run-many -t build --outputStyle=static \
 && npm prune --omit=dev --no-audit --no-fund
# The Debian packages owning the shared libraries the DPDK addon links: the runtime image
# installs exactly these (with Debian's dpdk package and the PMDs) so the addon loads.
RUN mkdir -p .flowline \
 && addons="$(find packages -path '*/build/Release/*.node' -type f)" \
 && { [ -n "$addons" ] || { echo "no native addon under packages/*/build/Release" >&2; exit 1; }; } \
 && ldd $addons | awk '/=> \// { print $3 }' | sort -u \
    | xargs -r dpkg -S 2>/dev/null | cut -d: -f1 | sort -u | grep '^librte-' \
    > .flowline/dpdk-runtime-packages \
 && cat .flowline/dpdk-runtime-packages
