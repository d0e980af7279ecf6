#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan in build-fuzz/, writes their seed
# corpora, and runs each for LOWBIT_FUZZ_SECONDS seconds (default 60), LOWBIT_FUZZ_JOBS targets at
# a time (default 1). Exits non-zero if any target has a finding; the input that triggered it is
# kept in build-fuzz/findings/, the log in build-fuzz/TARGET.log.
# usage: bash scripts/fuzz.sh [TARGET...]      (default: every fuzz_* target)
set -euo pipefail
cd "$(dirname "$0")/.."
# clang's libFuzzer and sanitizer runtimes, its OpenMP, and llvm-symbolizer for readable reports.
LOWBIT_EXTRA_PACKAGES="clang libclang-rt-14-dev libomp-14-dev llvm-14" scripts/setup.sh
seconds="${LOWBIT_FUZZ_SECONDS:-60}"
jobs="${LOWBIT_FUZZ_JOBS:-1}"
build=build-fuzz
mkdir -p "$build"
CXX=clang++ CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOWBIT_FUZZ=ON \
  -DLOWBIT_SANITIZE=address,undefined -DLOWBIT_BUILD_TESTS=OFF -DLOWBIT_BUILD_BENCH=OFF \
  -DLOWBIT_BUILD_PYTHON=OFF -DLOWBIT_INSTALL=OFF >"$build/cmake.log" 2>&1 \
  || { cat "$build/cmake.log" >&2; exit 1; }
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for source in fuzz/fuzz_*.cc; do targets+=("$(basename "$source" .cc)"); done
fi
cmake --build "$build" -j"$(nproc)" --target make_corpus "${targets[@]}" >"$build/build.log" 2>&1 \
  || { grep -E -B2 -A6 "error" "$build/build.log" | head -60 >&2; exit 1; }
rm -rf "$build/seeds" && "$build/fuzz/make_corpus" "$build/seeds" >/dev/null
mkdir -p "$build/findings"

# One target: its corpus (seeds added to what earlier runs kept), then a line of result.
run_target() {
  local target="$1" corpus="$build/corpus/$1"
  mkdir -p "$corpus"
  cp -n "$build/seeds/${target#fuzz_}"/* "$corpus/" 2>/dev/null || true
  # A huge allocation is a finding too: a hostile size must be refused before anything is allocated.
  if "$build/fuzz/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
       -artifact_prefix="$build/findings/$target-" -print_final_stats=1 "$corpus" >"$build/$target.log" 2>&1; then
    echo "$target: $(grep -E '^stat::number_of_executed_units' "$build/$target.log" | awk '{print $2}') runs in ${seconds} s, $(ls "$corpus" | wc -l) corpus entries, no finding"
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
