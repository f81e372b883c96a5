#!/usr/bin/env bash
# Flowline set-up: idempotent, for root on Debian 12 / Ubuntu. `npm test` and `npm run demo`
# run it first. On a ready machine it only checks, and finishes in seconds.
#
# Settings (environment):
#   FLOWLINE_HUGEPAGES=1536        2 MiB hugepages to reserve (3 GiB); 0 leaves them alone
#   FLOWLINE_HUGEPAGE_MOUNT=/dev/hugepages  a hugetlbfs of 2 MiB pages (mounted when absent)
#   FLOWLINE_SKIP_APT=1            do not install system packages (they must be present)
#   FLOWLINE_SKIP_BUILD=1          do not run npm ci / build
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HUGEPAGES="${FLOWLINE_HUGEPAGES:-1536}"
HUGEPAGE_MOUNT="${FLOWLINE_HUGEPAGE_MOUNT:-/dev/hugepages}"
# Where the kernel's files are read (the set-up test points them at a fake tree).
SYSFS="${FLOWLINE_SETUP_SYSFS:-/sys}"
PROCFS="${FLOWLINE_SETUP_PROC:-/proc}"
STEP="start"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
fail() {
  printf '\033[31m[setup] step "%s" failed:\033[0m %s\n' "$STEP" "$1" >&2
  [ -n "${2:-}" ] && printf '[setup] how to fix: %s\n' "$2" >&2
  exit 1
}
trap 'rc=$?; [ $rc -ne 0 ] && [ "$STEP" != done ] && printf "[setup] step \"%s\" failed (exit %s); see the output above\n" "$STEP" "$rc" >&2' EXIT

# System packages the project needs. dpdk: dpdk-testpmd (benchmark reference); libdpdk-dev and
# pkg-config: the native addon; openvswitch-switch-dpdk: the userspace switch;
# containernetworking-plugins: reference IPAM (host-local) for the CNI plugin; clang and
# libclang-rt-14-dev: libFuzzer with AddressSanitizer; clang-format: the C style check in
# packages/dpdk's lint; golang-go and golang-github-appc-cni-dev
# (Debian's CNI library sources): cnitool, the libcni client the CNI plugin's tests build offline;
# podman, runc and busybox-static: the CNI plugin's podman test (rootful, CNI backend, runc, an
# image imported from busybox-static: nothing is pulled); nftables: the Linux kernel peer of the
# NF-bound benchmark (tools/bench); python3-scapy: the independent ESP peer of packages/dpdk's ESP
# stage tests (scapy.layers.ipsec; this kernel has no ESP to be the peer). libdpdk-dev brings
# the crypto PMDs the ESP stage uses (crypto_ipsec_mb, crypto_openssl) and rte_ipsec.
APT_PACKAGES=(
  dpdk dpdk-dev libdpdk-dev pkg-config build-essential python3 libnuma-dev libpcap-dev
  openvswitch-switch-dpdk openvswitch-common containernetworking-plugins iproute2 procps
  clang libclang-rt-14-dev clang-format shellcheck unzip golang-go golang-github-appc-cni-dev
  podman runc busybox-static nftables python3-scapy
)

STEP="check host"
[ "$(id -u)" -eq 0 ] || fail "Flowline's set-up needs root (hugepages, packages, network namespaces)" \
  "run it as root, e.g. sudo npm test"
command -v node >/dev/null || fail "node is not installed" "install Node.js 20 or newer"
node -e 'const [M,m]=process.versions.node.split(".").map(Number); process.exit(M>20||(M===20&&m>=6)?0:1)' \
  || fail "Node.js $(node --version) is too old" "install Node.js 20.6 or newer"

STEP="system packages"
if [ "${FLOWLINE_SKIP_APT:-0}" != 1 ]; then
  command -v apt-get >/dev/null || fail "apt-get not found: this set-up supports Debian 12 and Ubuntu" \
    "install the packages by hand: ${APT_PACKAGES[*]}; then set FLOWLINE_SKIP_APT=1"
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || fail "apt-get update failed" "check the network and /etc/apt/sources.list"
    apt-get install -y -q --no-install-recommends "${missing[@]}" \
      || fail "apt-get install failed for: ${missing[*]}" "run the apt-get command by hand to see why"
  else
    say "system packages present"
  fi
fi
pkg-config --exists libdpdk || fail "pkg-config cannot find libdpdk" "apt-get install libdpdk-dev pkg-config"

STEP="hugepages"
[[ $HUGEPAGES =~ ^[0-9]+$ ]] || fail "FLOWLINE_HUGEPAGES=\"$HUGEPAGES\" is not a number of 2 MiB pages" \
  "set it to a count, e.g. 1536 (3 GiB), or 0 to leave hugepages alone"
# /proc/mounts names a mount point without a trailing slash.
[ "$HUGEPAGE_MOUNT" = / ] || HUGEPAGE_MOUNT="${HUGEPAGE_MOUNT%/}"
# 2 MiB pages by their own counters: /proc/sys/vm/nr_hugepages counts pages of the kernel's
# default size, which is 1 GiB on hosts booted with default_hugepagesz=1G.
pages2m="$SYSFS/kernel/mm/hugepages/hugepages-2048kB"
if [ "$HUGEPAGES" -gt 0 ]; then
  [ -f "$pages2m/nr_hugepages" ] || fail "this kernel offers no 2 MiB hugepages ($pages2m is missing)" \
    "use a kernel with CONFIG_HUGETLBFS on x86-64 or arm64"
  current=$(cat "$pages2m/nr_hugepages")
  if [ "$current" -lt "$HUGEPAGES" ]; then
    say "reserving $HUGEPAGES 2 MiB hugepages (had $current)"
    echo "$HUGEPAGES" > "$pages2m/nr_hugepages" \
      || fail "cannot write $pages2m/nr_hugepages" "run as root on a host (not an unprivileged container)"
    got=$(cat "$pages2m/nr_hugepages")
    if [ "$got" -lt "$HUGEPAGES" ]; then
      # A part is no use to the tests and pins memory: give it back.
      echo "$current" > "$pages2m/nr_hugepages" || true
      fail "the kernel gave $got of $HUGEPAGES 2 MiB hugepages (memory fragmented?); back to $current" \
        "free memory, or set FLOWLINE_HUGEPAGES lower, or reserve them at boot (hugepagesz=2M hugepages=$HUGEPAGES)"
    fi
  else
    say "hugepages reserved: $current"
  fi
  free=$(cat "$pages2m/free_hugepages" 2>/dev/null || echo "$HUGEPAGES")
  if [ "$free" -lt "$HUGEPAGES" ]; then
    say "warning: only $free of them are free: running DPDK processes, or files a stopped one left in $HUGEPAGE_MOUNT, hold the rest (npm run flowline -- down removes a node's)"
  fi
fi
# The mount's pages must be 2 MiB ones (its options say pagesize=2M): a hugetlbfs of 1 GiB pages at
# the path would leave DPDK without the pages reserved above.
options=$(awk -v m="$HUGEPAGE_MOUNT" '$2 == m && $3 == "hugetlbfs" { o = $4 } END { print o }' \
  "$PROCFS/mounts")
if [ -z "$options" ]; then
  say "mounting hugetlbfs on $HUGEPAGE_MOUNT"
  mkdir -p "$HUGEPAGE_MOUNT"
  mount -t hugetlbfs -o pagesize=2M nodev "$HUGEPAGE_MOUNT" \
    || fail "cannot mount hugetlbfs on $HUGEPAGE_MOUNT" "check that the kernel has CONFIG_HUGETLBFS"
elif [[ ,$options, != *,pagesize=2M,* ]]; then
  fail "the hugetlbfs on $HUGEPAGE_MOUNT is not of 2 MiB pages ($options)" \
    "mount one that is elsewhere (mount -t hugetlbfs -o pagesize=2M nodev /mnt/huge-2M) and set FLOWLINE_HUGEPAGE_MOUNT to it"
else
  say "hugetlbfs mounted on $HUGEPAGE_MOUNT"
fi

cd "$ROOT"
if [ "${FLOWLINE_SKIP_BUILD:-0}" != 1 ]; then
  STEP="npm ci"
  # npm ci wipes node_modules, so it runs only when the lock changed since the last one.
  lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
  stamp=node_modules/.flowline-npm-ci
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
    say "installing npm dependencies (npm ci)"
    npm ci --no-audit --no-fund || fail "npm ci failed" "delete node_modules and run npm ci by hand to see why"
    echo "$lock_sum" > "$stamp"
  else
    say "npm dependencies current"
  fi

  STEP="build"
  say "building (nx run-many -t build; native code included)"
  NX_DAEMON=false NX_NO_CLOUD=true npx nx run-many -t build --outputStyle=static \
    || fail "the build failed" "run: npx nx run-many -t build, and read the first error"
fi

STEP=done
say "ready"
