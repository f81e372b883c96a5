#!/bin/sh
# Entry of the NF images: DPDK lcores default to the CPUs this container may run on (with the
# static CPU manager, the exclusive cores kubelet pinned it to), then the NF's own start file.
set -eu
if [ -z "${FLOWLINE_LCORES:-}" ]; then
  FLOWLINE_LCORES="$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)"
  export FLOWLINE_LCORES
fi
exec node "${FLOWLINE_RUN_BIN:-/usr/local/lib/flowline/run-bin.mjs}" "$@"
