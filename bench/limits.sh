#!/usr/bin/env bash
# The machine's bound for a cold pull + unpack of the bench images (issue
# 21): each stage of the work alone, on the same kind of file system as
# bench/unpack.sh's stores (a fresh journaled ext4 loop mount), from the
# same kind of registry (Debian's docker-registry on 127.0.0.1):
#   loopback fetch of the layer blobs (curl, into a file on the mount),
#   sha256 of the compressed and of the uncompressed bytes (openssl, whose
#   SHA-256 gantry uses), inflate with gantry's decompressor (igzip from
#   ISA-L for gzip, zstd), GNU tar extracting each layer onto the mount;
#   bound = max(longest stage, sum of stages / CPUs).
# Prints per stage the median wall time and CPU seconds, the bound and the
# stage that limits it. bench/unpack.sh CASE… measures the same in its own
# run (bench_limits in lib.sh), next to the tools.
#
#   bench/limits.sh                        # every case, RUNS=3
#   RUNS=5 bench/limits.sh usr-gzip small  # some cases
#   BENCH_NICE=0 bench/limits.sh           # keep the session's CPU share
# Cases: big-gzip big-zstd usr-gzip usr-zstd small busybox (see lib.sh,
# bench_case_image; BENCH_BIG_BYTES sets the size of the big layer).
# JSON per case in $OUT_DIR (default /tmp/gantry-limits). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
RUNS=${RUNS:-3}
BENCH_NICE=${BENCH_NICE:--10}
OUT_DIR=${OUT_DIR:-/tmp/gantry-limits}
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=("${BENCH_CASES[@]}")

bench_init limits
bench_priority "$BENCH_NICE"
mkdir -p "$OUT_DIR"
command -v igzip >/dev/null || bench_die "igzip (package isal) is missing"

bench_step "images: ${CASES[*]}"
LAYOUT="$WORK/layout"
for c in "${CASES[@]}"; do bench_case_image "$LAYOUT" "$c" >"$WORK/$c.env"; done
bench_step "scratch file system (journaled ext4 on a loop device)"
bench_scratch_fs "${SCRATCH_SIZE:-12G}"
bench_step "registry"
registry_start "$WORK"
for c in "${CASES[@]}"; do registry_push "$LAYOUT" "$c" "bench/$c:latest" >/dev/null; done
for c in "${CASES[@]}"; do
  bench_step "$c: stages alone, $RUNS runs (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  bench_limits "$LAYOUT" "$c" "bench/$c" "$RUNS" "$OUT_DIR/limits-$c.json"
done
echo "JSON: $OUT_DIR/limits-*.json" >&2
