#!/usr/bin/env bash
# CRI latency benchmark: median latency of ListImages and ImageStatus
# through `gantry serve`'s Unix socket, with 1,000 image names in the store.
#
#   bench/cri.sh          # BUILD_DIR=build, NAMES=1000, LIST_CALLS=300, STATUS_CALLS=3000
#
# The store gets NAMES image records as cheap tags of three images (the
# fixture image written by gantry-mkimage for amd64, arm64 and ppc64le, so
# three image configs, three CRI images): one OCI layout whose index.json
# tags the three manifests
# round-robin t0…t(NAMES-1), each tag pulled with `gantry pull --no-unpack
# oci:LAYOUT:tN` (no registry, no network). Then `gantry serve` runs on a
# socket in a temp dir and a Python grpcio client (stubs generated from
# src/criimage/proto by grpc_tools.protoc) calls, after a warm-up,
# ListImages LIST_CALLS times and ImageStatus STATUS_CALLS times (by tag,
# cycling through all names, and by image id), timing each call on the
# client: the figures include the client's own gRPC and protobuf work.
# Also timed: the first ListImages after a `gantry pull` in another process
# changed the store (the server then rebuilds its view of 1,000 records).
# Prints medians, p90 and the targets (ListImages < 10 ms, ImageStatus
# < 1 ms), and the load average. Needs root (bench_init). Not part of ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
NAMES=${NAMES:-1000}
LIST_CALLS=${LIST_CALLS:-300}
STATUS_CALLS=${STATUS_CALLS:-3000}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init cri
bench_build "$BUILD_DIR" gantry gantry-mkimage
case "$BUILD_DIR" in /*) ABS_BUILD=$BUILD_DIR ;; *) ABS_BUILD=$PWD/$BUILD_DIR ;; esac
MKIMAGE="$ABS_BUILD/tests/fixtures/gantry-mkimage"
[ -x "$MKIMAGE" ] || MKIMAGE=$(find "$ABS_BUILD" -name gantry-mkimage -type f -perm -u+x | head -n1)
ROOT="$WORK/root"
LAYOUT="$WORK/imgs"
SOCK="$WORK/g.sock"
SERVE_PID=""
stop_serve() {
  if [ -n "$SERVE_PID" ]; then kill -TERM "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
}
BENCH_CLEANUP_HOOK=stop_serve

bench_step "three images in one OCI layout, tagged $NAMES times"
for a in amd64 arm64 ppc64le; do "$MKIMAGE" --out "$LAYOUT" --tag "base-$a" --arch "$a" >/dev/null; done
python3 - "$LAYOUT" "$NAMES" <<'PY'
import json, sys
layout, names = sys.argv[1], int(sys.argv[2])
path = layout + "/index.json"
index = json.load(open(path))
bases = [m for m in index["manifests"]
         if m.get("annotations", {}).get("org.opencontainers.image.ref.name", "").startswith("base-")]
assert len(bases) == 3, bases
out = []
for i in range(names):
    m = dict(bases[i % 3])
    m["annotations"] = {"org.opencontainers.image.ref.name": "t%d" % i}
    out.append(m)
index["manifests"] = out
json.dump(index, open(path, "w"))
PY

bench_step "pull the $NAMES tags into the store"
for i in $(seq 0 $((NAMES - 1))); do
  "$GANTRY" --root "$ROOT" --log-level error pull --no-unpack -q "oci:$LAYOUT:t$i" >/dev/null
done
echo "records: $("$GANTRY" --root "$ROOT" images --json | jq length)" >&2

bench_step "gantry serve on $SOCK"
"$GANTRY" --root "$ROOT" --log-level warn serve --listen "unix://$SOCK" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!

bench_step "ListImages x $LIST_CALLS, ImageStatus x $STATUS_CALLS"
/usr/bin/python3 - "$BENCH_ROOT_DIR/src/criimage/proto" "$WORK/py" "$SOCK" "$NAMES" \
  "$(basename "$LAYOUT")" "$LIST_CALLS" "$STATUS_CALLS" "$GANTRY" "$ROOT" "$LAYOUT" <<'PY'
import os, statistics, subprocess, sys, time
proto, out, sock, names, base, list_calls, status_calls, gantry, root, layout = sys.argv[1:11]
names, list_calls, status_calls = int(names), int(list_calls), int(status_calls)
import grpc
from grpc_tools import protoc
os.makedirs(out, exist_ok=True)
assert protoc.main(["protoc", "-I" + proto, "--python_out=" + out, "--grpc_python_out=" + out,
                    proto + "/cri_image.proto"]) == 0
sys.path.insert(0, out)
import cri_image_pb2 as pb, cri_image_pb2_grpc as pbg
ch = grpc.insecure_channel("unix:" + sock)
grpc.channel_ready_future(ch).result(timeout=30)
img = pbg.ImageServiceStub(ch)

def timed(fn, n):
    t = []
    for i in range(n):
        a = time.perf_counter()
        fn(i)
        t.append((time.perf_counter() - a) * 1000)
    return t

listed = img.ListImages(pb.ListImagesRequest()).images
tags = sum(len(i.repo_tags) for i in listed)
assert tags == names and len(listed) == 3, (len(listed), tags)
ids = [i.id for i in listed]
refs = ["localhost/%s:t%d" % (base, i) for i in range(names)]
timed(lambda i: img.ListImages(pb.ListImagesRequest()), 20)
timed(lambda i: img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=refs[i % names]))), 100)
lt = timed(lambda i: img.ListImages(pb.ListImagesRequest()), list_calls)
def status(i):
    r = img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(
        image=refs[i % names] if i % 4 else ids[i % len(ids)])))
    assert r.HasField("image")
st = timed(status, status_calls)
# After another process changed the store (a `gantry pull` re-records a
# tag, untimed), the first ListImages rebuilds the server's catalog.
changed = []
for i in range(30):
    subprocess.run([gantry, "--root", root, "--log-level", "error", "pull", "--no-unpack", "-q",
                    "oci:%s:t%d" % (layout, i)], check=True, stdout=subprocess.DEVNULL)
    changed += timed(lambda i: img.ListImages(pb.ListImagesRequest()), 1)
def q(t, p): return sorted(t)[int(len(t) * p)]
print("images: %d (with %d tags in all)" % (len(listed), tags))
print("ListImages:  median %.3f ms  p90 %.3f ms  min %.3f ms  (%d calls; target < 10 ms: %s)" %
      (statistics.median(lt), q(lt, .9), min(lt), len(lt), "met" if statistics.median(lt) < 10 else "NOT met"))
print("ListImages right after a CLI change to the store (catalog rebuilt): median %.3f ms  max %.3f ms  (%d calls)" %
      (statistics.median(changed), max(changed), len(changed)))
print("ImageStatus: median %.3f ms  p90 %.3f ms  min %.3f ms  (%d calls; target < 1 ms: %s)" %
      (statistics.median(st), q(st, .9), min(st), len(st), "met" if statistics.median(st) < 1 else "NOT met"))
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
