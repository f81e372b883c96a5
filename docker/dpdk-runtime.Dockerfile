# syntax=docker/dockerfile:1
# Base of the NF images: Node.js 20 on Debian bookworm with Debian's DPDK runtime.
#   docker build -t flowline/dpdk-runtime:dev -f docker/dpdk-runtime.Dockerfile .
ARG BUILDER=flowline/builder:dev
FROM ${BUILDER} AS build

FROM node:20-bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /app/.flowline/dpdk-runtime-packages /tmp/dpdk-runtime-packages
# dpdk: Debian's DPDK (dpdk-devbind, dpdk-testpmd for debugging). librte-*: the libraries the
# addon links (from the builder) and the poll-mode drivers Flowline opens: virtio-user (vhost-user
# ports), AF_XDP and AF_PACKET (kernel VFs), Intel iavf/i40e/ice and Mellanox mlx5 VFs, the
# ring mempool driver, and the IPsec gateway's software crypto devices (intel-ipsec-mb's
# aesni_gcm and aesni_mb, openssl). DPDK loads PMDs from its plugin folder, so they must be
# installed.
# hadolint ignore=DL3008,SC2046
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      dpdk \
      librte-net-virtio23 librte-net-af-xdp23 librte-net-af-packet23 librte-net-iavf23 \
      librte-net-i40e23 librte-net-ice23 librte-net-mlx5-23 librte-mempool-ring23 \
      librte-bus-pci23 librte-bus-vdev23 librte-crypto-ipsec-mb23 librte-crypto-openssl23 \
      $(cat /tmp/dpdk-runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /tmp/dpdk-runtime-packages
COPY docker/run-bin.mjs /usr/local/lib/flowline/run-bin.mjs
COPY docker/nf-entrypoint.sh /usr/local/bin/flowline-nf
WORKDIR /app
# Root: Kubernetes grants added capabilities (IPC_LOCK to lock hugepage and DMA memory; NET_RAW
# and NET_ADMIN for kernel-VF ports) only to uid 0, as it has no ambient capabilities, and
# /dev/vfio/<group> and the hugetlbfs mount are root's. The network-function chart drops every
# other capability, forbids privilege escalation and mounts the root filesystem read-only.
USER 0
EXPOSE 50051 9464
