#!/usr/bin/env bash
# Cold push benchmark: `gantry push` of the /usr bench image from gantry's
# store into an empty docker-registry, against `skopeo copy oci:LAYOUT
# docker://…` of the same image from its OCI layout into the same empty
# registry, in the same run. Both read local files (gantry its store, skopeo
# the layout) and upload every blob over plain HTTP to 127.0.0.1.
#
#   bench/push.sh          # BUILD_DIR=build, ROUNDS=4, RUNS=3
#   BUILD_DIR=build-bench ROUNDS=1 RUNS=2 bench/push.sh   # a quick look
#
# Two registries run (docker-registry, storage in temp dirs): the source,
# which skopeo fills once and gantry pulls the image from once (so the store
# holds its blobs), and the destination, whose storage directory is emptied
# before every timed run (hyperfine --prepare; the registry is configured
# without a blob descriptor cache, so an emptied directory is an empty
# registry). The destination is on a fresh journaled ext4 loop mount.
#
# Timing: ROUNDS hyperfine invocations of RUNS runs per tool each,
# alternating which tool goes first; the times are merged. Prints medians
# (min, max) and the ratio gantry/skopeo (target <= 0.8). The hyperfine
# JSON and push-summary.json are kept in $BUILD_DIR/bench/. Needs root.
# Not part of ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
ROUNDS=${ROUNDS:-4}
RUNS=${RUNS:-3}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init push
bench_build "$BUILD_DIR" gantry
rm -f "$OUT_DIR"/push-hyperfine-*.json "$OUT_DIR"/push-summary.json
step() { bench_step "$@"; }

step "build the bench image (OCI layout, ${#BENCH_USR_SLICES[@]} gzip layers from /usr)"
bench_usr_image "$WORK/layout" gzip latest "${BENCH_USR_SLICES[@]}" >"$WORK/image.env"
# shellcheck disable=SC1091
. "$WORK/image.env"
echo "image: $IMAGE_LAYERS layers, $IMAGE_RAW bytes uncompressed, $IMAGE_PACKED bytes gzip, $IMAGE_DIGEST" >&2

step "scratch file system (journaled ext4 on a loop device)"
bench_scratch_fs 2G

step "source registry, and the image in gantry's store"
mkdir -p "$WORK/src-reg"
registry_start "$WORK/src-reg"
SRC_PID=$REG_PID
stop_source() { kill "$SRC_PID" 2>/dev/null || true; wait "$SRC_PID" 2>/dev/null || true; }
BENCH_CLEANUP_HOOK=stop_source
SRC_REF=$(registry_push "$WORK/layout" latest bench/usr:latest)
STORE="$MNT/store"
"$GANTRY" --root "$STORE" pull --plain-http --quiet --no-unpack "$SRC_REF" >/dev/null

step "destination registry (emptied before every run)"
mkdir -p "$MNT/dst-reg"
registry_start "$MNT/dst-reg"
DST_REF="127.0.0.1:$REG_PORT/bench/usr:latest"
GANTRY_CMD="$GANTRY --root $STORE push --plain-http --quiet $SRC_REF $DST_REF"
SKOPEO_CMD="skopeo copy --quiet --dest-tls-verify=false oci:$WORK/layout:latest docker://$DST_REF"
PREPARE="rm -rf $MNT/dst-reg/registry-data && sync"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
step "sanity: one push each"
sh -c "$PREPARE"
got=$($GANTRY_CMD)
if [ "$got" != "$IMAGE_DIGEST" ]; then
  echo "push.sh: gantry printed '$got', expected $IMAGE_DIGEST" >&2
  exit 1
fi
got=$(skopeo inspect --raw --tls-verify=false "docker://$DST_REF" | sha256sum | cut -d' ' -f1)
[ "sha256:$got" = "$IMAGE_DIGEST" ] || bench_die "the registry serves sha256:$got after gantry push"
sh -c "$PREPARE"
$SKOPEO_CMD

step "hyperfine ($ROUNDS rounds x $RUNS runs each, empty destination)"
bench_rounds push "$GANTRY_CMD" "$SKOPEO_CMD" "$PREPARE"

step "summary"
python3 - "$OUT_DIR/push-summary.json" "$IMAGE_LAYERS" "$IMAGE_PACKED" "$LOAD_BEFORE" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "${JSONS[@]}" <<'PY'
import json, statistics, sys

out, layers, packed, load_before, load_after, *jsons = sys.argv[1:]
times = {"gantry": [], "skopeo": []}
for path in jsons:
    for r in json.load(open(path))["results"]:
        times[r["command"]] += r["times"]
def stats(ts):
    return {"median": statistics.median(ts), "min": min(ts), "max": max(ts), "runs": len(ts)}
g, s = stats(times["gantry"]), stats(times["skopeo"])
ratio = g["median"] / s["median"]
json.dump({"image": {"layers": int(layers), "compressed_bytes": int(packed)},
           "gantry": {**g, "times": times["gantry"]}, "skopeo": {**s, "times": times["skopeo"]},
           "ratio": ratio, "loadavg_before": load_before, "loadavg_after": load_after},
          open(out, "w"), indent=1)
print(f"image: {layers} gzip layers, {int(packed)/1e6:.1f} MB compressed")
print(f"load average before/after: {load_before} / {load_after}")
print(f"{'':8} {'median':>9} {'min':>9} {'max':>9}   ({g['runs']} runs each)")
for name, r in (("gantry", g), ("skopeo", s)):
    print(f"{name:8} {r['median']:8.3f}s {r['min']:8.3f}s {r['max']:8.3f}s")
print(f"ratio gantry/skopeo (median wall time): {ratio:.2f}  "
      f"(target <= 0.80: {'met' if ratio <= 0.8 else 'NOT met'})")
PY
