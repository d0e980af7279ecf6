#!/usr/bin/env bash
# The README's first command: set up, then run the FC_NN bit-width study and write its table,
# sweep.json and plots to results/<dataset>/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
dataset="${LOWBIT_DATASET:-mnist}"
exec build/tools/lowbit sweep --dataset "$dataset" --bits 1-8 --epochs 10 --seed 0 \
  --out-dir "results/$dataset" "$@"
