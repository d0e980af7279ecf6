#!/usr/bin/env bash
# The ISA boundary of the portable build: no object outside the ISA files may hold an AVX, AVX2,
# AVX-512 or AMX instruction, or a CPU without them would crash there (SIGILL) before dispatch could pick.
# usage: isa_boundaries.sh NATIVE(ON|OFF) ISA_SOURCES(:-separated names) OBJECT...
# Exits 77 (skipped) in the native build, where -march=native gives every file the build CPU's ISA.
set -euo pipefail
native=$1 isa_sources=$2
shift 2
if [ "$native" = "ON" ] || [ "$native" = "1" ]; then
  echo "skipped: the native build (-march=native) may use any ISA the build CPU has in every file"
  exit 77
fi
command -v objdump >/dev/null || { echo "objdump not found (binutils)" >&2; exit 1; }
IFS=':' read -r -a isa <<<"$isa_sources"
checked=0 failed=0
for object in "$@"; do
  name=$(basename "$object")
  skip=0
  for source in "${isa[@]}"; do [ "$name" = "$(basename "$source").o" ] && skip=1; done
  if [ "$skip" = 1 ]; then echo "ISA file, not checked: $name"; continue; fi
  # VEX and EVEX instructions: ymm/zmm registers, AVX-512 mask registers, or a v-prefixed mnemonic
  # (SSE has none; vmovdqa on xmm registers is AVX); AMX: tile registers or tile configuration.
  hits=$(objdump -d --no-show-raw-insn "$object" |
         grep -E $'^\s+[0-9a-f]+:\s+' |
         grep -E '%[yz]mm[0-9]|%k[0-7]|%tmm[0-7]|:\s+v[a-z0-9]+\s|:\s+(ld|st)tilecfg|:\s+tilerelease' | head -n 3 || true)
  checked=$((checked + 1))
  if [ -n "$hits" ]; then
    echo "FAIL $name holds AVX or AMX instructions outside the ISA files:"
    echo "$hits"
    failed=$((failed + 1))
  fi
done
[ "$checked" -gt 0 ] || { echo "no objects checked" >&2; exit 1; }
echo "$checked objects checked, $failed with AVX/AVX-512/AMX instructions outside the ISA files"
[ "$failed" -eq 0 ]
