#!/usr/bin/env bash
# Start-up benchmark (issue 14 item 5): what everyday `gantry` commands pay
# before and around their work, against containerd's `ctr`, in one run.
#
#   bench/startup.sh                                   # BUILD_DIR=build, IMAGES=1000, ROUNDS=3, RUNS=40
#   BASELINE=/path/to/other/gantry bench/startup.sh    # also times another build's gantry (before/after)
#
# Timed with hyperfine -N (no shell in between), each after a warm-up:
#   version   `gantry --version`; peers `ctr --version` and `gantry-runtime --version`;
#   images    `gantry images` on a store holding IMAGES distinct images;
#   re-pull   `gantry pull oci:LAYOUT:img0` into that store, where the
#             image's blobs and snapshots are all present already.
# The images are written here as one OCI layout (python3): LAYERS small
# gzip layers shared by all, and IMAGES configs that differ (an env var and
# the creation time), so IMAGES manifests and IMAGES image ids, tagged
# img0…; each tag is pulled once with `gantry pull` (no registry, no
# network; unpacked as by default, the layers once). With BASELINE the other
# gantry gets its own store, filled by itself, so a different schema version
# does not matter. Stores live on a journaled ext4 loop mount (as pull.sh),
# so that fsyncs cost what they cost on a node.
#
# hyperfine runs all runs of one command before the next; on a shared
# machine the load drifts in between, so the runs are split into ROUNDS
# rounds that rotate the order, and the times are merged. Prints medians
# (min, max) and the ratios of the targets: version <= 0.3 x ctr; images
# <= 2.5 x version; re-pull <= 4 x version. Hyperfine JSON goes to
# $BUILD_DIR/bench/. Needs root (loop mount). Not part of ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
IMAGES=${IMAGES:-1000}
LAYERS=${LAYERS:-3}
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-40}
BASELINE=${BASELINE:-}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init startup
bench_build "$BUILD_DIR" gantry gantry-runtime
BUILD_ABS=$(dirname "$OUT_DIR")
RUNTIME="$BUILD_ABS/src/ociruntime/gantry-runtime"
for tool in ctr hyperfine; do
  command -v "$tool" >/dev/null || bench_die "$tool is not installed (scripts/setup.sh installs it)"
done
if [ -n "$BASELINE" ]; then
  [ -x "$BASELINE" ] || bench_die "BASELINE=$BASELINE is not an executable"
  BASELINE=$(cd "$(dirname "$BASELINE")" && pwd)/$(basename "$BASELINE")
fi
rm -f "$OUT_DIR"/startup-*.json

bench_scratch_fs 2G
LAYOUT="$MNT/layout"

bench_step "an OCI layout of $IMAGES distinct images ($LAYERS shared gzip layers each)"
python3 - "$LAYOUT" "$IMAGES" "$LAYERS" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile

layout, images, nlayers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
MTIME = 1700000000

def put(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest

def compact(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

layers, diff_ids = [], []
for i in range(nlayers):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for j in range(20):
            data = (f"layer {i} file {j}\n" * 50).encode()
            ti = tarfile.TarInfo(f"l{i}/f{j}.txt")
            ti.size, ti.mtime, ti.mode = len(data), MTIME, 0o644
            tar.addfile(ti, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    packed = gzip.compress(tar_bytes, mtime=0)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": put(packed), "size": len(packed)})
    diff_ids.append("sha256:" + hashlib.sha256(tar_bytes).hexdigest())

manifests = []
for n in range(images):
    created = f"2023-11-14T22:{n // 60 % 60:02d}:{n % 60:02d}Z"
    config = compact({"architecture": "amd64", "os": "linux", "created": created,
                      "config": {"Cmd": ["/bin/sh"], "Env": [f"IMAGE={n}"]},
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    manifest = compact({"schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": put(config), "size": len(config)},
                        "layers": layers})
    manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "digest": put(manifest), "size": len(manifest),
                      "annotations": {"org.opencontainers.image.ref.name": f"img{n}"}})
with open(os.path.join(layout, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(os.path.join(layout, "index.json"), "wb") as f:
    f.write(compact({"schemaVersion": 2, "manifests": manifests}))
PY

# fill_store GANTRY ROOT: pulls every tag of the layout into ROOT.
fill_store() {
  local gantry=$1 root=$2 n
  for n in $(seq 0 $((IMAGES - 1))); do
    "$gantry" --root "$root" --log-level error pull --quiet "oci:$LAYOUT:img$n" >/dev/null
  done
  local count
  count=$("$gantry" --root "$root" images --no-trunc --format '{{.ID}}' | sort -u | wc -l)
  echo "$root: $count image ids" >&2
  [ "$count" -eq "$IMAGES" ] || bench_die "$root holds $count distinct images, not $IMAGES"
}

bench_step "pull the $IMAGES tags into the store"
STORE="$MNT/store"
fill_store "$GANTRY" "$STORE"
if [ -n "$BASELINE" ]; then
  bench_step "and into the baseline's store ($BASELINE)"
  BASE_STORE="$MNT/store-baseline"
  fill_store "$BASELINE" "$BASE_STORE"
fi

CMDS=(
  "ctr --version=ctr --version"
  "gantry-runtime --version=$RUNTIME --version"
  "gantry --version=$GANTRY --version"
  "gantry images=$GANTRY --root $STORE images"
  "gantry re-pull=$GANTRY --root $STORE pull --quiet oci:$LAYOUT:img0"
)
if [ -n "$BASELINE" ]; then
  CMDS+=(
    "baseline --version=$BASELINE --version"
    "baseline images=$BASELINE --root $BASE_STORE images"
    "baseline re-pull=$BASELINE --root $BASE_STORE pull --quiet oci:$LAYOUT:img0"
  )
fi

bench_priority -10
bench_step "hyperfine: $ROUNDS rounds x $RUNS runs each"
n=${#CMDS[@]}
for r in $(seq 1 "$ROUNDS"); do
  args=()
  for i in $(seq 0 $((n - 1))); do
    c=${CMDS[$(((i + r) % n))]}
    args+=(-n "${c%%=*}" "${c#*=}")
  done
  hyperfine -N --style basic --warmup 5 --runs "$RUNS" \
    --export-json "$OUT_DIR/startup-$r.json" "${args[@]}" </dev/null >&2
done

python3 - "$OUT_DIR" "$ROUNDS" "$IMAGES" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, statistics, sys
out, rounds, images, load = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
times = {}
for r in range(1, rounds + 1):
    for res in json.load(open(f"{out}/startup-{r}.json"))["results"]:
        times.setdefault(res["command"], []).extend(res["times"])
med = {name: statistics.median(ts) for name, ts in times.items()}
print("| command | median | min | max | runs |")
print("| --- | ---: | ---: | ---: | ---: |")
for name, ts in times.items():
    print(f"| {name} | {med[name]*1000:.1f} ms | {min(ts)*1000:.1f} ms | "
          f"{max(ts)*1000:.1f} ms | {len(ts)} |")
print()

def check(label, value, target):
    print(f"- {label} = {value:.2f} (target <= {target}): {'met' if value <= target else 'NOT met'}")

for who in ("gantry", "baseline"):
    if f"{who} --version" not in med:
        continue
    v = med[f"{who} --version"]
    print(f"{who}:")
    check(f"  {who} --version / ctr --version", v / med["ctr --version"], 0.3)
    check(f"  {who} images ({images} images) / {who} --version", med[f"{who} images"] / v, 2.5)
    check(f"  {who} re-pull / {who} --version", med[f"{who} re-pull"] / v, 4)
print(f"- load average at the end: {load}")
PY
