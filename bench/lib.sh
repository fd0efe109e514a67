# shellcheck shell=bash disable=SC2034  # variables are for the sourcing script
# Shared helpers of the benchmarks in bench/ (sourced, not run).
#
#   . bench/lib.sh
#   bench_init unpack                  # root check, setup.sh, $WORK, trap
#   bench_build "$BUILD_DIR" gantry    # sets GANTRY, OUT_DIR
#   bench_usr_image "$WORK/layout" gzip latest "${BENCH_USR_SLICES[@]}"
#   bench_scratch_fs 4G                # journaled ext4 loop mount at $MNT
#   bench_tmpfs 6G                     # or a tmpfs there
#   registry_start "$WORK"             # docker-registry on 127.0.0.1:$REG_PORT (scripts/lib.sh)
#   registry_push "$WORK/layout" latest bench/usr:latest   # prints the ref
#
# Everything a helper starts or mounts is recorded here and undone by
# bench_cleanup, which bench_init installs as the EXIT trap; a script with
# more to stop sets BENCH_CLEANUP_HOOK to a function run first.
# Needs root (loop mounts). Nothing here is part of ctest.

BENCH_ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$BENCH_ROOT_DIR/scripts/lib.sh"

# Four disjoint slices of /usr, one layer each: ≥ 100 MB of real files
# (ELF binaries, Python sources, man pages) on every Debian machine of
# this project. Each entry is a space-separated list of paths under /.
BENCH_USR_SLICES=(
  "usr/lib/python3.11"
  "usr/libexec"
  "usr/share/man"
  "usr/sbin usr/lib/x86_64-linux-gnu/perl"
)
BENCH_MIN_UNCOMPRESSED=$((100 * 1000 * 1000))

WORK=""
MNT=""
BENCH_MOUNTED=""
BENCH_CLEANUP_HOOK=""
BENCH_NAME="bench"
BENCH_AUTOGROUP_NICE=""

bench_step() { printf '\n== %s\n' "$*" >&2; }
bench_die() { echo "$BENCH_NAME.sh: $*" >&2; exit 1; }

bench_cleanup() {
  if [ -n "$BENCH_CLEANUP_HOOK" ]; then "$BENCH_CLEANUP_HOOK" || true; fi
  if [ -n "$BENCH_AUTOGROUP_NICE" ]; then echo "$BENCH_AUTOGROUP_NICE" >/proc/self/autogroup 2>/dev/null || true; fi
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
  if [ -n "$BENCH_MOUNTED" ]; then umount "$MNT" 2>/dev/null || umount -l "$MNT" || true; fi
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}

# bench_init NAME: checks root, installs packages, makes $WORK (under /tmp)
# and sets the EXIT trap.
bench_init() {
  BENCH_NAME=$1
  if [ "$(id -u)" -ne 0 ]; then
    bench_die "needs root (it loop-mounts a scratch ext4 file system)"
  fi
  "$BENCH_ROOT_DIR/scripts/setup.sh"
  WORK=$(mktemp -d "/tmp/gantry-bench-$BENCH_NAME.XXXXXX")
  MNT="$WORK/mnt"
  trap bench_cleanup EXIT
}

# bench_build BUILD_DIR TARGET...: configures and builds (quiet unless it
# fails); sets GANTRY (the CLI) and OUT_DIR ($BUILD_DIR/bench, for JSON).
# With BENCH_GANTRY set (a gantry binary), nothing is built: GANTRY is that
# binary and OUT_DIR $BENCH_OUT_DIR (default /tmp/gantry-bench-out).
bench_build() {
  local build_dir=$1
  shift
  if [ -n "${BENCH_GANTRY:-}" ]; then
    [ -x "$BENCH_GANTRY" ] || bench_die "BENCH_GANTRY=$BENCH_GANTRY is not an executable"
    GANTRY=$(realpath "$BENCH_GANTRY")
    OUT_DIR=${BENCH_OUT_DIR:-/tmp/gantry-bench-out}
    mkdir -p "$OUT_DIR"
    return 0
  fi
  local log
  log=$(mktemp /tmp/gantry-build.XXXXXX.log)
  if ! { cmake -S "$BENCH_ROOT_DIR" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
         cmake --build "$build_dir" -j2 --target "$@"; } >"$log" 2>&1; then
    cat "$log" >&2
    bench_die "build failed (log: $log)"
  fi
  rm -f "$log"
  local abs
  case "$build_dir" in /*) abs=$build_dir ;; *) abs=$BENCH_ROOT_DIR/$build_dir ;; esac
  GANTRY="$abs/src/cli/gantry"
  OUT_DIR="$abs/bench"
  mkdir -p "$OUT_DIR"
}

# bench_make_image LAYOUT COMPRESSION TAG SOURCE...: writes a
# deterministic single-platform OCI image layout, one layer per SOURCE:
#   usr:PATHS   a tar of these space-separated paths under / (parent
#               directories first, then the paths, sorted, fixed mtime and
#               owners, pax), as in the bench image;
#   tar:FILE    an existing tar file, taken as is.
# COMPRESSION is gzip (pigz -n -6), zstd (zstd -3) or none. The config's
# Cmd is ["/bin/sh"], or the JSON array in $BENCH_IMAGE_CMD. Prints shell
# assignments IMAGE_LAYERS, IMAGE_RAW (tar bytes), IMAGE_PACKED (blob
# bytes) and IMAGE_DIGEST (the manifest); a layout may hold several tags.
bench_make_image() {
  python3 - "$@" <<'PY'
import hashlib, json, os, subprocess, sys

layout, compression, tag, sources = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
MTIME = 1700000000
MEDIA = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
         "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
         "none": "application/vnd.oci.image.layer.v1.tar"}
COMPRESSOR = {"gzip": ["pigz", "-n", "-6", "-c"],
              "zstd": ["zstd", "-q", "-3", "-T0", "-c"],
              "none": ["cat"]}
if compression not in MEDIA:
    sys.exit(f"unknown compression {compression}")

def put_blob(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return digest

def parents(path):
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]

def tar_stream(source):
    kind, _, arg = source.partition(":")
    if kind == "tar":
        return subprocess.Popen(["cat", arg], stdout=subprocess.PIPE)
    if kind != "usr":
        sys.exit(f"unknown layer source {source}")
    paths = arg.split()
    dirs = sorted({p for path in paths for p in parents(path)})
    # Parent directories first (not recursed), then the slices: a layer that
    # also unpacks into a sane tree.
    cmd = ["tar", "-C", "/", "--sort=name", "--format=pax", f"--mtime=@{MTIME}",
           "--owner=0", "--group=0", "--numeric-owner",
           "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
           "-cf", "-", "--no-recursion", *dirs, "--recursion", *paths]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE)

layers, diff_ids, history = [], [], []
total_raw = total_packed = 0
for i, source in enumerate(sources):
    tmp = os.path.join(blobs, f".layer{i}.tmp")
    with open(tmp, "wb") as out:
        tar = tar_stream(source)
        comp = subprocess.Popen(COMPRESSOR[compression], stdin=subprocess.PIPE, stdout=out)
        h, raw = hashlib.sha256(), 0
        while chunk := tar.stdout.read(1 << 20):
            h.update(chunk)
            raw += len(chunk)
            comp.stdin.write(chunk)
        comp.stdin.close()
        if tar.wait() != 0 or comp.wait() != 0:
            sys.exit(f"layer {i} ({source}): tar or {compression} failed")
    gh = hashlib.sha256()
    with open(tmp, "rb") as f:
        while chunk := f.read(1 << 20):
            gh.update(chunk)
    size = os.path.getsize(tmp)
    os.rename(tmp, os.path.join(blobs, gh.hexdigest()))
    layers.append({"mediaType": MEDIA[compression], "digest": "sha256:" + gh.hexdigest(),
                   "size": size})
    diff_ids.append("sha256:" + h.hexdigest())
    history.append({"created": "2023-11-14T22:13:20Z", "created_by": "bench " + source})
    total_raw += raw
    total_packed += size
    print(f"layer {i}: {source}: {raw} bytes tar, {size} bytes {compression}", file=sys.stderr)

def compact(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

config = compact({
    "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
    "config": {"Cmd": json.loads(os.environ.get("BENCH_IMAGE_CMD", '["/bin/sh"]')),
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
index_path = os.path.join(layout, "index.json")
index = {"schemaVersion": 2, "manifests": []}
if os.path.exists(index_path):
    with open(index_path) as f:
        index = json.load(f)
index["manifests"] = [m for m in index["manifests"]
                      if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
index["manifests"].append({
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + mdigest, "size": len(manifest),
    "annotations": {"org.opencontainers.image.ref.name": tag}})
with open(index_path, "wb") as f:
    f.write(compact(index))
print(f"IMAGE_LAYERS={len(layers)}")
print(f"IMAGE_RAW={total_raw}")
print(f"IMAGE_PACKED={total_packed}")
print(f"IMAGE_DIGEST=sha256:{mdigest}")
PY
}

# bench_usr_image LAYOUT COMPRESSION TAG SLICE...: the multi-layer bench
# image from /usr slices (see BENCH_USR_SLICES); fails if it is smaller
# than BENCH_MIN_UNCOMPRESSED. Prints the assignments of bench_make_image.
bench_usr_image() {
  local layout=$1 compression=$2 tag=$3
  shift 3
  local sources=() s out
  for s in "$@"; do sources+=("usr:$s"); done
  out=$(bench_make_image "$layout" "$compression" "$tag" "${sources[@]}") || return 1
  local raw
  raw=$(printf '%s\n' "$out" | sed -n 's/^IMAGE_RAW=//p')
  if [ "$raw" -lt "$BENCH_MIN_UNCOMPRESSED" ]; then
    bench_die "the bench image has only $raw bytes uncompressed (< $BENCH_MIN_UNCOMPRESSED)"
  fi
  printf '%s\n' "$out"
}

# bench_small_files_tar FILE [FILES] [DIRS]: a deterministic pax tar of
# FILES (default 50,000) regular files of 1–4 KiB of text-like content in
# DIRS (default 1,000) leaf directories (DIRS/25 top directories of 25
# each), fixed mtime, root-owned; directories come before their files.
bench_small_files_tar() {
  python3 - "$1" "${2:-50000}" "${3:-1000}" <<'PY'
import hashlib, io, sys, tarfile

out, nfiles, ndirs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MTIME = 1700000000
per_top = 25
tops = max(1, (ndirs + per_top - 1) // per_top)

def info(name, kind, size=0, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.mode, ti.mtime = kind, size, mode, MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti

with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
    leaf = [f"d{t:02d}/s{s:02d}" for t in range(tops) for s in range(per_top)][:ndirs]
    files_in = [nfiles // len(leaf) + (1 if i < nfiles % len(leaf) else 0) for i in range(len(leaf))]
    seen_top = set()
    for d, count in zip(leaf, files_in):
        top = d.split("/")[0]
        if top not in seen_top:
            seen_top.add(top)
            tar.addfile(info(top, tarfile.DIRTYPE, mode=0o755))
        tar.addfile(info(d, tarfile.DIRTYPE, mode=0o755))
        for i in range(count):
            name = f"{d}/f{i:03d}.txt"
            seed = hashlib.sha256(name.encode()).digest()
            size = 1024 + int.from_bytes(seed[:2], "little") % 3073  # 1–4 KiB
            line = (name + " " + seed.hex() + "\n").encode()
            data = (line * (size // len(line) + 1))[:size]
            tar.addfile(info(name, tarfile.REGTYPE, size), io.BytesIO(data))
PY
}

# bench_priority NICE: runs this script's session (every tool it starts,
# peers included, since they share its scheduler autogroup) at autogroup
# nice NICE until bench_cleanup restores it. On a machine where other
# sessions keep both CPUs busy, the kernel shares CPU time between
# autogroups, whatever each process's own nice, so a benchmark gets a
# fraction of a CPU and measures the queue, not the tools; a negative NICE
# gives it the CPUs back. Nothing outside this session is touched.
# NICE 0, or a kernel without autogroups, leaves scheduling as it is.
bench_priority() {
  [ "$1" != 0 ] && [ -w /proc/self/autogroup ] || return 0
  local current
  current=$(sed -n 's/.* nice \(-\?[0-9]*\)$/\1/p' /proc/self/autogroup)
  echo "$1" >/proc/self/autogroup
  BENCH_AUTOGROUP_NICE=${current:-0}
  echo "scheduler: $(cat /proc/self/autogroup) (was nice $BENCH_AUTOGROUP_NICE)" >&2
}

# bench_scratch_fs SIZE: a fresh journaled ext4 file system (mkfs.ext4's
# defaults: has_journal, data=ordered) on a loop device, mounted at $MNT.
# This machine's / is ext4 *without* a journal, where re-creating files
# right after deleting them is about 10x slower; stores go here instead.
bench_scratch_fs() {
  truncate -s "$1" "$WORK/scratch.img"
  mkfs.ext4 -q -F "$WORK/scratch.img"
  mkdir -p "$MNT"
  mount -o loop "$WORK/scratch.img" "$MNT"
  BENCH_MOUNTED=1
  findmnt -n -o SOURCE,FSTYPE,OPTIONS "$MNT" >&2
}

# bench_tmpfs SIZE: a fresh tmpfs of SIZE (as mount's size=) mounted at
# $MNT, for stores whose durability does not matter (--no-unpack pulls of
# many nodes at once, kept off the disk); bench_cleanup unmounts it.
bench_tmpfs() {
  mkdir -p "$MNT"
  mount -t tmpfs -o "size=$1" tmpfs "$MNT"
  BENCH_MOUNTED=1
  findmnt -n -o SOURCE,FSTYPE,OPTIONS "$MNT" >&2
}

# bench_stop_pid FILE: stops the process whose pid FILE holds (SIGTERM,
# SIGKILL after 10 s) and waits until it is gone; removes FILE. The process
# need not be our child (one started from a hyperfine prepare): polled.
# Scripts that generate other scripts copy it with `declare -f`.
bench_stop_pid() {
  [ -s "$1" ] || return 0
  local pid i state
  pid=$(cat "$1")
  rm -f "$1"
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 1 300); do
    state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
    case "$state" in "" | Z*) return 0 ;; esac
    [ "$i" -eq 200 ] && kill -KILL "$pid" 2>/dev/null
    sleep 0.05
  done
  echo "bench: pid $pid ($1) did not stop" >&2
  return 1
}

# bench_containerd_endpoints SOCK DIR: the part of a bench containerd's
# config.toml (version 2) that keeps it to itself: gRPC and ttrpc on SOCK,
# no TCP, debug or metrics listener, its opt directory under DIR.
bench_containerd_endpoints() {
  cat <<TOML
[grpc]
  address = "$1"
  tcp_address = ""
[ttrpc]
  address = "$1.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$2/opt"
TOML
}

# bench_rss_median FILE: the median of the /usr/bin/time -f %M lines (KiB)
# in FILE, in MiB with one decimal.
bench_rss_median() {
  python3 -c 'import statistics,sys; print(f"{statistics.median(int(l) for l in open(sys.argv[1]) if l.strip())/1024:.1f}")' "$1"
}

# bench_write_section RESULTS FILE HEADING: replaces the section of RESULTS
# that starts with the line HEADING ("## …", up to the next "## " heading)
# by the contents of FILE, or appends it; other sections stay as they are.
bench_write_section() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, sys
path, section, head = sys.argv[1], open(sys.argv[2]).read().rstrip("\n") + "\n", sys.argv[3]
text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
lines = text.splitlines(keepends=True)
start = next((i for i, l in enumerate(lines) if l.rstrip("\n") == head), None)
if start is None:
    text = text.rstrip("\n") + "\n\n" + section
else:
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    rest = "".join(lines[end:])
    text = "".join(lines[:start]) + section + ("\n" + rest if rest else "")
open(path, "w").write(text)
PY
}

# hyperfine of gantry against skopeo: ROUNDS rounds of RUNS runs each, the
# order alternating every round (hyperfine runs all runs of one command,
# then the other's, and on a shared machine the load drifts in between);
# each round's JSON is $OUT_DIR/NAME-hyperfine-R.json, and JSONS lists them
# for the caller to merge.
#   bench_rounds NAME GANTRY_CMD SKOPEO_CMD PREPARE
bench_rounds() {
  local name=$1 gantry_cmd=$2 skopeo_cmd=$3 prepare=$4 r json
  local -a first second
  JSONS=()
  for r in $(seq 1 "$ROUNDS"); do
    json="$OUT_DIR/$name-hyperfine-$r.json"
    JSONS+=("$json")
    first=(-n gantry "$gantry_cmd")
    second=(-n skopeo "$skopeo_cmd")
    if [ $((r % 2)) -eq 0 ]; then
      first=(-n skopeo "$skopeo_cmd")
      second=(-n gantry "$gantry_cmd")
    fi
    hyperfine --style basic --warmup 1 --runs "$RUNS" --prepare "$prepare" \
      --export-json "$json" "${first[@]}" "${second[@]}" >&2
  done
}

# Merges hyperfine JSON exports of the same commands (rounds) into OUT, in
# hyperfine's shape: per command every run's time, the median, mean, min
# and max over all of them, and user and system time weighted by runs.
#   bench_merge_rounds OUT ROUND_JSON…
bench_merge_rounds() {
  python3 - "$@" <<'PY'
import json, statistics, sys
out, *rounds = sys.argv[1:]
merged = {}
for path in rounds:
    for r in json.load(open(path))["results"]:
        m = merged.setdefault(r["command"], {"command": r["command"], "times": [], "user": 0.0, "system": 0.0})
        n = len(r["times"])
        m["times"] += r["times"]
        m["user"] += r["user"] * n
        m["system"] += r["system"] * n
results = []
for m in merged.values():
    t, n = m["times"], len(m["times"])
    results.append({**m, "user": m["user"] / n, "system": m["system"] / n, "median": statistics.median(t),
                    "mean": statistics.fmean(t), "min": min(t), "max": max(t)})
json.dump({"results": results}, open(out, "w"), indent=1)
PY
}

# ---- the cases of issue 21 (bench/unpack.sh CASE…, bench/limits.sh CASE…) ----

# The images, by case name: big-gzip, big-zstd (one layer of BENCH_BIG_BYTES
# of /usr slices replicated under r00/ r01/ …), usr-gzip, usr-zstd (the
# four-layer bench image), small (BENCH_SMALL_FILES files of 1–4 KiB in one
# gzip layer), busybox (busybox-static and its applet links, gzip, ~1 MB).
BENCH_CASES=(big-gzip big-zstd usr-gzip usr-zstd small busybox)
BENCH_BIG_BYTES=${BENCH_BIG_BYTES:-$((2 * 1024 * 1024 * 1024))}
BENCH_SMALL_FILES=${BENCH_SMALL_FILES:-50000}
BENCH_SMALL_DIRS=${BENCH_SMALL_DIRS:-1000}

# bench_big_tar FILE BYTES: a deterministic pax tar of at least BYTES: the
# BENCH_USR_SLICES (ELF binaries, Python sources, man pages: a mix of file
# sizes) again and again, copy i under rNN/ (GNU tar --transform, not of
# symlink targets), concatenated with tar -A.
bench_big_tar() {
  local out=$1 want=$2 part="$1.part" i=0 paths=() s
  for s in "${BENCH_USR_SLICES[@]}"; do read -ra p <<<"$s"; paths+=("${p[@]}"); done
  rm -f "$out"
  while [ ! -s "$out" ] || [ "$(stat -c %s "$out")" -lt "$want" ]; do
    tar -C / --sort=name --format=pax --mtime=@1700000000 --owner=0 --group=0 --numeric-owner \
      --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
      --transform "s,^usr,r$(printf %02d "$i")/usr,S" -cf "$part" \
      --no-recursion usr usr/lib usr/lib/x86_64-linux-gnu usr/share --recursion "${paths[@]}"
    if [ "$i" -eq 0 ]; then mv "$part" "$out"; else tar -Af "$out" "$part"; fi
    i=$((i + 1))
  done
  rm -f "$part"
  echo "big tar: $i copies, $(stat -c %s "$out") bytes" >&2
}

# bench_busybox_tar FILE: bin/busybox (busybox-static) with a symlink per
# applet and a minimal etc/, root-owned, fixed mtime: a busybox-like image.
bench_busybox_tar() {
  local dir
  dir=$(mktemp -d)
  mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/root"
  cp /bin/busybox "$dir/bin/busybox"
  local a
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$dir/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$dir/etc/passwd"
  printf 'root:x:0:\n' >"$dir/etc/group"
  chmod 1777 "$dir/tmp"
  tar -C "$dir" --sort=name --format=pax --mtime=@1700000000 --owner=0 --group=0 \
    --numeric-owner --pax-option=delete=atime,delete=ctime -cf "$1" bin etc root tmp
  rm -rf "$dir"
}

# bench_case_image LAYOUT CASE: adds the image of CASE to LAYOUT (tag CASE)
# and prints the assignments of bench_make_image. Large inputs are made
# once per $WORK.
bench_case_image() {
  local layout=$1 name=$2
  case "$name" in
    big-gzip | big-zstd)
      [ -s "$WORK/big.tar" ] || bench_big_tar "$WORK/big.tar" "$BENCH_BIG_BYTES"
      bench_make_image "$layout" "${name#big-}" "$name" "tar:$WORK/big.tar" ;;
    usr-gzip | usr-zstd) bench_usr_image "$layout" "${name#usr-}" "$name" "${BENCH_USR_SLICES[@]}" ;;
    small)
      [ -s "$WORK/small.tar" ] ||
        bench_small_files_tar "$WORK/small.tar" "$BENCH_SMALL_FILES" "$BENCH_SMALL_DIRS"
      bench_make_image "$layout" gzip small "tar:$WORK/small.tar" ;;
    busybox)
      bench_busybox_tar "$WORK/busybox.tar"
      bench_make_image "$layout" gzip busybox "tar:$WORK/busybox.tar" ;;
    *) bench_die "unknown case $name (cases: ${BENCH_CASES[*]})" ;;
  esac
}

# bench_limits LAYOUT CASE REPO RUNS JSON: the machine's bound for pulling
# and unpacking the image CASE of LAYOUT (pushed as repository REPO, e.g.
# bench/big-gzip, to the registry of registry_start), each stage alone, RUNS times: loopback fetch of every
# layer blob from that registry into a file on $MNT (curl), sha256 of the
# compressed and of the uncompressed bytes (openssl dgst: gantry's SHA-256
# is OpenSSL's), inflate to /dev/null with the decompressor gantry uses
# (ISA-L's igzip for gzip, zstd for zstd), GNU tar extracting each layer
# into its own empty directory on $MNT (not synced, like gantry). A stage's
# time is the sum over the layers; per stage the median wall time and its
# CPU time (user+sys of the children). bound = max(longest stage, sum of
# stages / CPUs). Writes JSON and prints a summary line.
bench_limits() {
  python3 - "$@" "$MNT" "$WORK" "127.0.0.1:$REG_PORT" "$(nproc)" <<'PY'
import json, os, resource, statistics, subprocess, sys, time

layout, case, repo, runs, out, mnt, work, registry, cpus = sys.argv[1:]
runs, cpus = int(runs), int(cpus)
blobs = os.path.join(layout, "blobs", "sha256")
index = json.load(open(os.path.join(layout, "index.json")))
mdesc = next(m for m in index["manifests"]
             if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == case)
manifest = json.load(open(os.path.join(blobs, mdesc["digest"].split(":")[1])))
layers = [(l["digest"], l["mediaType"]) for l in manifest["layers"]]
scratch, tmp = os.path.join(mnt, "limits"), os.path.join(work, "limits")
os.makedirs(tmp, exist_ok=True)

def run(cmd, stdout=subprocess.DEVNULL):
    """Runs cmd; returns (wall seconds, CPU seconds of the children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    subprocess.run(cmd, check=True, stdout=stdout)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

def inflate_cmd(media, path):
    if media.endswith("+zstd"):
        return ["zstd", "-d", "-q", "-c", path]
    if media.endswith("+gzip") or media.endswith(".gzip"):
        return ["igzip", "-d", "-c", path]
    return ["cat", path]

def fresh(path):
    subprocess.run(["rm", "-rf", path], check=True)
    os.makedirs(path)

stages = ["fetch", "sha256 compressed", "inflate", "sha256 uncompressed", "tar extract"]
samples = {s: [] for s in stages}
# The uncompressed layers, made once, untimed (page cache).
tars = []
for i, (digest, media) in enumerate(layers):
    p = os.path.join(tmp, f"layer{i}.tar")
    with open(p, "wb") as f:
        subprocess.run(inflate_cmd(media, os.path.join(blobs, digest.split(":")[1])), check=True, stdout=f)
    tars.append(p)
for r in range(runs):
    tot = {s: [0.0, 0.0] for s in stages}
    def add(stage, wc):
        tot[stage][0] += wc[0]
        tot[stage][1] += wc[1]
    fresh(scratch)
    subprocess.run(["sync"], check=True)
    for i, (digest, media) in enumerate(layers):
        blob = os.path.join(scratch, f"blob{i}")
        add("fetch", run(["curl", "-fsSL", "-o", blob,
                          f"http://{registry}/v2/{repo}/blobs/{digest}"]))
        add("sha256 compressed", run(["openssl", "dgst", "-sha256", blob]))
        add("inflate", run(inflate_cmd(media, blob)))
        add("sha256 uncompressed", run(["openssl", "dgst", "-sha256", tars[i]]))
        root = os.path.join(scratch, f"root{i}")
        os.makedirs(root)
        subprocess.run(["sync"], check=True)
        add("tar extract", run(["tar", "-xf", tars[i], "-C", root]))
    for s in stages:
        samples[s].append(tot[s])
    fresh(scratch)
subprocess.run(["rm", "-rf", scratch, tmp], check=True)

result = {"case": case, "runs": runs, "cpus": cpus, "layers": len(layers), "stages": {}}
for s in stages:
    result["stages"][s] = {"wall": statistics.median(w for w, _ in samples[s]),
                           "cpu": statistics.median(c for _, c in samples[s])}
walls = {s: v["wall"] for s, v in result["stages"].items()}
longest = max(walls, key=walls.get)
total = sum(walls.values())
result["bound"] = max(walls[longest], total / cpus)
result["limited_by"] = longest if walls[longest] >= total / cpus else f"all stages / {cpus} CPUs"
json.dump(result, open(out, "w"), indent=1)
print(f"{case}: bound {result['bound']:.3f} s ({result['limited_by']}); " +
      ", ".join(f"{s} {v['wall']:.3f} s wall {v['cpu']:.3f} s CPU" for s, v in result["stages"].items()),
      file=sys.stderr)
PY
}
