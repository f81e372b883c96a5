#!/bin/sh
# Installs the flowline CNI plugin on the host, then keeps it installed (a DaemonSet container).
#
# <bin dir>/flowline is a symlink to the plugin's native executable in <install dir>/cni. That
# executable hands each invocation to the resident daemon (the DaemonSet's other container) over
# /run/flowline/cni.sock; when no daemon answers it execs <install dir>/cni/flowline-cni beside
# it, a sh wrapper that runs the plugin's one-file bundle with the Node.js runtime copied into
# <install dir>/bin (hosts have no Node.js; that node is this image's, built against Debian
# bookworm's glibc and libstdc++6). Every file is written to a temporary name and renamed, so a
# runtime never executes a half-copied plugin.
#
# FLOWLINE_CNI_BIN_DIR      where the host's CNI executables are mounted (e.g. /host/cni/bin)
# FLOWLINE_CNI_INSTALL_DIR  host folder for node and the plugin, mounted at the same path
# FLOWLINE_CNI_CONF_DIR     optional: the host's CNI config folder, to write a conflist into
# FLOWLINE_CNI_CONFLIST     with FLOWLINE_CNI_CONF_DIR: the conflist file to copy there
# FLOWLINE_CNI_BUNDLE       the plugin bundle in this image (default /opt/flowline-cni/flowline-cni.js)
# FLOWLINE_CNI_EXECUTABLE   the native executable in this image (default /opt/flowline-cni/flowline)
set -eu
BIN_DIR="${FLOWLINE_CNI_BIN_DIR:?set FLOWLINE_CNI_BIN_DIR to the mounted host CNI bin folder}"
INSTALL_DIR="${FLOWLINE_CNI_INSTALL_DIR:?set FLOWLINE_CNI_INSTALL_DIR to the host install folder}"
BUNDLE="${FLOWLINE_CNI_BUNDLE:-/opt/flowline-cni/flowline-cni.js}"
EXECUTABLE="${FLOWLINE_CNI_EXECUTABLE:-/opt/flowline-cni/flowline}"
NODE="$(command -v node)"

put() { # put <source> <destination> <mode>: atomic copy
  cp "$1" "$2.tmp.$$"
  chmod "$3" "$2.tmp.$$"
  mv -f "$2.tmp.$$" "$2"
}

install_plugin() {
  mkdir -p "$INSTALL_DIR/bin" "$INSTALL_DIR/cni" "$BIN_DIR"
  put "$NODE" "$INSTALL_DIR/bin/node" 0755
  put "$BUNDLE" "$INSTALL_DIR/cni/flowline-cni.js" 0644
  printf '#!/bin/sh\nexec "%s/bin/node" "%s/cni/flowline-cni.js" "$@"\n' "$INSTALL_DIR" "$INSTALL_DIR" >"$INSTALL_DIR/cni/.flowline-cni.wrapper"
  put "$INSTALL_DIR/cni/.flowline-cni.wrapper" "$INSTALL_DIR/cni/flowline-cni" 0755
  rm -f "$INSTALL_DIR/cni/.flowline-cni.wrapper"
  put "$EXECUTABLE" "$INSTALL_DIR/cni/flowline" 0755
  # The symlink, not a copy: the executable finds flowline-cni beside its resolved path.
  ln -sfn "$INSTALL_DIR/cni/flowline" "$BIN_DIR/.flowline.tmp.$$"
  mv -Tf "$BIN_DIR/.flowline.tmp.$$" "$BIN_DIR/flowline"
  if [ -n "${FLOWLINE_CNI_CONF_DIR:-}" ]; then
    conflist="${FLOWLINE_CNI_CONFLIST:?set FLOWLINE_CNI_CONFLIST with FLOWLINE_CNI_CONF_DIR}"
    mkdir -p "$FLOWLINE_CNI_CONF_DIR"
    put "$conflist" "$FLOWLINE_CNI_CONF_DIR/$(basename "$conflist")" 0644
  fi
  echo "flowline-cni-install: installed $BIN_DIR/flowline -> $INSTALL_DIR/cni/flowline (node $("$NODE" --version), bundle $BUNDLE)"
}

installed() {
  [ "$(readlink "$BIN_DIR/flowline" 2>/dev/null)" = "$INSTALL_DIR/cni/flowline" ] &&
    cmp -s "$EXECUTABLE" "$INSTALL_DIR/cni/flowline" &&
    cmp -s "$BUNDLE" "$INSTALL_DIR/cni/flowline-cni.js" &&
    [ -x "$INSTALL_DIR/cni/flowline-cni" ] && [ -x "$INSTALL_DIR/bin/node" ]
}

install_plugin
trap 'exit 0' TERM INT
while :; do
  sleep 10 &
  wait $! || true
  installed || install_plugin
done
