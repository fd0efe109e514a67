#!/usr/bin/env bash
# scripts/package.sh [OUT_DIR]: the Debian package gantry_<version>_amd64.deb
# (cmake/package.cmake) in OUT_DIR (default: the repository's root), from a
# Release build of its own (BUILD_DIR, default build-package) in which only
# the installed targets are built (-j2), not the tests. Progress goes to
# stderr; the last line on stdout is the package's path. The build's output
# goes to a log, kept on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
OUT_DIR=$(realpath -m "${1:-.}")
BUILD_DIR=${BUILD_DIR:-build-package}
exec 3>&1 1>&2

echo "== set-up: Debian packages (scripts/setup.sh)"
scripts/setup.sh
LOG=$(mktemp /tmp/gantry-package.XXXXXX.log)
LAUNCHER=()
if command -v ccache >/dev/null; then
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
build_step "$LOG" "configure $BUILD_DIR (cmake, Release)" \
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGANTRY_SANITIZE= "${LAUNCHER[@]}"
build_step "$LOG" "build gantry, gantry-serve, gantry-runtime, man pages, completions (-j2)" \
  cmake --build "$BUILD_DIR" -j2 --target gantry gantry-serve gantry-runtime docs
rm -rf "$BUILD_DIR/package"
build_step "$LOG" "cpack -G DEB" \
  cpack -G DEB --config "$BUILD_DIR/CPackConfig.cmake" -B "$BUILD_DIR/package"
debs=("$BUILD_DIR"/package/gantry_*_amd64.deb)
[ -f "${debs[0]}" ] || { echo "package.sh: cpack wrote no gantry_*_amd64.deb (log: $LOG)" >&2; exit 1; }
mkdir -p "$OUT_DIR"
deb="$OUT_DIR/$(basename "${debs[0]}")"
mv -f "${debs[0]}" "$deb"
rm -f "$LOG"
echo "$deb" >&3
