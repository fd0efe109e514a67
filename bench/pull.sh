#!/usr/bin/env bash
# Cold pull benchmark: gantry pull (download and verify, no unpack) against
# `skopeo copy docker://… oci:…`, in the same run, from the same registry.
#
#   bench/pull.sh          # BUILD_DIR=build, ROUNDS=6, RUNS=5, RSS_RUNS=5
#   BUILD_DIR=build-bench ROUNDS=2 RUNS=3 bench/pull.sh   # a quick look
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
#
# Metrics cost (issue 22; METRICS_COST=0 skips it, PEERS=0 skips the skopeo
# comparison above): `gantry pull` into a store that a `gantry serve
# --metrics-listen` runs on, with and without a scraper (curl) polling
# /metrics every second (SCRAPE_INTERVAL seconds), in alternating hyperfine rounds (METRICS_ROUNDS,
# default ROUNDS, of RUNS runs). Each run starts from an empty store made
# by `gantry rmi` + `gantry prune` (the server keeps its database open, so
# the store is not deleted). Prints the medians and their ratio and writes
# the section "## Metrics cost (issue 22)" at the end of bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
ROUNDS=${ROUNDS:-6}
RUNS=${RUNS:-5}
RSS_RUNS=${RSS_RUNS:-5}
PEERS=${PEERS:-1}
METRICS_COST=${METRICS_COST:-1}
METRICS_ROUNDS=${METRICS_ROUNDS:-$ROUNDS}
SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-1}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init pull
bench_build "$BUILD_DIR" gantry gantry-serve
rm -f "$OUT_DIR"/pull-hyperfine-*.json "$OUT_DIR"/pull-summary.json
step() { bench_step "$@"; }

step "build the bench image (OCI layout, ${#BENCH_USR_SLICES[@]} gzip layers from /usr)"
bench_usr_image "$WORK/layout" gzip latest "${BENCH_USR_SLICES[@]}" >"$WORK/image.env"
# shellcheck disable=SC1091
. "$WORK/image.env"
IMAGE_GZ=$IMAGE_PACKED
echo "image: $IMAGE_LAYERS layers, $IMAGE_RAW bytes uncompressed, $IMAGE_GZ bytes gzip, $IMAGE_DIGEST" >&2

step "scratch file system (journaled ext4 on a loop device)"
bench_scratch_fs 2G

step "start a local registry (docker-registry on 127.0.0.1)"
registry_start "$WORK"
REF=$(registry_push "$WORK/layout" latest bench/usr:latest)
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

if [ "$PEERS" = 1 ]; then
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
bench_rounds pull "$GANTRY_CMD" "$SKOPEO_CMD" "$PREPARE"

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
fi

[ "$METRICS_COST" = 1 ] || exit 0

step "metrics cost: gantry serve --metrics-listen on the store, scraped every second or not"
MSTORE="$MNT/mstore"
SERVE_LOG="$WORK/serve.log"
SCRAPE_ON="$WORK/scrape-on"
"$GANTRY" --root "$MSTORE" images >/dev/null
"$GANTRY" --root "$MSTORE" serve --listen "unix://$WORK/serve.sock" --no-unpack \
  --metrics-listen 127.0.0.1:0 >"$SERVE_LOG" 2>&1 &
SERVE_PID=$!
MPORT=""
for _ in $(seq 1 200); do
  MPORT=$(sed -n 's/.*metrics serving address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$SERVE_LOG" | head -n1)
  [ -n "$MPORT" ] && break
  kill -0 "$SERVE_PID" 2>/dev/null || { cat "$SERVE_LOG" >&2; bench_die "gantry serve exited"; }
  sleep 0.1
done
[ -n "$MPORT" ] || { cat "$SERVE_LOG" >&2; bench_die "gantry serve logged no metrics address"; }
# The scraper: a GET /metrics every second while $SCRAPE_ON exists (the
# "scraped" runs' prepare creates it, the "quiet" runs' removes it).
: >"$WORK/scrapes"
(
  while kill -0 "$SERVE_PID" 2>/dev/null; do
    if [ -e "$SCRAPE_ON" ]; then
      curl -sf -o /dev/null "http://127.0.0.1:$MPORT/metrics" && echo >>"$WORK/scrapes"
    fi
    sleep "$SCRAPE_INTERVAL"
  done
) &
SCRAPER_PID=$!
stop_metrics() {
  kill "$SCRAPER_PID" "$SERVE_PID" 2>/dev/null || true
  wait "$SCRAPER_PID" "$SERVE_PID" 2>/dev/null || true
}
BENCH_CLEANUP_HOOK=stop_metrics
MCMD="$GANTRY --root $MSTORE pull $PULL_FLAGS $REF"
MEMPTY="$GANTRY --root $MSTORE rmi $REF >/dev/null 2>&1; $GANTRY --root $MSTORE prune >/dev/null && sync"
# The server's CPU time (utime + stime, clock ticks) before and after:
# what the scrapes cost it, apart from the noise of the pulls' wall time.
serve_ticks() { awk '{print $14 + $15}' "/proc/$SERVE_PID/stat"; }
MLOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
TICKS_BEFORE=$(serve_ticks)
MJSONS=()
for r in $(seq 1 "$METRICS_ROUNDS"); do
  json="$OUT_DIR/metrics-hyperfine-$r.json"
  MJSONS+=("$json")
  quiet=(--prepare "rm -f $SCRAPE_ON; $MEMPTY")
  scraped=(--prepare "touch $SCRAPE_ON; $MEMPTY")
  if [ $((r % 2)) -eq 1 ]; then
    hyperfine --style basic --warmup 1 --runs "$RUNS" "${quiet[@]}" "${scraped[@]}" \
      --export-json "$json" -n quiet "$MCMD" -n scraped "$MCMD" >&2
  else
    hyperfine --style basic --warmup 1 --runs "$RUNS" "${scraped[@]}" "${quiet[@]}" \
      --export-json "$json" -n scraped "$MCMD" -n quiet "$MCMD" >&2
  fi
done
rm -f "$SCRAPE_ON"
SCRAPES=$(wc -l <"$WORK/scrapes")
SERVE_CPU_MS=$(( ($(serve_ticks) - TICKS_BEFORE) * 1000 / $(getconf CLK_TCK) ))
METRICS_PULLS=$(curl -sf "http://127.0.0.1:$MPORT/metrics" | sed -n 's/^gantry_pulls_total{result="success"} //p')
stop_metrics
BENCH_CLEANUP_HOOK=""

step "metrics cost summary"
python3 - "$WORK/metrics-section.md" "$MLOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)" "$SCRAPES" \
  "$METRICS_PULLS" "$IMAGE_LAYERS" "$IMAGE_GZ" "$SERVE_CPU_MS" "$(nproc)" "$SCRAPE_INTERVAL" \
  "${MJSONS[@]}" <<'PY'
import json, statistics, sys
out, load_before, load_after, scrapes, pulls, layers, gz, serve_ms, cpus, interval, *jsons = sys.argv[1:]
times = {"quiet": [], "scraped": []}
for path in jsons:
    for r in json.load(open(path))["results"]:
        times[r["command"]] += r["times"]
q, s = (statistics.median(times[k]) for k in ("quiet", "scraped"))
cost = (s / q - 1) * 100
lines = [
    "## Metrics cost (issue 22)",
    "",
    "`bench/pull.sh` (its metrics phase): `gantry pull --no-unpack` of the bench image "
    f"({layers} gzip layers, {int(gz)/1e6:.1f} MB) from the local registry into a store that "
    "`gantry serve --metrics-listen` runs on, each run from an empty store (`gantry rmi` + "
    "`gantry prune` as hyperfine's prepare); *scraped* runs have a curl loop GET /metrics every "
    f"{interval} s ({scrapes} scrapes during the phase), *quiet* runs none. Both pay the CLI's own "
    "counting (one `counters` transaction at the end of the pull). Alternating hyperfine rounds, "
    f"{len(times['quiet'])} runs each; load average before/after {load_before} / {load_after}.",
    "",
    "| | median | min | max |",
    "|---|---|---|---|",
]
for k in ("quiet", "scraped"):
    t = times[k]
    lines.append(f"| {k} | {statistics.median(t):.3f} s | {min(t):.3f} s | {max(t):.3f} s |")
per_scrape = int(serve_ms) / max(int(scrapes), 1)
lines += ["", f"Difference of the medians, scraped against quiet: {cost:+.1f} % (target < 2 %: "
          f"{'met' if cost < 2 else 'NOT met'} by this figure). The server's own CPU time over the "
          f"phase (utime + stime): {int(serve_ms)} ms for {scrapes} scrapes, at most "
          f"{per_scrape:.2f} ms a scrape, so a scraper polling every second takes at most "
          f"{per_scrape / 10:.3f} % of one of the {cpus} CPUs from the pulls (an upper bound: "
          "whatever else the server did in the phase is counted in it too). The server counted "
          f"{pulls} successful CLI pulls (gantry_pulls_total{{result=\"success\"}} at the end, "
          "read from the store's counters)."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
bench_write_section bench/RESULTS.md "$WORK/metrics-section.md" "## Metrics cost (issue 22)"
