#!/bin/sh
# Lint for the C/C++ of native/: fails when a file differs from what clang-format makes of it
# with the package's .clang-format (npm run format:c rewrites them).
set -eu
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1; then
  echo "clang-format is not installed: apt-get install -y clang-format (tools/setup/setup.sh does)" >&2
  exit 1
fi
clang-format --dry-run --Werror native/*.c native/*.h native/*.cc native/fuzz/*.c native/test/*.c
