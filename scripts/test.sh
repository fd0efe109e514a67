#!/usr/bin/env bash
# Set-up, configure, build (-j2) and run the whole ctest suite twice: once
# as shipped (build/), then built with AddressSanitizer and UBSan
# (build-asan/, -DGANTRY_SANITIZE=address,undefined, -O1), where any finding
# aborts the test that made it. The plain build treats warnings as errors
# (-DGANTRY_WERROR=ON). Arguments go to both ctest runs.
# Exits non-zero on any failure.
#   BUILD_DIR       the plain build directory (default build)
#   ASAN_BUILD_DIR  the sanitizer build directory (default build-asan)
#   SANITIZE=0      skip the sanitizer stage (for a quick local run)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== test.sh: set-up done in $SECONDS s"

# run_suite DIR OPT [cmake options...]: configure with optimisation level
# OPT, build and ctest one tree.
run_suite() {
  local dir=$1 opt=$2 start=$SECONDS rc=0
  shift 2
  # -g1 (line tables only): stack traces and sanitizer reports keep file
  # and line, and the two builds take 40% less time than with full -g
  # (variable locations of the template-heavy code are most of the work).
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$opt -g1 -DNDEBUG" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="$opt -g1 -DNDEBUG" "$@" >/dev/null &&
    cmake --build "$dir" -j2 || return
  echo "== test.sh: $dir built in $((SECONDS - start)) s"
  start=$SECONDS
  # Integration tests start servers and containers; two at a time fits the
  # two cores without starving the registry fixtures.
  (cd "$dir" && ctest --output-on-failure -j2 --timeout 900 "${CTEST_ARGS[@]}") || rc=$?
  echo "== test.sh: $dir tested in $((SECONDS - start)) s (ctest exit $rc)"
  return "$rc"
}

CTEST_ARGS=("$@")
echo "== test.sh: plain build (${BUILD_DIR:-build})"
run_suite "${BUILD_DIR:-build}" -O2 -DGANTRY_SANITIZE= -DGANTRY_WERROR=ON
if [ "${SANITIZE:-1}" != 0 ]; then
  echo "== test.sh: AddressSanitizer + UBSan build (${ASAN_BUILD_DIR:-build-asan})"
  # A finding still fails its process, and its report goes to a file here:
  # a gantry run that a test expects to fail would otherwise hide a finding
  # behind its non-zero exit. Any report at all fails the stage.
  san_logs=$(mktemp -d /tmp/gantry-sanitizer.XXXXXX)
  export ASAN_OPTIONS="detect_leaks=1:log_path=$san_logs/asan"
  export UBSAN_OPTIONS="print_stacktrace=1:log_path=$san_logs/ubsan"
  status=0
  # -O1, as the sanitizers' own docs suggest: the instrumented build is
  # most of the run's time, and at -O2 GCC spends 60% more on it (sampled:
  # cmd_df.cc 35.9 s vs 22.4 s, credentials_test.cc 48.2 s vs 29.4 s).
  run_suite "${ASAN_BUILD_DIR:-build-asan}" -O1 -DGANTRY_SANITIZE=address,undefined || status=$?
  # A process a test kills with SIGKILL (the kill test, the soak) can leave
  # a report file opened but never written: empty files are listed, and
  # only a report with content fails the stage.
  find "$san_logs" -type f -empty -printf 'test.sh: empty sanitizer log %p (a killed process)\n' -delete
  # LeakSanitizer prints "Unable to get registers from thread N." when a
  # thread of the process it checks at exit is itself exiting at that
  # moment: a note on its own limits (that thread's registers are not
  # scanned, which can only add leak reports, never hide one), not a
  # finding. A file holding nothing else is listed and dropped; any other
  # line in it still fails the stage.
  for f in "$san_logs"/*; do
    [ -f "$f" ] || continue
    if ! grep -qvE '^==[0-9]+==Unable to get registers from thread [0-9]+\.$' "$f"; then
      echo "test.sh: LeakSanitizer note, not a finding ($f): $(tr '\n' ' ' <"$f")"
      rm -f "$f"
    fi
  done
  if [ -n "$(ls -A "$san_logs")" ]; then
    echo "test.sh: sanitizer reports (kept in $san_logs):" >&2
    for f in "$san_logs"/*; do
      echo "--- $f" >&2
      cat "$f" >&2
    done
    exit 1
  fi
  rm -rf "$san_logs"
  exit "$status"
fi
