#!/usr/bin/env bash
# containerd doors benchmark (issue 15 item 5): how fast containerd gets an
# image gantry already has, through gantry's two doors, against containerd
# pulling the same image itself from the same local registry, in the same run.
#
#   bench/containerd.sh                 # BUILD_DIR=build, ROUNDS=3, RUNS=3, RSS_RUNS=3, RUN_RUNS=5
#   ROUNDS=1 RUNS=5 bench/containerd.sh
#   RESULTS=none bench/containerd.sh    # do not touch bench/RESULTS.md
#   BENCH_NICE=0 bench/containerd.sh    # keep the session's CPU share as is
#
# Image: the /usr bench image of bench/pull.sh and bench/unpack.sh (four gzip
# layers of /usr slices, ≥ 100 MB uncompressed, lib.sh bench_usr_image),
# pushed once with skopeo into Debian's docker-registry on a free 127.0.0.1
# port.
#
# Commands timed (hyperfine, each run cold, see below):
#  - snapshotter door: `ctr-remote images rpull --plain-http --snapshotter
#    gantry REF` (Debian's stargz-snapshotter; containerd's Pull with unpack,
#    the path the CRI plugin's PullImage takes) against a containerd whose
#    `[proxy_plugins.gantry]` is the `gantry serve --snapshotter-listen`
#    socket of a store where `gantry pull REF` already happened: containerd
#    fetches manifest and config, and adopts each layer gantry has (the
#    remote-snapshot protocol) instead of downloading and applying it;
#  - registry door: `ctr images pull --plain-http --hosts-dir DIR REF` where
#    DIR/HOST/hosts.toml sends containerd to `gantry serve --registry-listen`
#    on that same store, the upstream `server` a closed 127.0.0.1 port (so
#    every byte comes from the door); containerd downloads and unpacks into
#    its own overlayfs snapshotter;
#  - containerd alone: `ctr images pull --plain-http --snapshotter overlayfs
#    REF` straight from the docker-registry (downloads and unpacks). It is
#    the peer of both doors.
#  - fetch only: `ctr content fetch` through the registry door and straight
#    from the docker-registry: the download alone, the part of a pull the
#    registry door replaces;
#  - ctr run: after an untimed pull (rpull through the snapshotter door, or
#    containerd's own pull), `ctr run --rm --snapshotter gantry|overlayfs REF
#    ID /usr/sbin/ldconfig --version` (the image's one static program), timed
#    to its first line of output and to its return, RUN_RUNS runs each.
#
# Cold runs: containerd is stopped, its root deleted and a fresh daemon
# started before every run (its own config: root on the mount, state and
# sockets under a temp dir, CRI plugin disabled, no TCP listener, the proxy
# plugin on gantry's socket). Before each run of a door, gantry serve is
# stopped too, gantry's store deleted, `gantry pull REF` done again and a
# fresh `gantry serve` started with both doors (none of this timed). Every
# prepare ends with `sync`. All stores (gantry's, containerd's root) are on
# a fresh journaled ext4 loop mount made here (lib.sh bench_scratch_fs);
# the registry serves from the page cache. hyperfine runs all runs of one
# command before the next, so the runs are split into ROUNDS rounds that
# rotate the order; the times are merged (ROUNDS × RUNS runs per command, at
# least 5). The whole session runs at autogroup nice BENCH_NICE (-10, lib.sh
# bench_priority), every tool alike.
#
# Also: gantry-serve's peak RSS (VmHWM, RSS_RUNS cold runs) over the door
# pull, and, for one run of each command, containerd's debug log with
# timestamps (kept in $BUILD_DIR/bench/containerd-*.log) to see where the
# time goes. Writes the "containerd doors (issue 15)" section of
# bench/RESULTS.md (replaced in place; other sections are kept); hyperfine
# JSON goes to $BUILD_DIR/bench/. Needs root. Not part of ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
BUILD_DIR=${BUILD_DIR:-build}
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-3}
RSS_RUNS=${RSS_RUNS:-3}
RUN_RUNS=${RUN_RUNS:-5}
RESULTS=${RESULTS:-bench/RESULTS.md}
BENCH_NICE=${BENCH_NICE:--10}
if [ $((ROUNDS * RUNS)) -lt 5 ]; then echo "containerd.sh: ROUNDS x RUNS must be at least 5" >&2; exit 1; fi

bench_init containerd
bench_build "$BUILD_DIR" gantry gantry-serve
for tool in containerd ctr ctr-remote hyperfine docker-registry skopeo strace; do
  command -v "$tool" >/dev/null || bench_die "$tool is not installed (scripts/setup.sh installs it)"
done
rm -f "$OUT_DIR"/containerd-*.json "$OUT_DIR"/containerd-*.log
bench_priority "$BENCH_NICE"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- layout: containerd and gantry serve, each with a pid file -----------------
CTRD="$WORK/ctrd"           # config, state (sockets), pid files, logs: not on the mount
CTRD_ROOT="$MNT/containerd"
CTRD_SOCK="$CTRD/c.sock"
STORE="$MNT/gantry"
SNAP_SOCK="$CTRD/snap.sock"
CRI_SOCK="$CTRD/cri.sock"
DOOR_PORT=$(free_port)
DEAD_PORT=$(free_port)      # nothing listens there: the upstream of the door's hosts.toml
HOSTS_DIR="$CTRD/hosts"
mkdir -p "$CTRD"

containerd_cleanup() {
  # containerd first: it talks to the snapshotter door until it stops.
  bench_stop_pid "$CTRD/containerd.pid" || true
  bench_stop_pid "$CTRD/serve.pid" || true
}
BENCH_CLEANUP_HOOK=containerd_cleanup

cat >"$CTRD/config.toml" <<TOML
version = 2
root = "$CTRD_ROOT"
state = "$CTRD/state"
# Only what an image pull uses: no CRI (it would listen for streaming and
# set up networking), no snapshotters other than overlayfs, native and gantry.
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]
$(bench_containerd_endpoints "$CTRD_SOCK" "$CTRD")
[proxy_plugins.gantry]
  type = "snapshot"
  address = "$SNAP_SOCK"
TOML

# The prepare of every run: a fresh containerd on an empty root. With
# CTRD_LOG_LEVEL=debug the daemon logs every request with timestamps.
cat >"$CTRD/restart-containerd.sh" <<SH
#!/usr/bin/env bash
set -euo pipefail
$(declare -f bench_stop_pid)
bench_stop_pid "$CTRD/containerd.pid"
rm -rf "$CTRD_ROOT"
: >"$CTRD/containerd.log"
containerd -c "$CTRD/config.toml" -l "\${CTRD_LOG_LEVEL:-warn}" >>"$CTRD/containerd.log" 2>&1 </dev/null &
echo \$! >"$CTRD/containerd.pid"
for _ in \$(seq 1 200); do
  if ctr -a "$CTRD_SOCK" version >/dev/null 2>&1; then sync; exit 0; fi
  sleep 0.05
done
echo "containerd did not start; see $CTRD/containerd.log" >&2
exit 1
SH
# The prepare of every run of a door: containerd stopped, gantry's store
# re-made by `gantry pull`, a fresh gantry serve with both doors, then a
# fresh containerd.
cat >"$CTRD/restart-gantry.sh" <<SH
#!/usr/bin/env bash
set -euo pipefail
$(declare -f bench_stop_pid)
bench_stop_pid "$CTRD/containerd.pid"
bench_stop_pid "$CTRD/serve.pid"
rm -rf "$STORE" "$SNAP_SOCK" "$CRI_SOCK"
"$GANTRY" --root "$STORE" pull --plain-http --quiet "\$(cat "$CTRD/ref")" >/dev/null
: >"$CTRD/serve.log"
"$GANTRY" --root "$STORE" --log-level info serve --listen "unix://$CRI_SOCK" \\
  --snapshotter-listen "unix://$SNAP_SOCK" --registry-listen "127.0.0.1:$DOOR_PORT" \\
  >>"$CTRD/serve.log" 2>&1 </dev/null &
echo \$! >"$CTRD/serve.pid"
up=""
for _ in \$(seq 1 200); do
  if [ -S "$SNAP_SOCK" ] && curl -fsS "http://127.0.0.1:$DOOR_PORT/v2/" >/dev/null 2>&1; then up=1; break; fi
  sleep 0.05
done
if [ -z "\$up" ]; then echo "gantry serve did not start; see $CTRD/serve.log" >&2; exit 1; fi
exec "$CTRD/restart-containerd.sh"
SH
chmod +x "$CTRD/restart-containerd.sh" "$CTRD/restart-gantry.sh"
CTRD_PREP="$CTRD/restart-containerd.sh"
GANTRY_PREP="$CTRD/restart-gantry.sh"

# ---- image and registry ----------------------------------------------------------
bench_step "build the bench image (OCI layout, ${#BENCH_USR_SLICES[@]} gzip layers of /usr slices)"
bench_usr_image "$WORK/layout" gzip usr-gzip "${BENCH_USR_SLICES[@]}" >"$WORK/image.env"
# shellcheck disable=SC1091
. "$WORK/image.env"
echo "image: $IMAGE_LAYERS layers, $IMAGE_RAW bytes uncompressed, $IMAGE_PACKED bytes gzip, $IMAGE_DIGEST" >&2

bench_step "scratch file system (journaled ext4 on a loop device)"
bench_scratch_fs 4G

bench_step "start a local registry (docker-registry on 127.0.0.1) and push"
registry_start "$WORK"
REF=$(registry_push "$WORK/layout" usr-gzip bench/usr:gzip)
echo "$REF" >"$CTRD/ref"
REG_HOST=${REF%%/*}
echo "registry pid $REG_PID: $REF" >&2

# The registry door's hosts.toml: the door first, the upstream a closed port.
mkdir -p "$HOSTS_DIR/$REG_HOST"
cat >"$HOSTS_DIR/$REG_HOST/hosts.toml" <<TOML
server = "http://127.0.0.1:$DEAD_PORT"

[host."http://127.0.0.1:$DOOR_PORT"]
  capabilities = ["pull", "resolve"]
TOML

# ---- commands ----------------------------------------------------------------------
CTR="ctr -a $CTRD_SOCK -n bench"
SNAP_CMD="ctr-remote -a $CTRD_SOCK -n bench images rpull --plain-http --snapshotter gantry $REF"
DOOR_CMD="$CTR images pull --plain-http --hosts-dir $HOSTS_DIR $REF"
PLAIN_CMD="$CTR images pull --plain-http --snapshotter overlayfs $REF"
# Fetch only (no unpack): what the registry door changes in a pull.
DOOR_FETCH_CMD="$CTR content fetch --plain-http --hosts-dir $HOSTS_DIR $REF"
PLAIN_FETCH_CMD="$CTR content fetch --plain-http $REF"
# After the pull: a container on the image; /usr/sbin/ldconfig is static.
RUN_ARGS="$REF bench-run /usr/sbin/ldconfig --version"

CONTENT="$CTRD_ROOT/io.containerd.content.v1.content/blobs/sha256"
OVERLAY_FS="$CTRD_ROOT/io.containerd.snapshotter.v1.overlayfs/snapshots"
LAYER_DIGESTS=$(python3 -c '
import json, sys
layout, digest = sys.argv[1], sys.argv[2]
m = json.load(open(f"{layout}/blobs/sha256/{digest[7:]}"))
print(" ".join(l["digest"][7:] for l in m["layers"]))' "$WORK/layout" "$IMAGE_DIGEST")
layers_in_content() {
  local n=0 d
  for d in $LAYER_DIGESTS; do [ -f "$CONTENT/$d" ] && n=$((n + 1)); done
  echo "$n"
}
count_files() { find "$@" -type f 2>/dev/null | wc -l; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# One run of each command with containerd's debug log, as a sanity check
# (each did the work it should) and to keep timestamps of where time goes.
bench_step "sanity: one cold run of each, containerd logging at debug level"
CTRD_LOG_LEVEL=debug "$GANTRY_PREP"
start=$(date +%s.%N)
$SNAP_CMD >/dev/null
end=$(date +%s.%N)
cp "$CTRD/containerd.log" "$OUT_DIR/containerd-snapshotter-door.log"
cp "$CTRD/serve.log" "$OUT_DIR/containerd-snapshotter-door.serve.log"
snaps=$($CTR snapshots --snapshotter gantry ls | tail -n +2 | wc -l)
fetched=$(layers_in_content)
echo "snapshotter door: $(elapsed "$start" "$end") s; containerd holds $snaps gantry snapshots," \
  "has fetched $fetched of $IMAGE_LAYERS layer blobs" >&2
[ "$snaps" -eq "$IMAGE_LAYERS" ] || bench_die "snapshotter door: containerd holds $snaps snapshots, not $IMAGE_LAYERS"
[ "$fetched" -eq 0 ] || bench_die "snapshotter door: containerd downloaded $fetched layer blobs"
echo "SNAP_FETCHED=$fetched" >"$WORK/sanity.env"

CTRD_LOG_LEVEL=debug "$GANTRY_PREP"
start=$(date +%s.%N)
$DOOR_CMD >/dev/null
end=$(date +%s.%N)
cp "$CTRD/containerd.log" "$OUT_DIR/containerd-registry-door.log"
cp "$CTRD/serve.log" "$OUT_DIR/containerd-registry-door.serve.log"
door_files=$(count_files "$OVERLAY_FS"/*/fs)
fetched=$(layers_in_content)
echo "registry door: $(elapsed "$start" "$end") s; $fetched of $IMAGE_LAYERS layer blobs in containerd's" \
  "content store, $door_files regular files unpacked" >&2
[ "$fetched" -eq "$IMAGE_LAYERS" ] || bench_die "registry door: only $fetched layer blobs arrived"

CTRD_LOG_LEVEL=debug "$CTRD_PREP"
start=$(date +%s.%N)
$PLAIN_CMD >/dev/null
end=$(date +%s.%N)
cp "$CTRD/containerd.log" "$OUT_DIR/containerd-plain.log"
plain_files=$(count_files "$OVERLAY_FS"/*/fs)
echo "containerd alone: $(elapsed "$start" "$end") s; $plain_files regular files unpacked" >&2
[ "$door_files" -eq "$plain_files" ] || bench_die "registry door and docker-registry pulls unpacked different trees"
echo "UNPACKED_FILES=$plain_files" >>"$WORK/sanity.env"

# Time to first output of a container on the pulled image: the process
# output is read until its first line (containerd's create, the snapshot's
# mounts, runc, the shim), then `ctr run --rm` is waited for (delete
# included). The pull before it is not timed; the runs alternate which
# snapshotter goes first.
bench_step "ctr run --rm on the pulled image: time to first output ($RUN_RUNS cold runs per snapshotter)"
python3 - "$OUT_DIR/containerd-run.json" "$RUN_RUNS" \
  "$GANTRY_PREP && $SNAP_CMD >/dev/null" "$CTR run --rm --snapshotter gantry $RUN_ARGS" \
  "$CTRD_PREP && $PLAIN_CMD >/dev/null" "$CTR run --rm --snapshotter overlayfs $RUN_ARGS" <<'PY'
import json, shlex, subprocess, sys, time

out, runs = sys.argv[1], int(sys.argv[2])
pairs = [("gantry", sys.argv[3], sys.argv[4]), ("overlayfs", sys.argv[5], sys.argv[6])]
res = {}
for i in range(runs):
    for name, prep, cmd in (pairs if i % 2 == 0 else pairs[::-1]):
        subprocess.run(prep, shell=True, check=True)
        t0 = time.perf_counter()
        p = subprocess.Popen(shlex.split(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        t1 = time.perf_counter()
        rest, err = p.communicate()
        t2 = time.perf_counter()
        if p.returncode != 0 or "ldconfig" not in line:
            res = {"error": f"`{cmd}` (after `{prep}`) failed: exit {p.returncode}: {line}{rest}{err}"}
            print(res["error"], file=sys.stderr)
            json.dump(res, open(out, "w"), indent=1)
            sys.exit(0)
        r = res.setdefault(name, {"first_output": [], "total": []})
        r["first_output"].append(t1 - t0)
        r["total"].append(t2 - t0)
json.dump(res, open(out, "w"), indent=1)
PY

# ---- timing --------------------------------------------------------------------------
UPTIME_BEFORE=$(uptime)
bench_step "hyperfine: $ROUNDS rounds x $RUNS cold runs each, rotating the order"
cmds=("snapshotter door" "registry door" "containerd alone" "registry door, fetch only"
      "containerd alone, fetch only")
declare -A CMD_OF=(["snapshotter door"]=$SNAP_CMD ["registry door"]=$DOOR_CMD ["containerd alone"]=$PLAIN_CMD
                   ["registry door, fetch only"]=$DOOR_FETCH_CMD
                   ["containerd alone, fetch only"]=$PLAIN_FETCH_CMD)
declare -A PREP_OF=(["snapshotter door"]=$GANTRY_PREP ["registry door"]=$GANTRY_PREP ["containerd alone"]=$CTRD_PREP
                    ["registry door, fetch only"]=$GANTRY_PREP ["containerd alone, fetch only"]=$CTRD_PREP)
for r in $(seq 1 "$ROUNDS"); do
  args=()
  for i in $(seq 0 $((${#cmds[@]} - 1))); do
    c=${cmds[$(((i + r - 1) % ${#cmds[@]}))]}
    args+=(-n "$c" --prepare "${PREP_OF[$c]}" "${CMD_OF[$c]}")
  done
  hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$OUT_DIR/containerd-$r.json" \
    "${args[@]}" >&2
done
UPTIME_AFTER=$(uptime)


# gantry-serve's peak RSS: VmHWM right after start (and the store's pull),
# then after containerd's pull through each door.
bench_step "gantry-serve peak RSS (VmHWM, $RSS_RUNS cold runs per door)"
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$(cat "$CTRD/serve.pid")/status"; }
: >"$WORK/hwm"
for _ in $(seq 1 "$RSS_RUNS"); do
  for door in snapshotter registry; do
    "$GANTRY_PREP"
    idle=$(hwm)
    if [ "$door" = snapshotter ]; then $SNAP_CMD >/dev/null; else $DOOR_CMD >/dev/null; fi
    echo "$door $idle $(hwm)" >>"$WORK/hwm"
  done
done

# The servers' side of a download: system calls of gantry-serve (registry
# door) and of docker-registry during one `ctr content fetch` each.
bench_step "strace -c of each registry during one fetch"
strace_fetch() {  # out pid command...
  local out=$1 pid=$2 sp start end
  shift 2
  strace -c -f -q -p "$pid" -o "$out" &
  sp=$!
  sleep 0.5
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  sleep 0.3
  kill -INT "$sp"
  wait "$sp" || true
  echo "wall $(elapsed "$start" "$end")" >>"$out"
}
"$GANTRY_PREP"
# shellcheck disable=SC2086
strace_fetch "$OUT_DIR/containerd-strace-door.txt" "$(cat "$CTRD/serve.pid")" $DOOR_FETCH_CMD
"$CTRD_PREP"
# shellcheck disable=SC2086
strace_fetch "$OUT_DIR/containerd-strace-registry.txt" "$REG_PID" $PLAIN_FETCH_CMD
containerd_cleanup
rm -rf "$STORE" "$CTRD_ROOT"

# ---- summary -------------------------------------------------------------------------
bench_step "summary"
SECTION="$WORK/section.md"
JSONS=()
for r in $(seq 1 "$ROUNDS"); do JSONS+=("$OUT_DIR/containerd-$r.json"); done
python3 - "$SECTION" "$WORK/image.env" "$WORK/sanity.env" "$WORK/hwm" \
  "$(git describe --always --dirty 2>/dev/null || echo unknown)" "$(uname -r)" "$(nproc)" \
  "$(containerd --version | awk '{print $3}')" "$(dpkg-query -W -f '${Version}' stargz-snapshotter)" \
  "$(dpkg-query -W -f '${Version}' docker-registry)" \
  "$(cat /proc/self/autogroup 2>/dev/null || echo none)" "$UPTIME_BEFORE" "$UPTIME_AFTER" \
  "$ROUNDS" "$RUNS" "$RSS_RUNS" "$RUN_RUNS" "$OUT_DIR" "${JSONS[@]}" <<'PY'
import json, os, re, statistics, sys
from datetime import datetime

(section, image_env, sanity_env, hwm_file, commit, kernel, cpus, v_ctrd, v_stargz, v_reg,
 autogroup, up_before, up_after, rounds, runs, rss_runs, run_runs, out_dir, *jsons) = sys.argv[1:]
summary = os.path.join(out_dir, "containerd-summary.json")
run = json.load(open(os.path.join(out_dir, "containerd-run.json")))

# containerd's debug log of the sanity run of each pull: the phases.
def events(name):
    ev = []
    for line in open(os.path.join(out_dir, f"containerd-{name}.log")):
        m = re.match(r'time="([^"]+)" level=\w+ msg=(?:"([^"]*)"|(\S+))', line)
        if not m:
            continue
        ts = m.group(1)[:26] + "+00:00"  # microseconds are enough
        d = re.search(r' d=([0-9.]+)(ms|s) ', line)
        ev.append((datetime.fromisoformat(ts.replace("Z", "")).timestamp(), m.group(2) or m.group(3),
                   (float(d.group(1)) / (1000 if d.group(2) == "ms" else 1)) if d else None))
    return ev

def first(ev, msg):
    return next(t for t, m, _ in ev if m == msg)

def last(ev, msg):
    return [t for t, m, _ in ev if m == msg][-1]

phases = {}
for name in ("containerd-alone", "registry-door"):
    ev = events(name if name != "containerd-alone" else "plain")
    t0, img_t, end = first(ev, "(*service).Write started"), first(ev, "create image"), last(ev, "commit snapshot")
    applied = sum(d for _, m, d in ev if m == "diff applied")
    phases[name] = (img_t - t0, end - img_t, applied)
ev = events("snapshotter-door")
t0 = first(ev, "(*service).Write started")
prep0 = first(ev, "prepare snapshot")
phases["snapshotter-door"] = (prep0 - t0, first(ev, "create image") - prep0)

def strace_total(name):
    calls = {}
    wall = total_s = total_n = 0
    for line in open(os.path.join(out_dir, f"containerd-strace-{name}.txt")):
        f = line.split()
        if f and f[0] == "wall":
            wall = float(f[1])
        elif len(f) >= 5 and f[-1] == "total":
            total_s, total_n = float(f[1]), int(f[3])
        elif len(f) >= 5 and re.match(r"[0-9.]+$", f[0]):
            calls[f[-1]] = int(f[3])
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:3]
    return wall, total_s, total_n, ", ".join(f"{n} {k}" for k, n in top)
st_door, st_reg = strace_total("door"), strace_total("registry")

def env(path):
    return dict(l.strip().split("=", 1) for l in open(path) if "=" in l)

img, sanity = env(image_env), env(sanity_env)
times, cpu = {}, {}
for path in jsons:
    for r in json.load(open(path))["results"]:
        times.setdefault(r["command"], []).extend(r["times"])
        cpu.setdefault(r["command"], []).append((r["user"] + r["system"]))
stats = {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": len(v), "times": v}
         for k, v in times.items()}
hwm = {"snapshotter": [], "registry": []}
idle = []
for line in open(hwm_file):
    door, i, h = line.split()
    hwm[door].append(int(h) / 1024)
    idle.append(int(i) / 1024)

def load(u):
    return u.split("load average:")[-1].strip()

snap, door, plain = (stats[k]["median"] for k in ("snapshotter door", "registry door", "containerd alone"))
r_snap, r_door = snap / plain, door / plain
r_fetch = stats["registry door, fetch only"]["median"] / stats["containerd alone, fetch only"]["median"]
ok_snap, ok_door = r_snap <= 0.1, r_door <= 1.0
json.dump({"results": stats, "ratio_snapshotter_door": r_snap, "ratio_registry_door": r_door,
           "ratio_registry_door_fetch_only": r_fetch, "ctr_run": run, "debug_log_phases_s": phases,
           "serve_vmhwm_mib": hwm, "serve_vmhwm_idle_mib": idle,
           "uptime_before": up_before, "uptime_after": up_after}, open(summary, "w"), indent=1)

def verdict(ok):
    return "met" if ok else "**NOT met**"

n = stats["containerd alone"]["runs"]
nice = autogroup.split()[-1] if "nice" in autogroup else "default"
L = []
L.append("## containerd doors (issue 15)")
L.append("")
L.append(f"`bench/containerd.sh` (gantry {commit}; Linux {kernel}, {cpus} CPUs; containerd {v_ctrd}, "
         f"ctr-remote of stargz-snapshotter {v_stargz}, docker-registry {v_reg}). The /usr bench image "
         f"({img['IMAGE_LAYERS']} gzip layers of /usr slices, {int(img['IMAGE_RAW']) / 1e6:.1f} MB "
         f"uncompressed, {int(img['IMAGE_PACKED']) / 1e6:.1f} MB gzip, {sanity['UNPACKED_FILES']} regular "
         f"files), pushed into Debian's docker-registry on 127.0.0.1. What is timed is the time from "
         f"\"gantry has the image\" to \"containerd can run it\": the `ctr`/`ctr-remote` command until it "
         f"returns, the image then unpacked for its snapshotter.")
L.append("")
L.append("- **snapshotter door**: `ctr-remote images rpull --plain-http --snapshotter gantry REF` against "
         "a containerd whose `[proxy_plugins.gantry]` is the socket of `gantry serve --snapshotter-listen` "
         "on a store where `gantry pull REF` already happened. containerd fetches manifest and config, "
         "and for each layer gantry answers the remote-snapshot Prepare with AlreadyExists: containerd "
         f"downloaded {sanity['SNAP_FETCHED']} of {img['IMAGE_LAYERS']} layer blobs (checked in its "
         "content store after the sanity run) and holds the four gantry snapshots.")
L.append("- **registry door**: `ctr images pull --plain-http --hosts-dir DIR REF`, the hosts.toml sending "
         "containerd to `gantry serve --registry-listen 127.0.0.1:PORT` on that same store and its "
         "upstream `server` to a closed port, so every byte comes from the door; containerd downloads, "
         "verifies and unpacks into its overlayfs snapshotter.")
L.append("- **containerd alone**: `ctr images pull --plain-http --snapshotter overlayfs REF` straight from "
         "the docker-registry serving the same blobs (downloads, verifies, unpacks). The peer of both "
         "doors.")
L.append("- **…, fetch only**: `ctr content fetch` instead of `ctr images pull`, through the registry door "
         "and straight from the docker-registry: the download alone, the part of a pull the registry door "
         "replaces (no unpack).")
L.append(f"- **ctr run**: after a pull (snapshotter door rpull, or containerd's own pull; not timed), "
         f"`ctr run --rm --snapshotter gantry|overlayfs REF ID /usr/sbin/ldconfig --version` (the "
         f"image's one static program): time to its first line of output, and until `ctr run --rm` "
         f"returns (container and task deleted); {run_runs} cold runs each, alternating.")
L.append("")
L.append(f"Cold runs: before every run containerd is stopped, its root deleted and a fresh daemon "
         f"started (CRI plugin disabled, own root, state and sockets); before every run of a door, "
         f"gantry serve is stopped too, gantry's store deleted and re-made by `gantry pull` and a fresh "
         f"`gantry serve` started with both doors; none of that is timed, and each prepare ends with "
         f"`sync`. Stores and containerd's root are on a fresh **journaled** ext4 loop mount (this "
         f"machine's `/` is ext4 without a journal); the registry serves from the page cache. hyperfine, "
         f"{rounds} rounds × {runs} runs per command after a warm-up, the order rotated each round, times "
         f"merged: **{n} cold runs each, medians**. Scheduler: the run's autogroup at nice {nice}, every "
         f"tool alike. The machine was shared with other sessions' builds: `uptime` load average "
         f"{load(up_before)} before the timed runs, {load(up_after)} after (2 CPUs); the ratios, "
         f"measured in the same run, are what counts.")
L.append("")
L.append("| command | median | min | max | CPU of ctr (user+sys) |")
L.append("| --- | ---: | ---: | ---: | ---: |")
for k in ("snapshotter door", "registry door", "containerd alone", "registry door, fetch only",
          "containerd alone, fetch only"):
    s = stats[k]
    L.append(f"| {k} | {s['median']:.3f} s | {s['min']:.3f} s | {s['max']:.3f} s | "
             f"{statistics.median(cpu[k]):.2f} s |")
L.append("")
L.append(f"- snapshotter door / containerd alone = {r_snap:.3f} (target ≤ 0.1): {verdict(ok_snap)}")
L.append(f"- registry door / containerd alone = {r_door:.2f} (target ≤ 1.0): {verdict(ok_door)}")
L.append(f"- registry door, fetch only / containerd alone, fetch only = {r_fetch:.2f} (no target: the "
         f"download alone, where the two registries differ)")
med = lambda v: statistics.median(v) if v else float("nan")
L.append(f"- gantry-serve peak RSS (VmHWM, median of {rss_runs} cold runs): {med(idle):.1f} MiB after "
         f"start, {med(hwm['registry']):.1f} MiB after containerd's pull through the registry door, "
         f"{med(hwm['snapshotter']):.1f} MiB after the rpull through the snapshotter door")
L.append("")
if "error" in run:
    L.append(f"ctr run failed: {run['error']}")
else:
    L.append("| ctr run --rm after the pull | first output (median) | min | max | until ctr returns (median) |")
    L.append("| --- | ---: | ---: | ---: | ---: |")
    for k in ("gantry", "overlayfs"):
        f, t = run[k]["first_output"], run[k]["total"]
        L.append(f"| --snapshotter {k} | {statistics.median(f):.3f} s | {min(f):.3f} s | {max(f):.3f} s | "
                 f"{statistics.median(t):.3f} s |")
L.append("")
fs, us = phases["snapshotter-door"], phases["registry-door"]
ps = phases["containerd-alone"]
L.append("Where the time goes, from containerd's debug log of one (sanity) run of each pull, the clock "
         "starting at containerd's first content write (the manifest; before it `ctr` starts and "
         "resolves the tag): "
         f"the snapshotter door's rpull spends {fs[0]:.2f} s fetching manifest and config and "
         f"{fs[1]:.2f} s on the {img['IMAGE_LAYERS']} remote-snapshot Prepare/Stat/List rounds until "
         f"the image record; the registry door's pull {us[0]:.2f} s downloading (all blobs, "
         f"in parallel) and {us[1]:.2f} s unpacking, of which containerd's diff apply "
         f"(gzip through pigz, tar into overlayfs, one layer after the other) is {us[2]:.2f} s; "
         f"containerd alone {ps[0]:.2f} s downloading and {ps[1]:.2f} s unpacking ({ps[2]:.2f} s "
         f"applying)." + (" containerd's own unpack is most of either pull: the registry door cannot "
                          "shorten it, the snapshotter door skips it." if us[1] > us[0] and ps[1] > ps[0] else ""))
L.append("")
L.append(f"The servers' side of the download (`strace -c -f -p` of the server during one `ctr content "
         f"fetch` each, after the timed runs): gantry-serve made {st_door[2]} system calls taking "
         f"{st_door[1]:.3f} s in all (most: {st_door[3]}; the fetch took {st_door[0]:.2f} s under "
         f"strace), docker-registry {st_reg[2]} taking {st_reg[1]:.3f} s (most: {st_reg[3]}; "
         f"{st_reg[0]:.2f} s)." + (" The door's server spends a small part of the fetch in the kernel: "
                                   "the download is bound by containerd's side (its ingest writes, "
                                   "digests and commits), not by the server."
                                   if st_door[1] < 0.25 * st_door[0] else ""))
L.append("")
open(section, "w").write("\n".join(L) + "\n")
print("\n".join(L[L.index("| command | median | min | max | CPU of ctr (user+sys) |"):]))
PY

if [ "$RESULTS" != none ]; then
  # Replace our section (up to the next "## " heading) or append it.
  bench_write_section "$RESULTS" "$SECTION" "## containerd doors (issue 15)"
  echo "written: $RESULTS (section \"containerd doors (issue 15)\")" >&2
fi
echo "hyperfine JSON: $OUT_DIR/containerd-*.json; debug logs: $OUT_DIR/containerd-*.log" >&2
