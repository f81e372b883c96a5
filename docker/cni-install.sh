#!/bin/sh
# Installs the flowline CNI plugin on the host, then keeps it installed (a DaemonSet container).
#
# Hosts have no Node.js, so the executable <bin dir>/flowline is a small sh wrapper that runs the
# plugin's one-file bundle with a Node.js runtime copied beside it into <install dir>. That node
# binary is the one of this image (Debian bookworm's glibc and libstdc++6; any host with apt has
# them). Every file is written to a temporary name and renamed, so a runtime never executes a half
# copied plugin.
#
# FLOWLINE_CNI_BIN_DIR      where the host's CNI executables are mounted (e.g. /host/cni/bin)
# FLOWLINE_CNI_INSTALL_DIR  host folder for node and the bundle, mounted at the same path
# FLOWLINE_CNI_CONF_DIR     optional: the host's CNI config folder, to write a conflist into
# FLOWLINE_CNI_CONFLIST     with FLOWLINE_CNI_CONF_DIR: the conflist file to copy there
# FLOWLINE_CNI_BUNDLE       the plugin bundle in this image (default /opt/flowline-cni/flowline.js)
set -eu
BIN_DIR="${FLOWLINE_CNI_BIN_DIR:?set FLOWLINE_CNI_BIN_DIR to the mounted host CNI bin folder}"
INSTALL_DIR="${FLOWLINE_CNI_INSTALL_DIR:?set FLOWLINE_CNI_INSTALL_DIR to the host install folder}"
BUNDLE="${FLOWLINE_CNI_BUNDLE:-/opt/flowline-cni/flowline.js}"
NODE="$(command -v node)"

put() { # put <source> <destination> <mode>: atomic copy
  cp "$1" "$2.tmp.$$"
  chmod "$3" "$2.tmp.$$"
  mv -f "$2.tmp.$$" "$2"
}

install_plugin() {
  mkdir -p "$INSTALL_DIR/bin" "$INSTALL_DIR/cni" "$BIN_DIR"
  put "$NODE" "$INSTALL_DIR/bin/node" 0755
  put "$BUNDLE" "$INSTALL_DIR/cni/flowline.js" 0644
  printf '#!/bin/sh\nexec "%s/bin/node" "%s/cni/flowline.js" "$@"\n' "$INSTALL_DIR" "$INSTALL_DIR" >"$BIN_DIR/.flowline.wrapper"
  put "$BIN_DIR/.flowline.wrapper" "$BIN_DIR/flowline" 0755
  rm -f "$BIN_DIR/.flowline.wrapper"
  if [ -n "${FLOWLINE_CNI_CONF_DIR:-}" ]; then
    conflist="${FLOWLINE_CNI_CONFLIST:?set FLOWLINE_CNI_CONFLIST with FLOWLINE_CNI_CONF_DIR}"
    mkdir -p "$FLOWLINE_CNI_CONF_DIR"
    put "$conflist" "$FLOWLINE_CNI_CONF_DIR/$(basename "$conflist")" 0644
  fi
  echo "flowline-cni-install: installed $BIN_DIR/flowline (node $("$NODE" --version), bundle $BUNDLE)"
}

installed() {
  [ -x "$BIN_DIR/flowline" ] && cmp -s "$BUNDLE" "$INSTALL_DIR/cni/flowline.js" && [ -x "$INSTALL_DIR/bin/node" ]
}

install_plugin
trap 'exit 0' TERM INT
while :; do
  sleep 10 &
  wait $! || true
  installed || install_plugin
done
