#!/usr/bin/env bash
# Cold pull benchmark: gantry pull (download and verify, no unpack) against
# `skopeo copy docker://… oci:…`, in the same run, from the same registry.
#
#   bench/pull.sh          # BUILD_DIR=build, ROUNDS=4, RUNS=3, RSS_RUNS=5
#   BUILD_DIR=build-bench ROUNDS=6 RUNS=5 bench/pull.sh
#
# The bench image is built here from files already on this machine (no
# network): four disjoint slices of /usr, each a deterministic tar (sorted,
# fixed mtime and owners) compressed with `pigz -n` into a gzip layer of an
# OCI layout, ≥ 100 MB uncompressed in total. skopeo pushes it once into
# Debian's docker-registry on a free 127.0.0.1 port (storage in a temp dir).
#
# Both destinations (gantry's store, skopeo's OCI layout) live on a fresh
# journaled ext4 loop mount made here: this machine's / is ext4 without a
# journal, where re-creating files right after deleting them is slow.
# Every timed run starts from an empty destination (hyperfine --prepare);
# the registry's files stay in the page cache for both tools alike.
#
# Timing: ROUNDS hyperfine invocations of RUNS runs per tool each (after a
# warmup), alternating which tool goes first; the times are merged. Prints
# the medians (min, max), the ratio gantry/skopeo of the medians, and the
# peak RSS of both (median of RSS_RUNS runs of /usr/bin/time -f %M). The
# hyperfine JSON files and a merged summary (pull-summary.json) are kept in
# $BUILD_DIR/bench/. Needs root (loop mount). Not part of ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$(pwd)
BUILD_DIR=${BUILD_DIR:-build}
ROUNDS=${ROUNDS:-4}
RUNS=${RUNS:-3}
RSS_RUNS=${RSS_RUNS:-5}
# One layer per entry; each entry is a space-separated list of paths under /.
LAYER_SLICES=(
  "usr/lib/python3.11"
  "usr/libexec"
  "usr/share/man"
  "usr/sbin usr/lib/x86_64-linux-gnu/perl"
)
MIN_UNCOMPRESSED=$((100 * 1000 * 1000))

if [ "$(id -u)" -ne 0 ]; then
  echo "pull.sh: needs root (it loop-mounts a scratch ext4 file system)" >&2
  exit 1
fi
scripts/setup.sh
BUILD_LOG=$(mktemp /tmp/gantry-build.XXXXXX.log)
if ! { cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       cmake --build "$BUILD_DIR" -j2 --target gantry; } >"$BUILD_LOG" 2>&1; then
  cat "$BUILD_LOG" >&2
  echo "pull.sh: build failed (log: $BUILD_LOG)" >&2
  exit 1
fi
rm -f "$BUILD_LOG"
case "$BUILD_DIR" in /*) BUILD_ABS=$BUILD_DIR ;; *) BUILD_ABS=$ROOT_DIR/$BUILD_DIR ;; esac
GANTRY="$BUILD_ABS/src/cli/gantry"
OUT_DIR="$BUILD_ABS/bench"
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR"/pull-hyperfine-*.json "$OUT_DIR"/pull-summary.json

WORK=$(mktemp -d /tmp/gantry-bench-pull.XXXXXX)
MNT="$WORK/mnt"
REG_PID=""
MOUNTED=""
cleanup() {
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
  if [ -n "$MOUNTED" ]; then umount "$MNT" || umount -l "$MNT" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*" >&2; }

step "build the bench image (OCI layout, ${#LAYER_SLICES[@]} gzip layers from /usr)"
python3 - "$WORK/layout" "${LAYER_SLICES[@]}" >"$WORK/image.env" <<'PY'
import hashlib, json, os, subprocess, sys

layout, slices = sys.argv[1], sys.argv[2:]
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
MTIME = 1700000000

def put_blob(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return digest

def parents(path):
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]

layers, diff_ids, history = [], [], []
total_raw = total_gz = 0
for i, spec in enumerate(slices):
    paths = spec.split()
    dirs = sorted({p for path in paths for p in parents(path)})
    # Parent directories first (not recursed), then the slices: a layer that
    # also unpacks into a sane tree.
    cmd = ["tar", "-C", "/", "--sort=name", "--format=pax", f"--mtime=@{MTIME}",
           "--owner=0", "--group=0", "--numeric-owner",
           "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
           "-cf", "-", "--no-recursion", *dirs, "--recursion", *paths]
    tmp = os.path.join(blobs, f".layer{i}.tmp")
    with open(tmp, "wb") as out:
        tar = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        gz = subprocess.Popen(["pigz", "-n", "-6", "-c"], stdin=subprocess.PIPE, stdout=out)
        h, raw = hashlib.sha256(), 0
        while chunk := tar.stdout.read(1 << 20):
            h.update(chunk)
            raw += len(chunk)
            gz.stdin.write(chunk)
        gz.stdin.close()
        if tar.wait() != 0 or gz.wait() != 0:
            sys.exit(f"layer {i} ({spec}): tar or pigz failed")
    gh = hashlib.sha256()
    with open(tmp, "rb") as f:
        while chunk := f.read(1 << 20):
            gh.update(chunk)
    size = os.path.getsize(tmp)
    os.rename(tmp, os.path.join(blobs, gh.hexdigest()))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": "sha256:" + gh.hexdigest(), "size": size})
    diff_ids.append("sha256:" + h.hexdigest())
    history.append({"created": "2023-11-14T22:13:20Z", "created_by": "tar " + spec})
    total_raw += raw
    total_gz += size
    print(f"layer {i}: {spec}: {raw} bytes tar, {size} bytes gzip", file=sys.stderr)

def compact(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

config = compact({
    "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
    "config": {"Cmd": ["/bin/sh"],
               "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
    "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history})
manifest = compact({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + put_blob(config), "size": len(config)},
    "layers": layers})
mdigest = put_blob(manifest)
with open(os.path.join(layout, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(os.path.join(layout, "index.json"), "wb") as f:
    f.write(compact({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + mdigest, "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
print(f"IMAGE_LAYERS={len(layers)}")
print(f"IMAGE_RAW={total_raw}")
print(f"IMAGE_GZ={total_gz}")
print(f"IMAGE_DIGEST=sha256:{mdigest}")
PY
# shellcheck disable=SC1091
. "$WORK/image.env"
echo "image: $IMAGE_LAYERS layers, $IMAGE_RAW bytes uncompressed, $IMAGE_GZ bytes gzip, $IMAGE_DIGEST" >&2
if [ "$IMAGE_RAW" -lt "$MIN_UNCOMPRESSED" ]; then
  echo "pull.sh: the bench image has only $IMAGE_RAW bytes uncompressed (< $MIN_UNCOMPRESSED)" >&2
  exit 1
fi

step "scratch file system (journaled ext4 on a loop device)"
truncate -s 2G "$WORK/scratch.img"
mkfs.ext4 -q -F "$WORK/scratch.img"
mkdir -p "$MNT"
mount -o loop "$WORK/scratch.img" "$MNT"
MOUNTED=1
findmnt -n -o SOURCE,FSTYPE,OPTIONS "$MNT" >&2

step "start a local registry (docker-registry on 127.0.0.1)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
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
REF="127.0.0.1:$PORT/bench/usr:latest"
skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/layout:latest" "docker://$REF"
echo "pushed $REF (registry pid $REG_PID)" >&2

STORE="$MNT/store"
SKOPEO_OUT="$MNT/skopeo-out"
# Download and verify only: where `pull` also unpacks, --no-unpack says not to.
PULL_FLAGS="--plain-http --quiet"
if "$GANTRY" pull --help 2>&1 | grep -q -- '--no-unpack'; then PULL_FLAGS="$PULL_FLAGS --no-unpack"; fi
GANTRY_CMD="$GANTRY --root $STORE pull $PULL_FLAGS $REF"
SKOPEO_CMD="skopeo copy --quiet --src-tls-verify=false docker://$REF oci:$SKOPEO_OUT:latest"
# Each run starts empty; `sync` keeps the previous run's write-back out of
# the next run's time.
PREPARE="rm -rf $STORE $SKOPEO_OUT && sync"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
step "sanity: one pull each"
sh -c "$PREPARE"
got=$($GANTRY_CMD)
if [ "$got" != "$IMAGE_DIGEST" ]; then
  echo "pull.sh: gantry printed '$got', expected $IMAGE_DIGEST" >&2
  exit 1
fi
$SKOPEO_CMD
echo "gantry store: $(du -sb "$STORE/content/blobs" | cut -f1) bytes of blobs; skopeo: $(du -sb "$SKOPEO_OUT/blobs" | cut -f1) bytes" >&2

# hyperfine runs all runs of one command, then the other's; on a shared
# machine the load drifts in between. So the runs are split into ROUNDS
# rounds that alternate which tool goes first, and the times are merged.
step "hyperfine ($ROUNDS rounds x $RUNS runs each, cold destination)"
JSONS=()
for r in $(seq 1 "$ROUNDS"); do
  json="$OUT_DIR/pull-hyperfine-$r.json"
  JSONS+=("$json")
  first=(-n gantry "$GANTRY_CMD")
  second=(-n skopeo "$SKOPEO_CMD")
  if [ $((r % 2)) -eq 0 ]; then
    first=(-n skopeo "$SKOPEO_CMD")
    second=(-n gantry "$GANTRY_CMD")
  fi
  hyperfine --style basic --warmup 1 --runs "$RUNS" --prepare "$PREPARE" \
    --export-json "$json" "${first[@]}" "${second[@]}" >&2
done

step "peak RSS (/usr/bin/time -f %M, $RSS_RUNS runs each, cold destination)"
: >"$WORK/rss-gantry"
: >"$WORK/rss-skopeo"
rss_once() {  # name command...
  local name=$1
  shift
  sh -c "$PREPARE"
  /usr/bin/time -f %M -o "$WORK/rss-one" "$@" >/dev/null
  cat "$WORK/rss-one" >>"$WORK/rss-$name"
}
for _ in $(seq 1 "$RSS_RUNS"); do
  # shellcheck disable=SC2086
  rss_once gantry $GANTRY_CMD
  # shellcheck disable=SC2086
  rss_once skopeo $SKOPEO_CMD
done
sh -c "$PREPARE"

step "summary"
SUMMARY="$OUT_DIR/pull-summary.json"
python3 - "$SUMMARY" "$WORK/rss-gantry" "$WORK/rss-skopeo" "$IMAGE_LAYERS" "$IMAGE_RAW" "$IMAGE_GZ" \
  "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)" "${JSONS[@]}" <<'PY'
import json, statistics, sys

out, rss_g, rss_s, layers, raw, gz, load_before, load_after, *jsons = sys.argv[1:]
times = {"gantry": [], "skopeo": []}
commands = {}
for path in jsons:
    for r in json.load(open(path))["results"]:
        times[r["command"]] += r["times"]
        commands[r["command"]] = r.get("command_str", r["command"])
def stats(ts):
    return {"median": statistics.median(ts), "min": min(ts), "max": max(ts),
            "mean": statistics.mean(ts), "runs": len(ts)}
def rss(p):
    return statistics.median(int(l) for l in open(p) if l.strip()) / 1024  # KiB -> MiB
g, s = stats(times["gantry"]), stats(times["skopeo"])
ratio = g["median"] / s["median"]
rg, rs = rss(rss_g), rss(rss_s)
json.dump({"image": {"layers": int(layers), "uncompressed_bytes": int(raw),
                     "compressed_bytes": int(gz)},
           "gantry": {**g, "times": times["gantry"], "peak_rss_mib": rg},
           "skopeo": {**s, "times": times["skopeo"], "peak_rss_mib": rs},
           "ratio": ratio, "loadavg_before": load_before, "loadavg_after": load_after},
          open(out, "w"), indent=1)
print(f"image: {layers} gzip layers, {int(raw)/1e6:.1f} MB uncompressed, {int(gz)/1e6:.1f} MB compressed")
print(f"load average before/after: {load_before} / {load_after}")
print(f"{'':8} {'median':>9} {'min':>9} {'max':>9} {'peak RSS':>11}   ({g['runs']} runs each)")
for name, r, m in (("gantry", g, rg), ("skopeo", s, rs)):
    print(f"{name:8} {r['median']:8.3f}s {r['min']:8.3f}s {r['max']:8.3f}s {m:7.1f} MiB")
print(f"ratio gantry/skopeo (median wall time): {ratio:.2f}  "
      f"(target <= 0.70: {'met' if ratio <= 0.7 else 'NOT met'})")
print(f"gantry peak RSS: {rg:.1f} MiB  (target < 64 MiB: {'met' if rg < 64 else 'NOT met'})")
PY
echo "hyperfine JSON: ${JSONS[*]}; summary: $SUMMARY" >&2
