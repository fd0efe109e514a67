#!/usr/bin/env bash
# Soak test: many concurrent gantry commands and CRI calls against a
# registry behind a fault-injecting proxy, with random kill -9s; at the end
# the store must be consistent (`gantry fsck` exits 0) and every soak image
# (the five below and the alias, whether the removals left them tagged or
# not) and any other image still tagged must pull and mount.
#
#   bench/soak.sh DURATION        # seconds of load, e.g. 600; ctest runs 100
#   GANTRY=build/src/cli/gantry GANTRY_FAULTPROXY=build/tests/fixtures/gantry-faultproxy \
#     SOAK_SEED=7 bench/soak.sh 100
#
# Set-up (here):
#   - gantry and gantry-faultproxy: $GANTRY and $GANTRY_FAULTPROXY when both
#     are set (the ctest test sets them), else built in $BUILD_DIR (build);
#   - five small images in one OCI layout, pushed with skopeo into Debian's
#     docker-registry on a free 127.0.0.1 port (scripts/lib.sh), about 6 MB
#     in all, so that many pull/remove cycles fit in a short run:
#       soak/a:v1  base + top_a                 (gzip; also tagged soak/alias:latest)
#       soak/b:v1  base + mid + top_b           (gzip; shares base with a)
#       soak/c:v1  base + mid + big + top_c     (gzip; shares base, mid with b)
#       soak/d:v1  big + top_d                  (zstd: its big blob differs from c's)
#       soak/e:v1  top_e                        (one uncompressed layer)
#     base: 300 small text files and 256 KiB of random bytes; mid: 512 KiB
#     random; big: 2 MiB random; every top_X holds /soak/name with a marker
#     of its image, checked after each mount;
#   - gantry-faultproxy in front of the registry: each request meets, with
#     probability $SOAK_FAULT_RATE (0.1), one of: a cut at a random point,
#     503, 429 (Retry-After: 1), a stall at a random point for 3 s, a
#     trickle of one byte per 20 ms, inverted bytes (all with the seed);
#   - the store on a fresh journaled ext4 loop mount (bench_scratch_fs), as
#     the other benches do: a real disk file system with a journal, where
#     fsync, rename and overlayfs behave as on a node (tmpfs has no
#     durability to get wrong), and bounded in size, so a leak shows as
#     ENOSPC instead of filling /tmp.
#
# Load (bench/soak_driver.py, for DURATION seconds): `gantry serve` on a
# socket in the work dir, and concurrent workers: $SOAK_PULL_WORKERS (3)
# looping `gantry pull` of a random image through the proxy (a fifth with
# --no-unpack); one `gantry rmi` of a random name; one `gantry prune` (a
# third of them --all); one `gantry mount` + marker check + `gantry umount`;
# $SOAK_CRI_WORKERS (2) doing CRI PullImage / RemoveImage / ListImages
# with Python grpcio (stubs generated from src/criimage/proto); and a
# killer that every 0.2–3 s SIGKILLs a random gantry process the driver
# started (a tenth of the time `gantry serve`, which is then restarted).
# Failures caused by faults, kills and races are counted by class (exit
# code, gRPC code); a crash, a sanitizer report, an exit code an operation
# should not return, an error that is not one `gantry: ...` line, a stuck
# command (over 300 s) or a serve that dies by itself is a real failure.
#
# End: every command still running is SIGKILLed, serve gets SIGTERM, the
# proxy stops injecting faults (SIGUSR1) but keeps forwarding, so images
# keep their names; then `gantry fsck` must exit 0, every image still
# tagged must pull again and mount with its marker, and fsck must exit 0
# again. Prints operations (ok/failed/killed) per kind, failures by class,
# kills, faults injected by kind and the fsck result, then PASS or FAIL.
# Exits 1 on any real failure; their logs (and the serve logs) stay in a
# /tmp/gantry-soak-logs.* directory whose path is printed; it is removed
# when the soak passes.
#
# Needs root (loop mount, overlay mounts). The ctest version is
# tests/integration/soak/ (bench/soak.sh 100).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:?usage: bench/soak.sh DURATION_SECONDS}
BUILD_DIR=${BUILD_DIR:-build}
SEED=${SOAK_SEED:-$((RANDOM * 32768 + RANDOM))}
FAULT_RATE=${SOAK_FAULT_RATE:-0.1}
PULL_WORKERS=${SOAK_PULL_WORKERS:-3}
CRI_WORKERS=${SOAK_CRI_WORKERS:-2}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init soak
if [ -n "${GANTRY:-}" ] && [ -n "${GANTRY_FAULTPROXY:-}" ]; then
  FAULTPROXY=$GANTRY_FAULTPROXY
else
  bench_build "$BUILD_DIR" gantry gantry-faultproxy
  FAULTPROXY=${GANTRY%/src/cli/gantry}/tests/fixtures/gantry-faultproxy
fi
[ -x "$GANTRY" ] || bench_die "no gantry at $GANTRY"
[ -x "$FAULTPROXY" ] || bench_die "no gantry-faultproxy at $FAULTPROXY"

LOGS=$(mktemp -d /tmp/gantry-soak-logs.XXXXXX)
PROXY_PID=""
stop_soak() {
  if [ -n "$PROXY_PID" ]; then kill -TERM "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; fi
  # Whatever a failed run left mounted under the work dir, deepest first,
  # before bench_cleanup unmounts the scratch file system ($MNT itself).
  local m
  for m in $(awk -v w="$WORK/" -v s="$MNT" 'index($5, w) == 1 && $5 != s { print $5 }' \
               /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
}
BENCH_CLEANUP_HOOK=stop_soak
echo "soak: seed $SEED, duration $DURATION s, fault rate $FAULT_RATE, gantry $GANTRY" >&2

bench_step "five images (shared layers) in an OCI layout"
python3 - "$WORK/layers" <<'PY'
import io, os, random, sys, tarfile
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = random.Random(20261127)  # fixed: the images are the same in every run
MTIME = 1700000000

def entry(name, kind, data=b"", mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.mode, ti.mtime = kind, len(data), mode, MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti, io.BytesIO(data) if data else None

def layer(name, entries):
    with tarfile.open(os.path.join(out, name + ".tar"), "w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            t.addfile(*e)

def random_bytes(n):
    return rng.getrandbits(8 * n).to_bytes(n, "little")

base = [entry("soak", tarfile.DIRTYPE, mode=0o755), entry("soak/base", tarfile.DIRTYPE, mode=0o755)]
for i in range(300):
    line = ("soak base file %d " % i).encode() + random_bytes(16).hex().encode() + b"\n"
    base.append(entry("soak/base/f%03d.txt" % i, tarfile.REGTYPE, line * rng.randint(20, 80)))
base.append(entry("soak/base/random.bin", tarfile.REGTYPE, random_bytes(256 << 10)))
layer("base", base)
layer("mid", [entry("soak", tarfile.DIRTYPE, mode=0o755),
              entry("soak/mid.bin", tarfile.REGTYPE, random_bytes(512 << 10))])
layer("big", [entry("soak", tarfile.DIRTYPE, mode=0o755),
              entry("soak/big.bin", tarfile.REGTYPE, random_bytes(2 << 20), 0o600)])
for x in "abcde":
    layer("top_" + x, [entry("soak", tarfile.DIRTYPE, mode=0o755),
                       entry("soak/name", tarfile.REGTYPE, ("image-%s\n" % x).encode())])
PY
L="$WORK/layers"
LAYOUT="$WORK/layout"
bench_make_image "$LAYOUT" gzip a "tar:$L/base.tar" "tar:$L/top_a.tar" >/dev/null
bench_make_image "$LAYOUT" gzip b "tar:$L/base.tar" "tar:$L/mid.tar" "tar:$L/top_b.tar" >/dev/null
bench_make_image "$LAYOUT" gzip c "tar:$L/base.tar" "tar:$L/mid.tar" "tar:$L/big.tar" "tar:$L/top_c.tar" >/dev/null
bench_make_image "$LAYOUT" zstd d "tar:$L/big.tar" "tar:$L/top_d.tar" >/dev/null
bench_make_image "$LAYOUT" none e "tar:$L/top_e.tar" >/dev/null
echo "layout: $(du -sb "$LAYOUT/blobs" | cut -f1) bytes of blobs" >&2

bench_step "scratch file system (journaled ext4 on a loop device) for the store"
bench_scratch_fs 2G

bench_step "registry on 127.0.0.1, and the fault proxy in front of it"
registry_start "$WORK"
for x in a b c d e; do registry_push "$LAYOUT" "$x" "soak/$x:v1" >/dev/null; done
registry_push "$LAYOUT" a soak/alias:latest >/dev/null
"$FAULTPROXY" --upstream "http://127.0.0.1:$REG_PORT" --rate "$FAULT_RATE" --seed "$SEED" \
  --ready-file "$WORK/proxy.addr" --stats-file "$WORK/proxy.stats" \
  >"$WORK/proxy.out" 2>"$LOGS/proxy.err" &
PROXY_PID=$!
for _ in $(seq 1 200); do
  [ -s "$WORK/proxy.addr" ] && break
  kill -0 "$PROXY_PID" 2>/dev/null || bench_die "gantry-faultproxy exited: $(cat "$LOGS/proxy.err")"
  sleep 0.1
done
[ -s "$WORK/proxy.addr" ] || bench_die "gantry-faultproxy did not write $WORK/proxy.addr"
PROXY=$(cat "$WORK/proxy.addr")
echo "registry 127.0.0.1:$REG_PORT (pid $REG_PID), proxy $PROXY (pid $PROXY_PID)" >&2

IMAGES=()
for x in a b c d e; do IMAGES+=("$PROXY/soak/$x:v1=image-$x"); done
IMAGES+=("$PROXY/soak/alias:latest=image-a")

bench_step "soak: $DURATION s of concurrent pulls, removals, prunes, mounts, CRI calls and kills"
status=0
/usr/bin/python3 bench/soak_driver.py --gantry "$GANTRY" --root "$MNT/store" --work "$WORK" \
  --logs "$LOGS" --socket "$WORK/cri.sock" --proto "$BENCH_ROOT_DIR/src/criimage/proto" \
  --proxy-pid "$PROXY_PID" --proxy-stats "$WORK/proxy.stats" --duration "$DURATION" \
  --seed "$SEED" --pull-workers "$PULL_WORKERS" --cri-workers "$CRI_WORKERS" \
  "${IMAGES[@]}" || status=$?
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
if [ "$status" -eq 0 ]; then
  rm -rf "$LOGS"
else
  cp "$WORK/registry.log" "$LOGS/" 2>/dev/null || true
  echo "soak: FAILED (seed $SEED); logs kept in $LOGS" >&2
fi
exit "$status"
