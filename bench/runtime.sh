#!/usr/bin/env bash
# Runtime start benchmark: `run` of /bin/true (create + start + wait +
# delete) with gantry-runtime against crun and runc, in the same run, on the
# same bundle.
#
#   bench/runtime.sh                     # BUILD_DIR=build, ROUNDS=6, RUNS=10, RSS_RUNS=15
#   ROUNDS=3 RUNS=10 bench/runtime.sh    # 30 runs each, the issue's minimum
#
# The bundle is made by `gantry bundle` from the fixture image (busybox-
# static, built by gantry-mkimage and pulled from its OCI layout): runc
# spec's defaults (pid, ipc, uts, mount and network namespaces, the standard
# mounts, masked and read-only paths, capabilities, rlimits) with the
# rootfs an overlay snapshot mounted at bundle/rootfs, args `/bin/true`.
#
# Debian's crun 1.8.1 refuses this machine's hybrid cgroup layout (cgroup v1
# with a cgroup2 mount at /sys/fs/cgroup/unified). So that all three see the
# same system, hyperfine and every runtime run inside one private mount
# namespace with that mount removed (pure cgroup v1, as crun needs); no
# runtime pays for a wrapper per run. gantry-runtime and runc are also timed
# in the host's namespace (hybrid layout) for reference.
#
# hyperfine runs all runs of one command before the next; on a shared
# machine the load drifts in between, so the runs are split into ROUNDS
# rounds that rotate which runtime goes first, and the times are merged.
#
# Peak RSS: the median over RSS_RUNS runs of `/usr/bin/time -f %M` of the
# runtime process (which waits for the container, so its own peak; the
# container's /bin/true is a few hundred KiB of static busybox and the same
# for all). Prints medians, ratios and RSS; hyperfine JSON goes to
# $BUILD_DIR/bench/. Needs root. Not part of ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
ROUNDS=${ROUNDS:-6}
RUNS=${RUNS:-10}
RSS_RUNS=${RSS_RUNS:-15}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init runtime
bench_build "$BUILD_DIR" gantry gantry-runtime gantry-mkimage
BUILD_ABS=$(dirname "$OUT_DIR")
RUNTIME="$BUILD_ABS/src/ociruntime/gantry-runtime"
MKIMAGE="$BUILD_ABS/tests/fixtures/gantry-mkimage"
for tool in runc crun hyperfine unshare; do
  command -v "$tool" >/dev/null || bench_die "$tool is not installed (scripts/setup.sh installs it)"
done
rm -f "$OUT_DIR"/runtime-*.json

STORE="$WORK/store"
BUNDLE="$WORK/bundle"
runtime_cleanup() {
  "$GANTRY" --root "$STORE" bundle rm "$BUNDLE" >/dev/null 2>&1 || true
}
BENCH_CLEANUP_HOOK=runtime_cleanup

bench_step "bundle: fixture image (busybox-static) -> gantry bundle ... -- /bin/true"
"$MKIMAGE" --out "$WORK/layout" --tag bench >/dev/null
"$GANTRY" --root "$STORE" pull --quiet "oci:$WORK/layout:bench" >/dev/null
IMAGE=localhost/layout:bench  # an OCI layout source is named localhost/DIRNAME:TAG
"$GANTRY" --root "$STORE" bundle "$IMAGE" "$BUNDLE" -- /bin/true >&2

bench_priority -10

# Each tool gets its own state root (tmpfs, as /run is on a node) and a
# fixed container id: `run` deletes the container when it exits.
STATE=$WORK/state
mkdir -p "$STATE"
mount -t tmpfs -o size=64m tmpfs "$STATE"
state_cleanup() {
  runtime_cleanup
  umount "$STATE" 2>/dev/null || true
}
BENCH_CLEANUP_HOOK=state_cleanup

G_CMD="$RUNTIME --root $STATE/gantry run --bundle $BUNDLE bench-g"
R_CMD="runc --root $STATE/runc run --bundle $BUNDLE bench-r"
C_CMD="crun --root $STATE/crun run --bundle $BUNDLE bench-c"

# Sanity: each runtime runs the bundle and exits 0 (in the private
# namespace, where crun works).
inner_check() {
  unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; eval "$1" && eval "$2" && eval "$3"' sh \
    "$G_CMD" "$R_CMD" "$C_CMD" </dev/null ||
    bench_die "a runtime failed to run the bundle"
}
bench_step "check that each runtime runs the bundle"
inner_check

# rounds NAME NAMESPACE-WRAPPER... -- NAME=CMD...: ROUNDS hyperfine
# invocations, rotating the order of the commands; JSON to runtime-NAME-R.json.
rounds() {
  local tag=$1
  shift
  local wrap=()
  while [ "$1" != -- ]; do wrap+=("$1"); shift; done
  shift
  local cmds=("$@") r i n=$#
  for r in $(seq 1 "$ROUNDS"); do
    local args=()
    for i in $(seq 0 $((n - 1))); do
      local c=${cmds[$(((i + r) % n))]}
      args+=(-n "${c%%=*}" "${c#*=}")
    done
    # -N: no shell between hyperfine and the runtime.
    "${wrap[@]}" hyperfine -N --style basic --warmup 3 --runs "$RUNS" \
      --export-json "$OUT_DIR/runtime-$tag-$r.json" "${args[@]}" </dev/null >&2
  done
}
PRIVATE_NS=(unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh)

bench_step "hyperfine: $ROUNDS rounds x $RUNS runs each, one private mount namespace (pure cgroup v1)"
rounds v1 "${PRIVATE_NS[@]}" -- "gantry-runtime=$G_CMD" "crun=$C_CMD" "runc=$R_CMD"

bench_step "hyperfine: gantry-runtime and runc in the host namespace (hybrid cgroup layout)"
rounds hybrid -- "gantry-runtime=$G_CMD" "runc=$R_CMD"

bench_step "peak RSS of the runtime process ($RSS_RUNS runs each, private namespace)"
for name in gantry crun runc; do
  case $name in gantry) cmd=$G_CMD ;; crun) cmd=$C_CMD ;; runc) cmd=$R_CMD ;; esac
  : >"$WORK/rss-$name"
  for _ in $(seq 1 "$RSS_RUNS"); do
    # shellcheck disable=SC2086  # the command is word-split on purpose
    "${PRIVATE_NS[@]}" /usr/bin/time -a -o "$WORK/rss-$name" -f %M $cmd </dev/null
  done
done

python3 - "$OUT_DIR" "$ROUNDS" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "$(bench_rss_median "$WORK/rss-gantry")" "$(bench_rss_median "$WORK/rss-crun")" \
  "$(bench_rss_median "$WORK/rss-runc")" <<'PY'
import json, statistics, sys
out, rounds, load = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rss = dict(zip(["gantry-runtime", "crun", "runc"], map(float, sys.argv[4:7])))

def merged(tag):
    times = {}
    for r in range(1, rounds + 1):
        for res in json.load(open(f"{out}/runtime-{tag}-{r}.json"))["results"]:
            times.setdefault(res["command"], []).extend(res["times"])
    return times

def table(times, title):
    print(f"\n{title}")
    print("| runtime | median | min | max | runs |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts)*1000:.1f} ms | {min(ts)*1000:.1f} ms | "
              f"{max(ts)*1000:.1f} ms | {len(ts)} |")
    return {name: statistics.median(ts) for name, ts in times.items()}

m = table(merged("v1"), "private mount namespace, pure cgroup v1 (all three)")
h = table(merged("hybrid"), "host namespace, hybrid cgroup layout (crun refuses it)")
g, c, r = m["gantry-runtime"], m["crun"], m["runc"]
print()
print(f"- gantry-runtime / crun = {g/c:.2f} (target <= 1.0): {'met' if g <= c else 'NOT met'}")
print(f"- gantry-runtime / runc = {g/r:.2f} (target <= 0.3): {'met' if g <= 0.3*r else 'NOT met'}")
print(f"- hybrid layout: gantry-runtime / runc = {h['gantry-runtime']/h['runc']:.2f}")
print(f"- peak RSS: gantry-runtime {rss['gantry-runtime']:.1f} MiB, crun {rss['crun']:.1f} MiB, "
      f"runc {rss['runc']:.1f} MiB (target: below crun's): "
      f"{'met' if rss['gantry-runtime'] < rss['crun'] else 'NOT met'}")
print(f"- load average at the end: {load}")
PY
