#!/usr/bin/env bash
# Fleet benchmark (issue 16 item 6): N gantry nodes pulling the /usr bench
# image at once through one rate-capped upstream, with and without --peers.
#
#   bench/fleet.sh                       # BUILD_DIR=build, NODES=1,4,8,16, RUNS=5, RATE=50M
#   BENCH_GANTRY=/path/gantry NODES=4,16 RUNS=1 bench/fleet.sh    # a quick look
#   BENCH_NICE=0 bench/fleet.sh          # keep the session's CPU share as is
#
# Set-up (here): the bench image of bench/pull.sh (bench_usr_image: four
# gzip layers of /usr slices), pushed with skopeo into Debian's
# docker-registry on a free 127.0.0.1 port; gantry-faultproxy (the test
# fixture's binary, built from $BUILD_DIR or $BENCH_FAULTPROXY) in front of
# it with `--rate-limit $RATE --rate 0`: one bandwidth cap shared by every
# connection, standing in for a registry's egress cap, counting the blob
# bytes it sends. The nodes' stores live on a tmpfs mounted here (the
# pulls are --no-unpack: only blobs are written, and a tmpfs keeps 16
# stores' writes off this 2-CPU machine's disk).
#
# The runs (bench/fleet_driver.py): per N and mode, fresh stores, a fresh
# proxy and N `gantry serve --no-unpack --registry-listen 127.0.0.X:PORT
# --registry-pull-through` nodes (with peers: `--peers file:LIST
# --peers-allow 127.0.0.0/8`, LIST naming every door); every node is asked
# at once for the image's manifest through its door, as containerd does
# when kubelet pulls through the node's mirror, which starts the pull in
# the node's pull manager (the same one `gantry serve --prepull`, what the
# DaemonSet of contrib/kubernetes runs, uses; its list is polled every 2 s,
# which would add up to 2 s of poll jitter to every figure). Wall time:
# until the last node has every blob of the image in its store; upstream
# bytes: the proxy's blob bytes. RUNS rounds over every N, the two modes
# alternating which goes first; medians. The whole run (nodes, proxy,
# registry alike) gets autogroup nice BENCH_NICE (-10, see bench_priority
# in lib.sh), as bench/unpack.sh does: on this 2-CPU machine shared with
# other sessions' builds it would otherwise measure the scheduler's queue.
# Writes the section
# "## Fleet (issue 16 item 6)" at the end of bench/RESULTS.md
# (RESULTS=0: only print it), naming the gantry as BENCH_NOTE says
# (default: its --version). Needs root (mounts). Not part of ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
NODES=${NODES:-1,4,8,16}
RUNS=${RUNS:-5}
RATE=${RATE:-50M}
RESULTS=${RESULTS:-1}
BENCH_NICE=${BENCH_NICE:--10}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init fleet
if [ -n "${BENCH_GANTRY:-}" ]; then
  bench_build "$BUILD_DIR" gantry gantry-serve
  FAULTPROXY=${BENCH_FAULTPROXY:-$BUILD_DIR/tests/fixtures/gantry-faultproxy}
  [ -x "$FAULTPROXY" ] || bench_die "no gantry-faultproxy at $FAULTPROXY (set BENCH_FAULTPROXY)"
else
  bench_build "$BUILD_DIR" gantry gantry-serve gantry-faultproxy
  FAULTPROXY=$(dirname "$(dirname "$(dirname "$GANTRY")")")/tests/fixtures/gantry-faultproxy
fi
FAULTPROXY=$(realpath "$FAULTPROXY")
bench_priority "$BENCH_NICE"
step() { bench_step "$@"; }

step "build the bench image (OCI layout, ${#BENCH_USR_SLICES[@]} gzip layers from /usr)"
bench_usr_image "$WORK/layout" gzip latest "${BENCH_USR_SLICES[@]}" >"$WORK/image.env"
# shellcheck disable=SC1091
. "$WORK/image.env"
MANIFEST=$(cat "$WORK/layout/blobs/sha256/${IMAGE_DIGEST#sha256:}")
BLOBS=$(python3 -c 'import json,sys; m=json.loads(sys.argv[1]); print(",".join([m["config"]["digest"]] + [l["digest"] for l in m["layers"]]))' "$MANIFEST")
IMAGE_BYTES=$(python3 -c 'import json,sys; m=json.loads(sys.argv[1]); print(m["config"]["size"] + sum(l["size"] for l in m["layers"]))' "$MANIFEST")
echo "image: $IMAGE_LAYERS layers, $IMAGE_RAW bytes uncompressed, $IMAGE_BYTES bytes of blobs, $IMAGE_DIGEST" >&2

step "start a local registry (docker-registry on 127.0.0.1)"
registry_start "$WORK"
REF=$(registry_push "$WORK/layout" latest bench/usr:latest)
echo "pushed $REF (registry pid $REG_PID)" >&2

step "stores: tmpfs at $MNT"
bench_tmpfs 6G

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
GANTRY_NOTE=${BENCH_NOTE:-$("$GANTRY" --version 2>/dev/null | head -n1)}
step "runs: N = $NODES, $RUNS rounds, upstream capped at $RATE bytes/s"
python3 bench/fleet_driver.py --gantry "$GANTRY" --faultproxy "$FAULTPROXY" \
  --registry "127.0.0.1:$REG_PORT" --repo bench/usr --tag latest --blobs "$BLOBS" \
  --stores "$MNT" --nodes "$NODES" --runs "$RUNS" --rate-limit "$RATE" \
  --out "$OUT_DIR/fleet-runs.json"

step "summary"
python3 - "$OUT_DIR/fleet-runs.json" "$WORK/fleet-section.md" "$IMAGE_BYTES" "$IMAGE_LAYERS" \
  "$RATE" "$RUNS" "$(nproc)" "$LOAD_BEFORE" "$GANTRY_NOTE" "$BENCH_NICE" <<'PY'
import json, statistics, sys
runs_path, out, image, layers, rate, rounds, cpus, load_before, gantry, nice = sys.argv[1:]
image = int(image)
scale = {"K": 1e3, "M": 1e6, "G": 1e9}
cap = float(rate[:-1]) * scale[rate[-1].upper()] if rate[-1].upper() in scale else float(rate)
runs = json.load(open(runs_path))
ns = sorted({r["n"] for r in runs})
def pick(n, peers):
    return [r for r in runs if r["n"] == n and r["peers"] == peers]
lines = [
    "## Fleet (issue 16 item 6)",
    "",
    f"`bench/fleet.sh`: N `gantry serve --no-unpack` nodes (127.0.0.10…, own store each, on a "
    f"tmpfs) pull the /usr bench image ({layers} gzip layers, {image / 1e6:.1f} MB of blobs) at "
    f"once through one docker-registry behind `gantry-faultproxy --rate-limit {rate}` (a bandwidth "
    "cap shared by all connections, standing in for a registry's egress cap). Each node is asked "
    "for the manifest through its registry door with `--registry-pull-through` (containerd's "
    "mirror request; the pull runs in the node's pull manager, as `serve --prepull` does); *with* "
    "peers the nodes also have `--peers file:LIST` naming all N doors (k = 2 homes per blob). "
    "Wall: until the last node has every blob; upstream: blob bytes the proxy sent. Medians of "
    f"{rounds} rounds (modes alternating first); everything fresh per run. gantry: {gantry}. "
    f"{cpus} CPUs shared with other sessions' builds and benchmarks (this run at autogroup nice "
    f"{nice}, every process of it alike): load average {load_before} before the runs; "
    "the table gives the 1-min load average at each run's start (min–max over the cell's runs; "
    "it also counts the previous run's own nodes as they decay).",
    "",
    "| N | wall without | wall with | with / without | upstream without | upstream with "
    "| upstream with / image | load (1 min) |",
    "|---|---|---|---|---|---|---|---|",
]
verdicts = []
for n in ns:
    wo, wi = pick(n, False), pick(n, True)
    if not wo or not wi:
        continue
    w0 = statistics.median(r["wall"] for r in wo)
    w1 = statistics.median(r["wall"] for r in wi)
    u0 = statistics.median(r["upstream_bytes"] for r in wo)
    u1 = statistics.median(r["upstream_bytes"] for r in wi)
    umax = max(r["upstream_bytes"] for r in wi)
    loads = [float(r["loadavg"][0]) for r in wo + wi]
    lines.append(f"| {n} | {w0:.2f} s | {w1:.2f} s | {w1 / w0:.2f} | {u0 / 1e6:.1f} MB | "
                 f"{u1 / 1e6:.1f} MB | {u1 / image:.2f} (max {umax / image:.2f}) | "
                 f"{min(loads):.1f}–{max(loads):.1f} |")
    verdicts.append((n, umax / image, w1 / w0))
lines.append("")
floor = 2 * image / cap
spread = [max(r["node_times"]) - min(r["node_times"]) for r in runs if r["peers"] and r["n"] == max(ns)]
lines.append(f"Floors set by the cap: without peers N × image / cap (N = {max(ns)}: "
             f"{max(ns) * image / cap:.2f} s); with peers (N ≥ 2) k × image / cap = {floor:.2f} s, "
             "since both homes of each blob download it from the upstream (each blob leaves it "
             "k = 2 times) and share the cap. The other nodes stream each blob from its homes while they "
             f"download it: at N = {max(ns)} with peers, all nodes finish within "
             f"{statistics.median(spread):.2f} s of each other (median over the runs); the rest "
             "above the floor is start-up (manifests through the proxy, peer requests) and CPU "
             f"(every node hashes every byte) on {cpus} loaded CPUs.")
lines.append("")
cpu = []
for n in ns:
    c0 = statistics.median(r["node_cpu"] for r in pick(n, False))
    c1 = statistics.median(r["node_cpu"] for r in pick(n, True))
    cpu.append(f"N = {n}: {c0:.2f} s without, {c1:.2f} s with")
lines.append("CPU time (utime + stime) of all nodes together over the wall time, medians: " +
             "; ".join(cpu) + f" (the machine has {cpus} CPUs, shared).")
lines.append("")
bytes_ok = all(v[1] <= 2.0 for v in verdicts)
lines.append(f"Target upstream bytes with peers ≤ 2 × image for every N (every run): "
             f"{'met' if bytes_ok else 'NOT met'} (worst {max(v[1] for v in verdicts):.2f} ×).")
for n, _, ratio in verdicts:
    if n == 16:
        lines.append(f"Target at N = 16, wall with peers ≤ 0.25 × without: "
                     f"{'met' if ratio <= 0.25 else 'NOT met'} ({ratio:.2f}).")
lines += ["", "Reproduce: `sudo bench/fleet.sh` (NODES=1,4,8,16 RUNS=5 RATE=50M; BENCH_GANTRY=… "
          "BENCH_FAULTPROXY=… to use built binaries, e.g. `BENCH_GANTRY=build/src/cli/gantry "
          "BENCH_FAULTPROXY=build/tests/fixtures/gantry-faultproxy`); per-run figures (each node's "
          "finish time, the proxy's counts, the load) in fleet-runs.json ($BUILD_DIR/bench, or "
          "$BENCH_OUT_DIR with BENCH_GANTRY)."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
if [ "$RESULTS" = 1 ]; then
  bench_write_section bench/RESULTS.md "$WORK/fleet-section.md" "## Fleet (issue 16 item 6)"
fi
