#!/usr/bin/env bash
# GPTQ against AdaRound through the integer engine (docs/quantization.md, "GPTQ or AdaRound"):
# the bare presets (gptq, adaround) and the best recipe with its rounding swapped, at
# weights = activations b = 2, 3, 4 and weights-only b = 2, 3 (8-bit activations), for float
# models trained with seeds 0, 1, 2. Prints one line per run and the medians over the seeds.
# Needs full MNIST: LOWBIT_DATA_DIR=DIR with DIR/mnist/ (or DIR the mnist/ folder itself).
# Usage: scripts/compare_rounding.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
lowbit=build/tools/lowbit
out=${1:-results/compare_rounding}
mkdir -p "$out"
{ echo "# $(date -u +%FT%TZ) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "$(nproc --all) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"; } | tee "$out/machine.txt"
for seed in 0 1 2; do
  [ -f "$out/fc_mnist_seed$seed.lbm" ] ||
    $lowbit train --dataset mnist --seed "$seed" --epochs 10 --out "$out/fc_mnist_seed$seed.lbm" >/dev/null
done
runs="$out/runs.txt"
: >"$runs"
for setting in preset best; do
  for config in "--bits 2" "--bits 3" "--bits 4" "--weight-bits 2 --act-bits 8" "--weight-bits 3 --act-bits 8"; do
    for rounding in gptq adaround; do
      for seed in 0 1 2; do
        if [ "$setting" = preset ]; then method=$rounding; else method="best --rounding $rounding"; fi
        start=$(date +%s%N)
        # shellcheck disable=SC2086
        $lowbit quantize --model "$out/fc_mnist_seed$seed.lbm" --method $method $config \
          --out "$out/q.lbq" >/dev/null
        ms=$(( ($(date +%s%N) - start) / 1000000 ))
        accuracy=$($lowbit eval --model "$out/q.lbq" | grep -o 'accuracy [0-9.]*%' | tr -dc '0-9.')
        echo "$setting|$config|$rounding|$seed|$accuracy|$ms" | tee -a "$runs"
      done
    done
  done
done
rm -f "$out/q.lbq"
# Medians over the seeds (accuracy and quantize wall time, data loading included).
python3 - "$runs" <<'PY' | tee "$out/summary.md"
import sys, statistics
rows = [l.strip().split('|') for l in open(sys.argv[1]) if l.strip()]
table = {}
for setting, config, rounding, seed, acc, ms in rows:
    table.setdefault((setting, config), {}).setdefault(rounding, []).append((int(seed), float(acc), int(ms)))
print("| setting | bits | rounding | seed 0 | seed 1 | seed 2 | median | median time |")
print("|---|---|---|---|---|---|---|---|")
for (setting, config), by_rounding in table.items():
    bits = config.replace("--weight-bits ", "W").replace(" --act-bits ", "/A").replace("--bits ", "W=A=")
    for rounding, runs in by_rounding.items():
        runs.sort()
        accs = [a for _, a, _ in runs]
        print(f"| {setting} | {bits} | {rounding} | " + " | ".join(f"{a:.2f}" for a in accs) +
              f" | **{statistics.median(accs):.2f}** | {statistics.median(m for _, _, m in runs) / 1000:.1f} s |")
PY
