#!/usr/bin/env bash
# kubelet with split endpoints benchmark (issue 19): time from kubelet's
# PullImage on gantry to a started container on containerd, against
# kubelet-style PullImage + RunPodSandbox + CreateContainer + StartContainer
# all on containerd, for the /usr bench image, in the same run.
#
#   bench/kubelet.sh                  # BUILD_DIR=build, RUNS=3 (medians of RUNS cold runs)
#   RUNS=5 bench/kubelet.sh
#   RESULTS=none bench/kubelet.sh     # do not touch bench/RESULTS.md
#   BENCH_NICE=0 bench/kubelet.sh     # keep the session's CPU share as is
#
# Image: the /usr bench image of bench/pull.sh and bench/containerd.sh
# (lib.sh bench_usr_image: four gzip layers of /usr slices, >= 100 MB
# uncompressed) in Debian's docker-registry on a free 127.0.0.1 port; the
# sandbox image a one-layer image of the host's static busybox running
# `sleep`, pre-pulled (untimed) in every setting. The container runs
# /usr/sbin/ldconfig --version (the image's one static program); its log
# file must show ldconfig's output.
#
# kubelet is the project's Python grpcio CRI client
# (tests/integration/cri/cri_client.py), which times its own calls on the
# client side (stub generation excluded): `pull_seconds` (PullImage) and
# `start_seconds` (RunPodSandbox + CreateContainer + StartContainer). Each
# setting's figure is their sum. Settings, each cold (containerd stopped,
# its root deleted and a fresh containerd 1.6 started with the CRI plugin,
# host-network pods, before every run; all stores on a fresh journaled ext4
# loop mount, lib.sh bench_scratch_fs):
#  - gantry, cold: gantry's store holds only the sandbox image (pulled and
#    published with `gantry pull --containerd`); `gantry serve
#    --snapshotter-listen … --containerd …` fresh; containerd's CRI
#    snapshotter is `gantry` (the door). PullImage on gantry downloads,
#    unpacks, records and publishes the image; containerd fetches nothing.
#  - gantry, image in the store: as above, with `gantry pull REF` done
#    before (untimed, not published): a node where gantry has the image
#    (pre-pulled, or pulled for another pod) and containerd does not.
#    PullImage on gantry resolves the tag, finds every blob and chain, and
#    publishes.
#  - containerd alone: containerd's CRI plugin with its own overlayfs
#    snapshotter pulls the image itself (PullImage on containerd) from the
#    same registry (hosts.toml: plain HTTP), then the same pod.
# The settings alternate their order every run. Also checked: in the
# gantry settings, containerd's content store holds no layer blob.
#
# Appends a "kubelet with split endpoints (issue 19)" section to
# bench/RESULTS.md (RESULTS=FILE for another file, none for none). Needs
# root, containerd, ctr, runc, the runc shim, docker-registry, skopeo,
# busybox-static and python3-grpcio/grpc-tools. Not part of ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
BUILD_DIR=${BUILD_DIR:-build}
RUNS=${RUNS:-3}
RESULTS=${RESULTS:-bench/RESULTS.md}
BENCH_NICE=${BENCH_NICE:--10}
if [ "$RUNS" -lt 3 ]; then echo "kubelet.sh: RUNS must be at least 3" >&2; exit 1; fi

bench_init kubelet
bench_build "$BUILD_DIR" gantry gantry-serve
for tool in containerd ctr containerd-shim-runc-v2 runc docker-registry skopeo; do
  command -v "$tool" >/dev/null || bench_die "$tool is not installed (scripts/setup.sh installs it)"
done
[ -x /bin/busybox ] || bench_die "/bin/busybox is missing (busybox-static)"
# Debian's python3 (python3-grpcio), whatever python3 comes first in PATH.
PY=/usr/bin/python3
"$PY" -c 'import grpc, grpc_tools.protoc' 2>/dev/null ||
  bench_die "python3-grpcio and python3-grpc-tools are missing (scripts/setup.sh)"
bench_priority "$BENCH_NICE"
CRI_CLIENT="$PWD/tests/integration/cri/cri_client.py"
PROTO_DIR="$PWD/src/criimage/proto"

# ---- layout --------------------------------------------------------------------
K="$WORK/k"                 # configs, sockets, pid files, logs: not on the mount
CTRD_SOCK="$K/c.sock"
SERVE_SOCK="$K/g.sock"
SNAP_SOCK="$K/s.sock"
HOSTS_DIR="$K/hosts"
CNI_DIR="$K/cni"
LOGS="$K/pod-logs"
PY_OUT="$K/py"
mkdir -p "$K" "$HOSTS_DIR" "$CNI_DIR" "$LOGS"

kubelet_cleanup() {
  bench_stop_pid "$K/containerd.pid" || true
  bench_stop_pid "$K/serve.pid" || true
}
BENCH_CLEANUP_HOOK=kubelet_cleanup

# ---- images and registry ------------------------------------------------------------
bench_step "build the bench image (OCI layout, ${#BENCH_USR_SLICES[@]} gzip layers of /usr slices)"
bench_usr_image "$WORK/layout" gzip usr-gzip "${BENCH_USR_SLICES[@]}" >"$WORK/image.env"
# shellcheck disable=SC1091
. "$WORK/image.env"
echo "image: $IMAGE_LAYERS layers, $IMAGE_RAW bytes uncompressed, $IMAGE_PACKED bytes gzip" >&2
USR_LAYERS=$IMAGE_LAYERS
USR_DIGEST=$IMAGE_DIGEST

bench_step "the sandbox image (static busybox, sleep)"
mkdir -p "$WORK/pause/bin"
cp /bin/busybox "$WORK/pause/bin/busybox"
ln -sf busybox "$WORK/pause/bin/sleep"
tar -C "$WORK/pause" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 \
  -cf "$WORK/pause.tar" bin
BENCH_IMAGE_CMD='["/bin/sleep", "3600"]' \
  bench_make_image "$WORK/layout" gzip pause "tar:$WORK/pause.tar" >/dev/null

bench_step "scratch file system (journaled ext4 on a loop device)"
bench_scratch_fs 4G
STORE="$MNT/gantry"
CTRD_ROOT="$MNT/containerd"

bench_step "start a local registry (docker-registry on 127.0.0.1) and push"
registry_start "$WORK"
REF=$(registry_push "$WORK/layout" usr-gzip bench/usr:gzip)
PAUSE=$(registry_push "$WORK/layout" pause bench/pause:v1)
REG_HOST=${REF%%/*}
mkdir -p "$HOSTS_DIR/$REG_HOST"
printf 'server = "http://%s"\n' "$REG_HOST" >"$HOSTS_DIR/$REG_HOST/hosts.toml"
echo "registry pid $REG_PID: $REF, $PAUSE" >&2

# containerd's config for SNAPSHOTTER (gantry: the door; overlayfs: its own).
containerd_config() {
  cat <<TOML
version = 2
root = "$CTRD_ROOT"
state = "$K/state"
$(bench_containerd_endpoints "$CTRD_SOCK" "$K")
[proxy_plugins.gantry]
  type = "snapshot"
  address = "$SNAP_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE"
  disable_apparmor = true
  restrict_oom_score_adj = true
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "$1"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "$CNI_DIR"
  conf_dir = "$CNI_DIR"
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "$HOSTS_DIR"
TOML
}
containerd_config gantry >"$K/gantry.toml"
containerd_config overlayfs >"$K/overlayfs.toml"

# cri_client.py against containerd's socket, then ARGS.
cri() { "$PY" "$CRI_CLIENT" "$PROTO_DIR" "$PY_OUT" "$CTRD_SOCK" "$@"; }

start_containerd() {  # CONFIG
  rm -rf "$CTRD_ROOT"
  : >"$K/containerd.log"
  containerd -c "$1" -l warn >>"$K/containerd.log" 2>&1 </dev/null &
  echo $! >"$K/containerd.pid"
  for _ in $(seq 1 200); do
    if ctr -a "$CTRD_SOCK" version >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  bench_die "containerd did not start; see $K/containerd.log"
}
start_serve() {
  rm -f "$SERVE_SOCK" "$SNAP_SOCK"
  : >"$K/serve.log"
  "$GANTRY" --root "$STORE" --log-level info serve --plain-http --listen "unix://$SERVE_SOCK" \
    --snapshotter-listen "unix://$SNAP_SOCK" --containerd "unix://$CTRD_SOCK" \
    >>"$K/serve.log" 2>&1 </dev/null &
  echo $! >"$K/serve.pid"
  for _ in $(seq 1 200); do
    if [ -S "$SERVE_SOCK" ] && [ -S "$SNAP_SOCK" ]; then return 0; fi
    sleep 0.05
  done
  bench_die "gantry serve did not start; see $K/serve.log"
}

# prepare SETTING: everything before kubelet's PullImage, untimed.
prepare() {
  bench_stop_pid "$K/containerd.pid"
  bench_stop_pid "$K/serve.pid"
  rm -rf "$STORE" "${LOGS:?}"/*
  case "$1" in
    gantry-cold | gantry-warm)
      "$GANTRY" --root "$STORE" pull --plain-http --quiet "$PAUSE" >/dev/null
      if [ "$1" = gantry-warm ]; then "$GANTRY" --root "$STORE" pull --plain-http --quiet "$REF" >/dev/null; fi
      start_serve
      start_containerd "$K/gantry.toml"
      "$GANTRY" --root "$STORE" publish "$PAUSE" --containerd "unix://$CTRD_SOCK" >/dev/null
      ;;
    containerd)
      start_containerd "$K/overlayfs.toml"
      cri pull "$PAUSE" >/dev/null
      ;;
  esac
  sync
}

# run SETTING: one timed run; prints "PULL START" (seconds).
run() {
  local out
  if [ "$1" = containerd ]; then
    out=$(cri pod "$REF" "$LOGS" /usr/sbin/ldconfig --version)
  else
    out=$(cri kubelet "$SERVE_SOCK" "$REF" "$LOGS" /usr/sbin/ldconfig --version)
  fi
  grep -q '^exit_code 0$' <<<"$out" || bench_die "$1: the container failed: $out"
  grep -q 'ldconfig' "$LOGS/c.log" || bench_die "$1: the log has no ldconfig output: $(cat "$LOGS/c.log")"
  if [ "$1" != containerd ]; then
    local n=0 d
    for d in $(python3 -c '
import json, sys
m = json.load(open(f"{sys.argv[1]}/blobs/sha256/{sys.argv[2][7:]}"))
print(" ".join(l["digest"][7:] for l in m["layers"]))' "$WORK/layout" "$USR_DIGEST"); do
      [ -f "$CTRD_ROOT/io.containerd.content.v1.content/blobs/sha256/$d" ] && n=$((n + 1))
    done
    [ "$n" -eq 0 ] || bench_die "$1: containerd fetched $n of $USR_LAYERS layer blobs"
  fi
  printf '%s %s\n' "$(sed -n 's/^pull_seconds //p' <<<"$out" | tail -n1)" \
    "$(sed -n 's/^start_seconds //p' <<<"$out")"
}

# ---- timing ---------------------------------------------------------------------------
UPTIME_BEFORE=$(uptime)
SETTINGS=(gantry-cold gantry-warm containerd)
: >"$OUT_DIR/kubelet-runs.txt"
for i in $(seq 1 "$RUNS"); do
  order=("${SETTINGS[@]}")
  if [ $((i % 2)) -eq 0 ]; then order=(containerd gantry-warm gantry-cold); fi
  for s in "${order[@]}"; do
    bench_step "run $i/$RUNS: $s"
    prepare "$s"
    read -r p st < <(run "$s")
    echo "$s $p $st" | tee -a "$OUT_DIR/kubelet-runs.txt" >&2
  done
done
bench_stop_pid "$K/containerd.pid"
bench_stop_pid "$K/serve.pid"
UPTIME_AFTER=$(uptime)

python3 - "$OUT_DIR/kubelet-runs.txt" "$OUT_DIR/kubelet-section.md" "$RUNS" "$IMAGE_RAW" \
  "$IMAGE_PACKED" "$USR_LAYERS" "$UPTIME_BEFORE" "$UPTIME_AFTER" <<'PY'
import statistics, sys, textwrap
runs_file, out, runs, raw, packed, layers, before, after = sys.argv[1:]
by = {}
for line in open(runs_file):
    s, p, st = line.split()
    by.setdefault(s, []).append((float(p), float(st)))
def med(s, i=None):
    v = by[s]
    return statistics.median(a + b if i is None else (a, b)[i] for a, b in v)
base = med("containerd")
rows = [("gantry, cold (PullImage on gantry downloads, unpacks, publishes)", "gantry-cold"),
        ("gantry, image in gantry's store (PullImage resolves and publishes)", "gantry-warm"),
        ("containerd alone (its CRI PullImage, overlayfs)", "containerd")]
def para(text):
    return textwrap.fill(text, width=76)
lines = ["## kubelet with split endpoints (issue 19)", "",
         para(f"/usr bench image ({layers} gzip layers, {int(raw)/1e6:.0f} MB uncompressed, "
              f"{int(packed)/1e6:.0f} MB gzip) from a local docker-registry; kubelet played by "
              "tests/integration/cri/cri_client.py, timing its calls on the client. Figure: "
              "PullImage, then RunPodSandbox + CreateContainer + StartContainer (the "
              "container runs /usr/sbin/ldconfig --version; its log is checked); medians "
              f"of {runs} cold runs each (fresh containerd 1.6 with the CRI plugin, host "
              "network, sandbox image pre-pulled; stores on a fresh ext4 loop mount), the "
              "settings' order alternating. `total` is the median of each run's sum."), "",
         "| setting | PullImage | pod start | total | × containerd alone |",
         "| --- | --- | --- | --- | --- |"]
for title, s in rows:
    total = med(s)
    lines.append(f"| {title} | {med(s, 0):.3f} s | {med(s, 1):.3f} s | {total:.3f} s | "
                 f"{total / base:.2f} |")
lines += ["", para("Target ≤ 0.35 × containerd alone. In the gantry settings containerd's "
                   "content store held no layer blob of the image (checked every run)."),
          para(f"Load: before `{before.strip()}`; after `{after.strip()}`."), "",
          para("Reproduce: `sudo bench/kubelet.sh` (RUNS=3 by default; RESULTS=none to "
               "leave this file alone)."), ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
if [ "$RESULTS" != none ]; then
  printf '\n' >>"$RESULTS"
  cat "$OUT_DIR/kubelet-section.md" >>"$RESULTS"
fi
