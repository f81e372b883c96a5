#!/usr/bin/env bash
# Builds cnitool (test/cnitool/main.go, a libcni client) offline with Debian's Go and Debian's
# CNI library sources (golang-go, golang-github-containernetworking-cni-dev, both in
# tools/setup/setup.sh). GOPATH mode against /usr/share/gocode: no module download, no network.
# Output: cni-plugin/build/cnitool (ignored by git). Usage: build-cnitool.sh [output-path]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$here/build/cnitool}"
gocode=/usr/share/gocode
lib="$gocode/src/github.com/containernetworking/cni/libcni"

command -v go >/dev/null || {
  echo "build-cnitool: go is not installed; apt-get install golang-go" >&2
  exit 1
}
[ -d "$lib" ] || {
  echo "build-cnitool: $lib is missing; apt-get install golang-github-appc-cni-dev (Debian's golang-github-containernetworking-cni-dev)" >&2
  exit 1
}
src="$here/test/cnitool/main.go"
# Rebuild only when the source or the library changed.
if [ -x "$out" ] && [ "$out" -nt "$src" ] && [ "$out" -nt "$lib/api.go" ]; then
  exit 0
fi
mkdir -p "$(dirname "$out")"
cache="${GOCACHE:-$here/build/.gocache}"
GOPATH="$gocode" GO111MODULE=off GOFLAGS='' GOPROXY=off GOCACHE="$cache" CGO_ENABLED=0 \
  go build -trimpath -o "$out.tmp" "$src"
mv "$out.tmp" "$out"
echo "build-cnitool: built $out"
