#!/usr/bin/env bash
# The main job on the embedded default image: the fixture image (built
# deterministically from busybox-static by gantry-mkimage) is pushed by
# skopeo into a real local registry (Debian's docker-registry on a free
# loopback port), then pulled by gantry. Stages that are not built yet are
# named as such; nothing is faked.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$(pwd)
scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
BUILD_LOG=$(mktemp /tmp/gantry-build.XXXXXX.log)
if ! { cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build "$BUILD_DIR" -j2; } >"$BUILD_LOG" 2>&1; then
  cat "$BUILD_LOG" >&2
  echo "demo.sh: build failed (log: $BUILD_LOG)" >&2
  exit 1
fi
rm -f "$BUILD_LOG"
GANTRY="$ROOT_DIR/$BUILD_DIR/src/cli/gantry"
MKIMAGE="$ROOT_DIR/$BUILD_DIR/tests/fixtures/gantry-mkimage"

WORK=$(mktemp -d /tmp/gantry-demo.XXXXXX)
REG_PID=""
MOUNTED=""
cleanup() {
  if [ -n "$MOUNTED" ]; then "$GANTRY" --root "$WORK/store" umount "$MOUNTED" >/dev/null 2>&1 || true; fi
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "build the demo image (OCI layout from busybox-static)"
"$MKIMAGE" --out "$WORK/layout" --tag demo >/dev/null
echo "image layout: $WORK/layout (tag demo)"

step "start a local registry (docker-registry on 127.0.0.1)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/registry.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry-data
http:
  addr: 127.0.0.1:$PORT
YAML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null
echo "registry: http://127.0.0.1:$PORT (pid $REG_PID)"

step "push with skopeo"
skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/layout:demo" "docker://127.0.0.1:$PORT/demo/busybox:latest"
echo "pushed 127.0.0.1:$PORT/demo/busybox:latest"

step "gantry pull (download, verify, unpack into snapshots)"
"$GANTRY" --root "$WORK/store" pull "127.0.0.1:$PORT/demo/busybox:latest"
"$GANTRY" --root "$WORK/store" images

step "snapshots (one committed snapshot per chainID)"
"$GANTRY" --root "$WORK/store" snapshot ls

step "gantry mount (read-only view of the image's rootfs)"
mkdir -p "$WORK/rootfs"
"$GANTRY" --root "$WORK/store" mount "127.0.0.1:$PORT/demo/busybox:latest" "$WORK/rootfs"
MOUNTED="$WORK/rootfs"
ls "$WORK/rootfs"
echo "hello.txt says: $(cat "$WORK/rootfs/hello.txt" 2>/dev/null || echo '(missing)')"
"$GANTRY" --root "$WORK/store" umount "$WORK/rootfs"
MOUNTED=""

step "disk usage"
"$GANTRY" --root "$WORK/store" df

for stage in "bundle (OCI runtime bundle from the image)" "run (gantry-runtime: the container's output)"; do
  step "$stage"
  echo "not built yet"
done
