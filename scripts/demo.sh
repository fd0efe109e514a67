#!/usr/bin/env bash
# The main job on the embedded default image: the fixture image (built
# deterministically from busybox-static by gantry-mkimage) is pushed by
# skopeo into a real local registry (Debian's docker-registry on a free
# loopback port), pulled and unpacked by gantry, turned into an OCI bundle
# and run by gantry-runtime; the demo prints what the container printed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$(pwd)
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# Only what the demo runs is built (gantry, which brings gantry-serve with
# it, gantry-runtime and gantry-mkimage), not the tests: a first run on a
# fresh machine builds about a fifth of the tree. Each stage prints a line,
# the build its progress; the build's output goes to a log, kept on failure.
echo "== set-up: Debian packages (scripts/setup.sh)"
scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
BUILD_LOG=$(mktemp /tmp/gantry-build.XXXXXX.log)
LAUNCHER=()
if command -v ccache >/dev/null; then
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
build_step "$BUILD_LOG" "configure $BUILD_DIR (cmake, RelWithDebInfo)" \
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${LAUNCHER[@]}"
build_step "$BUILD_LOG" "build gantry, gantry-runtime, gantry-mkimage (-j2; the first time takes minutes)" \
  cmake --build "$BUILD_DIR" -j2 --target gantry gantry-runtime gantry-mkimage
rm -f "$BUILD_LOG"
case "$BUILD_DIR" in /*) BUILD_ABS=$BUILD_DIR ;; *) BUILD_ABS=$ROOT_DIR/$BUILD_DIR ;; esac
GANTRY="$BUILD_ABS/src/cli/gantry"
RUNTIME="$BUILD_ABS/src/ociruntime/gantry-runtime"
MKIMAGE="$BUILD_ABS/tests/fixtures/gantry-mkimage"

WORK=$(mktemp -d /tmp/gantry-demo.XXXXXX)
STORE="$WORK/store"
MOUNTED=""
BUNDLE=""
cleanup() {
  if [ -n "$MOUNTED" ]; then "$GANTRY" --root "$STORE" umount "$MOUNTED" >/dev/null 2>&1 || true; fi
  if [ -n "$BUNDLE" ]; then "$GANTRY" --root "$STORE" bundle rm "$BUNDLE" >/dev/null 2>&1 || true; fi
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

STEP=0
STEPS=$(grep -c '^step ' "$0")
step() {
  STEP=$((STEP + 1))
  printf '\n== demo step %d/%d: %s\n' "$STEP" "$STEPS" "$*"
}

step "build the demo image (OCI layout from busybox-static)"
"$MKIMAGE" --out "$WORK/layout" --tag demo >/dev/null
echo "image layout: $WORK/layout (tag demo)"

step "start a local registry (docker-registry on 127.0.0.1) and push with skopeo"
registry_start "$WORK"
echo "registry: http://127.0.0.1:$REG_PORT (pid $REG_PID)"
REF=$(registry_push "$WORK/layout" demo demo/busybox:latest)
echo "pushed $REF"

step "gantry pull (download, verify, unpack into snapshots)"
"$GANTRY" --root "$STORE" pull "$REF"
"$GANTRY" --root "$STORE" images

step "snapshots (one committed snapshot per chainID)"
"$GANTRY" --root "$STORE" snapshot ls

step "gantry mount (read-only view of the image's rootfs)"
mkdir -p "$WORK/rootfs"
"$GANTRY" --root "$STORE" mount "$REF" "$WORK/rootfs"
MOUNTED="$WORK/rootfs"
ls "$WORK/rootfs"
"$GANTRY" --root "$STORE" umount "$WORK/rootfs"
MOUNTED=""

step "gantry bundle (OCI runtime bundle: config.json + overlay rootfs)"
BUNDLE="$WORK/bundle"
"$GANTRY" --root "$STORE" bundle "$REF" "$BUNDLE" --hostname demo -- \
  /bin/sh -c 'echo "hello from $(hostname), pid $$"; cat /hello.txt; id'
ls "$BUNDLE"

step "gantry-runtime run (what the container printed)"
"$RUNTIME" --root "$WORK/runtime" run --bundle "$BUNDLE" "demo-$$"
"$GANTRY" --root "$STORE" bundle rm "$BUNDLE"
BUNDLE=""

step "disk usage"
"$GANTRY" --root "$STORE" df
echo
echo "== demo done in $SECONDS s"
