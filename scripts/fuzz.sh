#!/usr/bin/env bash
# Fuzzes every target of tests/fuzz/ for SECONDS each (default 60), one
# after the other:
#   scripts/fuzz.sh [SECONDS]
#
# Configures and builds FUZZ_BUILD_DIR (default build-fuzz) with
# -DGANTRY_FUZZ=ON: GCC with ASan+UBSan and coverage instrumentation,
# linked with clang-14's libFuzzer (see the top-level CMakeLists.txt). Each
# fuzz_NAME runs with -max_total_time=SECONDS on a copy of its corpus
# testdata/fuzz/NAME/, so the repository is not changed; a crash, leak,
# sanitizer report, timeout (-timeout=10 per input) or out-of-memory
# (-rss_limit_mb=2048) is saved under the work directory's artifacts/NAME/.
# Prints each target's final libFuzzer status line (runs, coverage
# features "ft", corpus size, exec/s) and exits non-zero naming every
# target that failed and its crash files; the work directory is then kept.
#
# Fixing a finding: fix the library, copy the crash file to
# testdata/fuzz/NAME/crash-<what> (ctest's fuzz_NAME_regression_test runs
# every file there), and run this again.
#
# Runs as root or as a user: the tar target applies layers unprivileged, in
# temporary directories under $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS]" >&2
  exit 2
fi
build=${FUZZ_BUILD_DIR:-build-fuzz}

scripts/setup.sh
nice cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGANTRY_FUZZ=ON >/dev/null
names=()
for src in tests/fuzz/*_fuzz.cc; do
  n=$(basename "$src" _fuzz.cc)
  names+=("$n")
done
nice cmake --build "$build" -j2 --target "${names[@]/#/fuzz_}"

work=$(mktemp -d "${TMPDIR:-/tmp}/gantry-fuzz.XXXXXX")
failed=()
for n in "${names[@]}"; do
  mkdir -p "$work/corpus/$n" "$work/artifacts/$n"
  cp -r "testdata/fuzz/$n/." "$work/corpus/$n/"
  echo "== fuzz_$n: ${seconds}s, $(ls "testdata/fuzz/$n" | wc -l) corpus files"
  rc=0
  UBSAN_OPTIONS=print_stacktrace=1 "$build/tests/fuzz/fuzz_$n" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$n/" "$work/corpus/$n" >"$work/$n.log" 2>&1 || rc=$?
  # The last status line: "#RUNS DONE cov: … ft: … corp: UNITS/BYTES … exec/s: … rss: …".
  grep -E '^#[0-9]+' "$work/$n.log" | tail -n 1 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work/$n.log" |
    tr '\n' ' ' || true
  echo
  crashes=$(find "$work/artifacts/$n" -type f ! -name 'slow-unit-*' | sort)
  if [ "$rc" -ne 0 ] || [ -n "$crashes" ]; then
    grep -E 'ERROR: |runtime error|fuzz invariant|SUMMARY' "$work/$n.log" | head -n 5 || true
    failed+=("fuzz_$n (exit $rc; log $work/$n.log; inputs: ${crashes:-none})")
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: FAILED:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  echo "work directory kept: $work" >&2
  exit 1
fi
rm -rf "$work"
echo "fuzz.sh: ${#names[@]} targets, ${seconds}s each, no crash"
