#!/usr/bin/env bash
# Starts OVS-DPDK in a container (the flowline chart's DaemonSet): ovsdb-server and ovs-vswitchd
# in the foreground of this script, bridge br-flowline with datapath_type=netdev, and the OVSDB
# and OpenFlow listeners for the chain controller (exactly those asked for: any other left in
# conf.db by an earlier run is removed before either daemon could open it). Settings (environment):
#   FLOWLINE_OVS_BRIDGE        bridge name (br-flowline)
#   FLOWLINE_OVS_RUN_DIR       OVS run dir, a host folder (db.sock for the CNI plugin)
#   FLOWLINE_OVS_DB_DIR        where conf.db lives (a host folder: it survives restarts)
#   FLOWLINE_OVS_PMD_CPU_MASK  "auto" (every allowed CPU but the first) or a hex mask
#   FLOWLINE_OVS_PMD_MAXSLEEP  other_config:pmd-maxsleep in microseconds
#   FLOWLINE_OVS_SOCKET_MEM    other_config:dpdk-socket-mem (MiB per NUMA node)
#   FLOWLINE_OVS_PCI_ALLOW     comma-separated PCI addresses; empty: --no-pci
#   FLOWLINE_OVS_PCI_FROM_ENV  name of a PCIDEVICE_* variable set by the device plugin
#   FLOWLINE_OVS_DPDK_EXTRA    further EAL arguments
#   FLOWLINE_OVSDB_REMOTE      e.g. pssl:6640:10.0.0.5 or ptcp:6640:10.0.0.5; an IPv6 address is
#                              bracketed here (pssl:6640:[fd00::5], as OVS reads it); empty: none,
#                              and the managers conf.db holds are deleted (del-manager)
#   FLOWLINE_OPENFLOW_LISTEN   e.g. pssl:6653:10.0.0.5 or ptcp:6653:10.0.0.5, the same way; empty:
#                              none, and the bridge's controllers are deleted (del-controller)
#   FLOWLINE_OVS_TLS_DIR       for pssl: tls.key, tls.crt (this switch) and ca.crt (the peers' CA)
#   FLOWLINE_OVS_CPUS          the CPU list to use instead of this process's affinity (tests)
#   FLOWLINE_OVS_UNDERLAY_PORT     the underlay for tunnels between node switches (issue 19):
#                                  a kernel interface (e.g. eth1, a port of OVS's own), or
#                                  dpdk:<devargs> (a NIC's PCI address, or net_af_packet...);
#                                  empty: no underlay (chains stay within a node)
#   FLOWLINE_OVS_UNDERLAY_ADDRESS  the node's underlay address/prefix on br-underlay's internal
#                                  port, or "interface": move the kernel interface's IPv4 address
#                                  there (OVS's userspace-tunnelling layout)
#   FLOWLINE_OVS_UNDERLAY_MTU      mtu_request of the underlay port and bridge (default: as is)
#   FLOWLINE_OVS_UNDERLAY_BRIDGE   its bridge (br-underlay)
#   FLOWLINE_LOG_LEVEL         debug, info (default), warn or error: the daemons' console log
#                              level (-vconsole:dbg, info, warn, err)
#   FLOWLINE_OVS_LOG_DIR       OVS's log dir (/var/log/openvswitch)
# `start.sh --print-config` prints the other_config it would set, and starts nothing.
set -euo pipefail

BRIDGE="${FLOWLINE_OVS_BRIDGE:-br-flowline}"
RUN_DIR="${FLOWLINE_OVS_RUN_DIR:-/var/run/openvswitch}"
DB_DIR="${FLOWLINE_OVS_DB_DIR:-/var/lib/flowline/ovs}"
LOG_DIR="${FLOWLINE_OVS_LOG_DIR:-/var/log/openvswitch}"

log() { printf '{"component":"ovs-dpdk","msg":"%s"}\n' "$*" >&2; }
die() { log "error: $1"; exit 1; }

# "0-2,5" -> "0 1 2 5"
expand_cpus() {
  local part c out=()
  IFS=',' read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
      for ((c = BASH_REMATCH[1]; c <= BASH_REMATCH[2]; c++)); do out+=("$c"); done
    elif [[ $part =~ ^[0-9]+$ ]]; then
      out+=("$part")
    else
      die "bad CPU list \"$1\""
    fi
  done
  echo "${out[@]}"
}

# "1 2" -> "0x6"
cpu_mask() {
  local cpu mask=0
  for cpu in "$@"; do mask=$((mask | (1 << cpu))); done
  printf '0x%x' "$mask"
}

cpus_list="${FLOWLINE_OVS_CPUS:-$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)}"
read -ra cpus <<<"$(expand_cpus "$cpus_list")"
[ "${#cpus[@]}" -ge 1 ] || die "no CPUs allowed"
lcore_mask="$(cpu_mask "${cpus[0]}")"
pmd_mask="${FLOWLINE_OVS_PMD_CPU_MASK:-auto}"
if [ "$pmd_mask" = auto ]; then
  if [ "${#cpus[@]}" -ge 2 ]; then
    pmd_mask="$(cpu_mask "${cpus[@]:1}")"
  else
    pmd_mask="$lcore_mask" # one CPU: PMD and main thread share it (pmd-maxsleep helps)
  fi
fi

pci="${FLOWLINE_OVS_PCI_ALLOW:-}"
if [ -n "${FLOWLINE_OVS_PCI_FROM_ENV:-}" ]; then
  pci="${!FLOWLINE_OVS_PCI_FROM_ENV:-}"
  [ -n "$pci" ] || die "$FLOWLINE_OVS_PCI_FROM_ENV is empty: the device plugin gave OVS no device (check its pool config)"
fi
extra=()
if [ -z "$pci" ]; then
  extra+=(--no-pci)
else
  IFS=',' read -ra addrs <<<"$pci"
  for a in "${addrs[@]}"; do extra+=(-a "$a"); done
fi
read -ra more <<<"${FLOWLINE_OVS_DPDK_EXTRA:-}"
extra+=("${more[@]}")

config=(
  "other_config:dpdk-init=true"
  "other_config:dpdk-lcore-mask=$lcore_mask"
  "other_config:pmd-cpu-mask=$pmd_mask"
  "other_config:dpdk-socket-mem=${FLOWLINE_OVS_SOCKET_MEM:-512}"
  "other_config:pmd-maxsleep=${FLOWLINE_OVS_PMD_MAXSLEEP:-0}"
  "other_config:dpdk-extra=\"${extra[*]}\""
)
# The underlay (issue 19), checked before anything starts: see the FLOWLINE_OVS_UNDERLAY_* above.
underlay_port="${FLOWLINE_OVS_UNDERLAY_PORT:-}"
ubr="${FLOWLINE_OVS_UNDERLAY_BRIDGE:-br-underlay}"
uaddr="${FLOWLINE_OVS_UNDERLAY_ADDRESS:-}"
uname=""
uport=()
umtu=()
if [ -n "$underlay_port" ]; then
  [ -n "$uaddr" ] || die "FLOWLINE_OVS_UNDERLAY_ADDRESS is empty: give address/prefix or \"interface\""
  if [[ $underlay_port == dpdk:* ]]; then
    uname="underlay0"
    uport=(-- set interface "$uname" type=dpdk "options:dpdk-devargs=${underlay_port#dpdk:}")
    [ "$uaddr" != interface ] || die "FLOWLINE_OVS_UNDERLAY_ADDRESS=interface needs a kernel interface, not $underlay_port"
  else
    uname="$underlay_port"
    [[ $uname =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "FLOWLINE_OVS_UNDERLAY_PORT \"$uname\" is not an interface name"
    ip link show dev "$uname" >/dev/null 2>&1 || die "FLOWLINE_OVS_UNDERLAY_PORT: no interface $uname on this node"
  fi
  if [ "$uaddr" = interface ]; then
    # empty after a restart: start.sh moved it to the bridge, and OVSDB remembers it
    uaddr="$(ip -o -4 addr show dev "$uname" scope global | awk '{ print $4; exit }')"
  fi
  [ -z "$uaddr" ] || [[ $uaddr =~ ^[0-9.]+/[0-9]+$|^[0-9a-fA-F:]+/[0-9]+$ ]] ||
    die "FLOWLINE_OVS_UNDERLAY_ADDRESS \"$uaddr\" is not address/prefix"
  if [ -n "${FLOWLINE_OVS_UNDERLAY_MTU:-}" ]; then
    [[ $FLOWLINE_OVS_UNDERLAY_MTU =~ ^[0-9]+$ ]] || die "FLOWLINE_OVS_UNDERLAY_MTU must be a number"
    umtu=(-- set interface "$uname" "mtu_request=$FLOWLINE_OVS_UNDERLAY_MTU" -- set interface "$ubr" "mtu_request=$FLOWLINE_OVS_UNDERLAY_MTU")
  fi
fi

case "${FLOWLINE_LOG_LEVEL:-info}" in
  debug) vlog=dbg ;;
  info) vlog=info ;;
  warn) vlog=warn ;;
  error) vlog=err ;;
  *) die "FLOWLINE_LOG_LEVEL \"$FLOWLINE_LOG_LEVEL\" is not debug, info, warn or error" ;;
esac

# A listener target with an IPv6 address gets the brackets OVS needs (ovsdb(7): "[host]"):
# pssl:6640:fd00::5 -> pssl:6640:[fd00::5]. Anything else (IPv4, already bracketed, no address,
# punix:...) is passed on as it is.
listen_target() {
  local re='^(p(ssl|tcp)):([0-9]+):([^][]*:[^][]*)$'
  if [[ $1 =~ $re ]]; then
    printf '%s:%s:[%s]' "${BASH_REMATCH[1]}" "${BASH_REMATCH[3]}" "${BASH_REMATCH[4]}"
  else
    printf '%s' "$1"
  fi
}
ovsdb_remote="$(listen_target "${FLOWLINE_OVSDB_REMOTE:-}")"
openflow_listen="$(listen_target "${FLOWLINE_OPENFLOW_LISTEN:-}")"

if [ "${1:-}" = --print-config ]; then
  printf '%s\n' "${config[@]}"
  exit 0
fi

mkdir -p "$RUN_DIR" "$DB_DIR" "$LOG_DIR"
export OVS_RUNDIR="$RUN_DIR" OVS_DBDIR="$DB_DIR" OVS_LOGDIR="$LOG_DIR"
db="$DB_DIR/conf.db"
schema=/usr/share/openvswitch/vswitch.ovsschema
if [ ! -f "$db" ]; then
  ovsdb-tool create "$db" "$schema"
elif [ "$(ovsdb-tool needs-conversion "$db" "$schema")" = yes ]; then
  ovsdb-tool convert "$db" "$schema"
fi
rm -f "$RUN_DIR"/ovsdb-server.pid "$RUN_DIR"/ovs-vswitchd.pid

# SSL settings come from the database's SSL table (set-ssl below), as ovs-ctl starts it. The
# managers' remotes (manager_options) are added once they are the ones asked for (below): a
# listener conf.db kept from an earlier run is never opened.
ovsdb-server "$db" --remote="punix:$RUN_DIR/db.sock" \
  --private-key=db:Open_vSwitch,SSL,private_key --certificate=db:Open_vSwitch,SSL,certificate \
  --ca-cert=db:Open_vSwitch,SSL,ca_cert \
  --pidfile="$RUN_DIR/ovsdb-server.pid" --unixctl="$RUN_DIR/ovsdb-server.ctl" "-vconsole:$vlog" &
ovsdb_pid=$!
for _ in $(seq 50); do [ -S "$RUN_DIR/db.sock" ] && break; sleep 0.1; done
ovs-vsctl --no-wait init
if [ -n "${FLOWLINE_OVS_TLS_DIR:-}" ]; then
  for f in tls.key tls.crt ca.crt; do
    [ -r "$FLOWLINE_OVS_TLS_DIR/$f" ] || die "FLOWLINE_OVS_TLS_DIR: $FLOWLINE_OVS_TLS_DIR/$f is missing"
  done
  ovs-vsctl --no-wait set-ssl "$FLOWLINE_OVS_TLS_DIR/tls.key" "$FLOWLINE_OVS_TLS_DIR/tls.crt" "$FLOWLINE_OVS_TLS_DIR/ca.crt"
else
  ovs-vsctl --no-wait del-ssl
fi
ovs-vsctl --no-wait set Open_vSwitch . "${config[@]}"
log "dpdk-extra: ${extra[*]}; lcore mask $lcore_mask; PMD mask $pmd_mask"

# The bridge: every pod interface is a dpdkvhostuserclient port of it. fail_mode=secure: no
# learning-switch fallback; only the chain controller's OpenFlow rules move packets. Its
# listeners, and OVSDB's, are set before ovs-vswitchd starts and before ovsdb-server reads
# manager_options: exactly those asked for, and with none asked for, none. conf.db is on the
# host and keeps what an earlier run set (say ptcp ones, before the chain controller was
# turned off): set-manager and set-controller replace them, del-manager and del-controller
# remove them.
ovs-vsctl --no-wait --may-exist add-br "$BRIDGE" \
  -- set bridge "$BRIDGE" datapath_type=netdev fail_mode=secure
if [ -n "$ovsdb_remote" ]; then
  ovs-vsctl --no-wait set-manager "$ovsdb_remote"
else
  ovs-vsctl --no-wait del-manager
fi
if [ -n "$openflow_listen" ]; then
  ovs-vsctl --no-wait set-controller "$BRIDGE" "$openflow_listen"
else
  ovs-vsctl --no-wait del-controller "$BRIDGE"
fi
ovs-appctl -t "$RUN_DIR/ovsdb-server.ctl" ovsdb-server/add-remote db:Open_vSwitch,Open_vSwitch,manager_options
log "listeners: OVSDB ${ovsdb_remote:-none}, OpenFlow ${openflow_listen:-none}"

ovs-vswitchd "unix:$RUN_DIR/db.sock" --mlockall --pidfile="$RUN_DIR/ovs-vswitchd.pid" "-vconsole:$vlog" &
vswitchd_pid=$!

stop() {
  log "stopping"
  ovs-appctl -t "$RUN_DIR/ovs-vswitchd.$vswitchd_pid.ctl" exit 2>/dev/null || kill "$vswitchd_pid" 2>/dev/null || true
  kill "$ovsdb_pid" 2>/dev/null || true
  wait || true
  exit "${1:-0}"
}
trap stop TERM INT

# Waits for ovs-vswitchd to have made the bridge (set above).
ovs-vsctl --timeout=60 --may-exist add-br "$BRIDGE" \
  -- set bridge "$BRIDGE" datapath_type=netdev fail_mode=secure
log "bridge $BRIDGE ready"

# The underlay (packages/ovs underlay.ts does the same for tests): br-underlay with the node's
# underlay port, its internal port holding the underlay address, from which OVS routes and
# ARPs for the Geneve tunnels to the other nodes' switches. The address is recorded in
# Open_vSwitch external_ids:flowline-underlay-address, where the chain controller reads each
# node's tunnel endpoint (it need not be the node's InternalIP).
if [ -n "$underlay_port" ]; then
  [ -n "$uaddr" ] || uaddr="$(ovs-vsctl --if-exists get Open_vSwitch . external_ids:flowline-underlay-address | tr -d '"')"
  if [ -z "$uaddr" ]; then
    log "error: the underlay interface $uname has no IPv4 address to take"
    stop 1
  fi
  ovs-vsctl --timeout=60 --may-exist add-br "$ubr" -- set bridge "$ubr" datapath_type=netdev \
    -- --may-exist add-port "$ubr" "$uname" "${uport[@]}" "${umtu[@]}" \
    -- set Open_vSwitch . "external_ids:flowline-underlay-address=$uaddr"
  if [[ $underlay_port != dpdk:* ]]; then
    ip addr flush dev "$uname" scope global
    ip link set "$uname" up
  fi
  ip addr replace "$uaddr" dev "$ubr"
  ip link set "$ubr" up
  log "underlay $ubr ready: port $uname, address $uaddr"
fi

# Either daemon exiting ends the container, so kubelet restarts both.
set +e
wait -n "$ovsdb_pid" "$vswitchd_pid"
rc=$?
log "a daemon exited (status $rc)"
stop
