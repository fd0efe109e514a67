#!/usr/bin/env bash
# What a second busy thread of the same process costs the loading of a
# shared library on this machine (issue 21, bench/RESULTS.md): the start-up
# work of a cold pull (loading libcurl with its 25 libraries, libarchive)
# is mmap/mprotect/page-fault work, and every change to the address space
# of a process with another thread running on the other CPU waits for that
# CPU to flush its TLB (an inter-processor interrupt, costly in a VM).
#
#   bench/thread_cost.sh        # RUNS=21
#
# Prints, for dlopen("libcurl.so.4") then dlopen("libarchive.so.13") in a
# fresh process, the median time with nothing else running in the process,
# with a second thread spinning (no system calls), and with a second thread
# faulting in fresh memory; and, as the control, two processes hashing at
# once against one alone (compute that shares nothing). Needs gcc and the
# libraries (libcurl4, libarchive13: installed by scripts/setup.sh).
set -euo pipefail
RUNS=${RUNS:-21}
WORK=$(mktemp -d /tmp/gantry-thread-cost.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cat >"$WORK/probe.c" <<'C'
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
static volatile int stop;
static void* spin(void* arg) {
  (void)arg;
  volatile unsigned long x = 0;
  while (!stop) x++;
  return NULL;
}
static void* touch(void* arg) {
  (void)arg;
  while (!stop) {
    char* p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    for (int i = 0; i < (1 << 20); i += 4096) p[i] = 1;
    munmap(p, 1 << 20);
  }
  return NULL;
}
int main(int argc, char** argv) {
  int mode = argc > 1 ? atoi(argv[1]) : 0;
  pthread_t t;
  if (mode == 1) pthread_create(&t, NULL, spin, NULL);
  if (mode == 2) pthread_create(&t, NULL, touch, NULL);
  struct timespec settle = {0, 2000000};
  nanosleep(&settle, NULL);
  double t0 = now_ms();
  if (!dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL)) return 1;
  if (!dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL)) return 1;
  printf("%.3f\n", now_ms() - t0);
  stop = 1;
  return 0;
}
C
gcc -O2 -o "$WORK/probe" "$WORK/probe.c" -ldl -lpthread

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
for mode in 0 1 2; do
  : >"$WORK/m$mode"
done
for _ in $(seq 1 "$RUNS"); do  # the modes interleaved: the machine's speed drifts
  for mode in 0 1 2; do "$WORK/probe" "$mode" >>"$WORK/m$mode"; done
done
echo "dlopen libcurl + libarchive, median of $RUNS fresh processes:"
echo "  alone in its process:            $(median <"$WORK/m0") ms"
echo "  beside a spinning thread:        $(median <"$WORK/m1") ms"
echo "  beside a thread faulting memory: $(median <"$WORK/m2") ms"

head -c 256M /dev/urandom >"$WORK/data"
openssl dgst -sha256 "$WORK/data" >/dev/null  # page cache
: >"$WORK/alone"
: >"$WORK/pair"
for _ in 1 2 3 4 5; do
  /usr/bin/time -f %e -a -o "$WORK/alone" openssl dgst -sha256 "$WORK/data" >/dev/null
  /usr/bin/time -f %e -a -o "$WORK/pair" openssl dgst -sha256 "$WORK/data" >/dev/null &
  /usr/bin/time -f %e -a -o "$WORK/pair" openssl dgst -sha256 "$WORK/data" >/dev/null
  wait
done
echo "control, sha256 of 256 MiB (median of 5): one process $(median <"$WORK/alone") s," \
  "each of two at once $(median <"$WORK/pair") s"
