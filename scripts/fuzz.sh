#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan in build-fuzz/, writes their seed
# corpora, and runs each for LOWBIT_FUZZ_SECONDS seconds (default 60), LOWBIT_FUZZ_JOBS targets at
# a time (default 1). Exits non-zero if any target has a finding; the input that triggered it is
# kept in build-fuzz/findings/, the log in build-fuzz/TARGET.log. For the model loaders it also
# reports how many seeds, executed inputs and kept corpus entries loaded (LOWBIT_FUZZ_LOAD_STATS).
# usage: bash scripts/fuzz.sh [TARGET...]      (default: every fuzz_* target)
set -euo pipefail
cd "$(dirname "$0")/.."
# clang's libFuzzer and sanitizer runtimes, its OpenMP, and llvm-symbolizer (scripts/setup.sh
# names the Debian packages and stops with an error if any is missing).
LOWBIT_WITH_CLANG=1 scripts/setup.sh
seconds="${LOWBIT_FUZZ_SECONDS:-60}"
jobs="${LOWBIT_FUZZ_JOBS:-1}"
build=build-fuzz
mkdir -p "$build"
# A folder already configured for fuzzing is used as it is: .ci/run configures build-fuzz with the
# test suite too (the same instrumented libraries serve both), and building it again without the
# tests would only cost time.
if ! grep -qs '^LOWBIT_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
  cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLOWBIT_FUZZ=ON -DLOWBIT_SANITIZE=address,undefined -DLOWBIT_BUILD_TESTS=OFF -DLOWBIT_BUILD_BENCH=OFF \
    -DLOWBIT_BUILD_PYTHON=OFF -DLOWBIT_INSTALL=OFF >"$build/cmake.log" 2>&1 \
    || { cat "$build/cmake.log" >&2; exit 1; }
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for source in fuzz/fuzz_*.cc; do targets+=("$(basename "$source" .cc)"); done
fi
cmake --build "$build" -j"$(nproc)" --target make_corpus "${targets[@]}" >"$build/build.log" 2>&1 \
  || { grep -E -B2 -A6 "error" "$build/build.log" | head -60 >&2; exit 1; }
rm -rf "$build/seeds" && "$build/fuzz/make_corpus" "$build/seeds" >/dev/null
mkdir -p "$build/findings"
export LOWBIT_FUZZ_LOAD_STATS=1

# "N of M" summed over the load-stats lines a target prints at exit (fuzz/fuzz_input.h, one per
# process); empty for targets without them.
load_stats() {
  sed -n 's/^load stats: [^ ]* loaded \([0-9]*\) of \([0-9]*\) inputs.*/\1 \2/p' "$1" |
    awk '{ loaded += $1; runs += $2 } END { if (NR) printf "%d of %d (%.0f %%)", loaded, runs, runs ? 100 * loaded / runs : 0 }'
}

# Every file of a folder through a target once, no fuzzing: how many of them load.
replay() {
  local target="$1" dir="$2" log="$build/$1.replay.log"
  find "$dir" -type f -print0 | xargs -0 -r "$build/fuzz/$target" -runs=1 >"$log" 2>&1 || true
  load_stats "$log"
}

# One target: its corpus (seeds added to what earlier runs kept), then a line of result.
run_target() {
  local target="$1" corpus="$build/corpus/$1" seeds="$build/seeds/${1#fuzz_}"
  mkdir -p "$corpus"
  cp -n "$seeds"/* "$corpus/" 2>/dev/null || true
  local seeds_loaded=""
  grep -q LoadStats "fuzz/$target.cc" && seeds_loaded="$(replay "$target" "$seeds")"
  # A huge allocation is a finding too: a hostile size must be refused before anything is allocated.
  if "$build/fuzz/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
       -artifact_prefix="$build/findings/$target-" -print_final_stats=1 "$corpus" >"$build/$target.log" 2>&1; then
    echo "$target: $(grep -E '^stat::number_of_executed_units' "$build/$target.log" | awk '{print $2}') runs in ${seconds} s, $(ls "$corpus" | wc -l) corpus entries, no finding"
    if [ -n "$seeds_loaded" ]; then
      echo "  loaded: seeds $seeds_loaded, executed inputs $(load_stats "$build/$target.log"), corpus entries $(replay "$target" "$corpus")"
    fi
  else
    echo "$target: FINDING (log $build/$target.log, input in $build/findings/)"
    grep -E "ERROR|runtime error|SUMMARY" "$build/$target.log" | head -5
    return 1
  fi
}

failed=0
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
  pids=()
  for target in "${targets[@]:i:jobs}"; do
    run_target "$target" >"$build/$target.result" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  for target in "${targets[@]:i:jobs}"; do cat "$build/$target.result"; done
done
exit "$failed"
