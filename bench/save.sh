#!/usr/bin/env bash
# Save benchmark: `gantry save` of the /usr bench image (docker-archive:
# 4 gzip layers decompressed into plain tars) against `skopeo copy
# oci:… docker-archive:…` of the same image, in the same run, both reading
# from the same scratch file system (gantry from its store, skopeo from
# the OCI layout the image was pulled from) and writing the archive there.
#
#   bench/save.sh                        # BUILD_DIR=build, ROUNDS=4, RUNS=3
#   ROUNDS=2 RUNS=2 bench/save.sh        # a quick look
#
# Timing as bench/pull.sh: ROUNDS hyperfine invocations alternating which
# tool goes first, times merged; prints the medians and the ratio
# gantry/skopeo, and checks that both archives hold the same <diffID>.tar
# layers (skopeo adds legacy <id>/layer.tar links to them).
# Needs root (loop mount). Not part of ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
ROUNDS=${ROUNDS:-4}
RUNS=${RUNS:-3}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init save
bench_build "$BUILD_DIR" gantry
rm -f "$OUT_DIR"/save-hyperfine-*.json
step() { bench_step "$@"; }

step "scratch file system (journaled ext4 on a loop device)"
bench_scratch_fs 3G

step "build the bench image (OCI layout, ${#BENCH_USR_SLICES[@]} gzip layers from /usr)"
bench_usr_image "$MNT/layout" gzip latest "${BENCH_USR_SLICES[@]}" >"$WORK/image.env"
# shellcheck disable=SC1091
. "$WORK/image.env"
echo "image: $IMAGE_LAYERS layers, $IMAGE_RAW bytes uncompressed, $IMAGE_PACKED bytes gzip" >&2

STORE="$MNT/store"
"$GANTRY" --root "$STORE" pull --quiet --no-unpack --name bench/usr:latest "oci:$MNT/layout:latest" >&2
NAME=localhost/bench/usr:latest
GANTRY_CMD="$GANTRY --root $STORE save -o $MNT/gantry.tar $NAME"
SKOPEO_CMD="skopeo copy --quiet oci:$MNT/layout:latest docker-archive:$MNT/skopeo.tar:$NAME"
PREPARE="rm -f $MNT/gantry.tar $MNT/skopeo.tar && sync"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
step "sanity: one save each; the same layer tars"
sh -c "$PREPARE"
$GANTRY_CMD
$SKOPEO_CMD
tar -tf "$MNT/gantry.tar" | grep -E '^[0-9a-f]{64}\.tar$' | sort >"$WORK/g.list"
tar -tf "$MNT/skopeo.tar" | grep -E '^[0-9a-f]{64}\.tar$' | sort >"$WORK/s.list"
if ! cmp -s "$WORK/g.list" "$WORK/s.list"; then
  diff "$WORK/g.list" "$WORK/s.list" >&2 || true
  bench_die "the archives hold different layer tars"
fi
echo "archives: gantry $(stat -c %s "$MNT/gantry.tar") bytes, skopeo $(stat -c %s "$MNT/skopeo.tar") bytes" >&2

step "hyperfine ($ROUNDS rounds x $RUNS runs each)"
bench_rounds save "$GANTRY_CMD" "$SKOPEO_CMD" "$PREPARE"

step "summary"
python3 - "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)" "${JSONS[@]}" <<'PY'
import json, statistics, sys
load_before, load_after, *jsons = sys.argv[1:]
times = {"gantry": [], "skopeo": []}
for path in jsons:
    for r in json.load(open(path))["results"]:
        times[r["command"]] += r["times"]
for k, ts in times.items():
    print(f"{k}: median {statistics.median(ts):.3f} s (min {min(ts):.3f}, max {max(ts):.3f}, {len(ts)} runs)")
print(f"ratio gantry/skopeo (medians): {statistics.median(times['gantry']) / statistics.median(times['skopeo']):.2f}")
print(f"load average before {load_before}, after {load_after}")
PY
