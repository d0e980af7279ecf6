#!/usr/bin/env bash
# Re-measures every figure in the README: the study and all PTQ methods on full MNIST for
# training seeds 0, 1 and 2, Fashion-MNIST, QAT at 4..1 bits, mixed precision, and
# integer-engine speed.
# Needs full MNIST: LOWBIT_DATA_DIR=DIR with the official IDX files in DIR/mnist/ (or DIR the mnist/
# folder itself). Takes ~17 min.
# `reproduce.sh --cifar` runs the CIFAR-10 part instead (README, "CIFAR-10 recipes"): the recipe
# for cifar_small and resnet20 over seeds 0, 1, 2, a PTQ sweep of each on the integer engine, its
# speed, and the training-speed comparison with PyTorch.
# Needs DIR/cifar10/cifar-10-binary.tar.gz; takes many hours on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
lowbit=build/tools/lowbit
[ -x "$lowbit" ] || scripts/setup.sh
out=results/reproduce
mkdir -p "$out"

if [ "${1:-}" = "--cifar" ]; then
  out=results/reproduce/cifar
  mkdir -p "$out"
  { echo "# $(date -u +%FT%TZ) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
         "$(nproc --all) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"; } | tee "$out/machine.txt"
  # The issue's PyTorch recipe: SGD Nesterov 0.9, weight decay 5e-4, one-cycle to 0.1, label
  # smoothing 0.1, batch 128, crop (padding 4) + flip. Epochs: CIFAR_SMALL_EPOCHS, RESNET20_EPOCHS.
  recipe=(--dataset cifar10 --batch-size 128 --optimizer sgd --lr 0.1 --momentum 0.9 --nesterov
          --weight-decay 5e-4 --schedule one-cycle --label-smoothing 0.1 --crop-padding 4 --flip
          --no-progress)
  for arch in cifar_small resnet20; do
    epochs=${CIFAR_SMALL_EPOCHS:-15}
    [ "$arch" = resnet20 ] && epochs=${RESNET20_EPOCHS:-60}
    for seed in 0 1 2; do
      start=$(date +%s)
      # A run cut short (Ctrl-C, a kill) continues from its last epoch when the script reruns.
      resume=()
      [ -f "$out/${arch}_seed$seed.ckpt" ] && resume=(--resume)
      result=$($lowbit train "${recipe[@]}" "${resume[@]}" --arch "$arch" --epochs "$epochs" --seed "$seed" \
        --checkpoint "$out/${arch}_seed$seed.ckpt" --json "$out/${arch}_seed$seed.json" \
        --out "$out/${arch}_seed$seed.lbm" | tail -1)
      echo "$arch seed $seed, $epochs epochs: $result ($(( $(date +%s) - start )) s)" | tee -a "$out/accuracy.txt"
    done
  done
  # Post-training quantization of every trained model on the integer engine (README, "CNNs on the
  # integer engine"): every preset that handles graphs, 2..8 bits, timed; then the engine's speed.
  for arch in cifar_small resnet20; do
    for seed in 0 1 2; do
      start=$(date +%s)
      $lowbit sweep --quiet --model "$out/${arch}_seed$seed.lbm" --bits 2-8 \
        --methods minmax,percentile,mse,kl,mse_pc,gptq,best --out-dir "$out/sweep_${arch}_seed$seed" \
        | tee "$out/sweep_${arch}_seed$seed.txt"
      echo "sweep $arch seed $seed: $(( $(date +%s) - start )) s" | tee -a "$out/sweep_times.txt"
    done
    $lowbit quantize --quiet --model "$out/${arch}_seed0.lbm" --bits 8 --out "$out/${arch}_seed0_w8.lbq"
    $lowbit bench --model "$out/${arch}_seed0_w8.lbq" --batch 1,256 --threads 1,2 --repeat 3 \
      | tee "$out/bench_${arch}_w8.txt"
  done
  if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    /usr/bin/python3 bench/train_compare.py --batches 20 --json "$out/train_compare.json" \
      | tee "$out/train_compare.txt"
    # The integer engine against PyTorch's int8 engines on the same trained CNNs (README, "Speed
    # against PyTorch"); run it on an idle machine.
    for arch in cifar_small resnet20; do
      /usr/bin/python3 bench/pytorch_compare.py --model "$out/${arch}_seed0.lbm" --bits 8,4,2 \
        --batch 1,256 --threads 1,2 --engines float,onednn,qnnpack \
        --json "$out/pytorch_compare_${arch}.json" | tee "$out/pytorch_compare_${arch}.txt"
    done
  fi
  echo "wrote $out/"
  exit 0
fi
methods=minmax,percentile,mse,kl,mse_pc,gptq,adaround,best,loss_aware
{ echo "# $(date -u +%FT%TZ) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "$(nproc --all) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"; } | tee "$out/machine.txt"

for seed in 0 1 2; do
  $lowbit train --dataset mnist --seed "$seed" --epochs 10 --out "$out/fc_mnist_seed$seed.lbm"
  $lowbit sweep --model "$out/fc_mnist_seed$seed.lbm" --methods "$methods" \
    --out-dir "$out/mnist_seed$seed" | tee "$out/mnist_seed$seed.txt"
done

# A set LOWBIT_DATA_DIR is the only place lowbit looks, so Fashion-MNIST comes from there when it
# holds fashion-mnist/, else from the Debian package dataset-fashion-mnist (scripts/setup.sh).
fashion_data=()
[ -d "${LOWBIT_DATA_DIR:-}/fashion-mnist" ] || fashion_data=(--data-dir /usr/share/datasets)
$lowbit train --dataset fashion-mnist "${fashion_data[@]}" --seed 0 --epochs 10 \
  --out "$out/fc_fashion_seed0.lbm"
$lowbit sweep --model "$out/fc_fashion_seed0.lbm" "${fashion_data[@]}" \
  --methods minmax,mse,gptq,adaround,best,loss_aware \
  --out-dir "$out/fashion-mnist" | tee "$out/fashion-mnist.txt"

model="$out/fc_mnist_seed0.lbm"
: >"$out/qat.txt"
for config in "--bits 4 --epochs 3" "--bits 3 --epochs 5" "--bits 2 --epochs 10" \
              "--ternary --act-bits 2 --epochs 10" "--ternary --act-bits 1 --epochs 10"; do
  start=$(date +%s%N)
  # shellcheck disable=SC2086
  result=$($lowbit qat --model "$model" $config --no-progress --out "$out/qat.lbq" 2>/dev/null | tail -1)
  echo "qat $config: $result ($(( ($(date +%s%N) - start) / 1000000 )) ms)" | tee -a "$out/qat.txt"
done
# 2 bits and binary (sign-binary ±s weights) from every seed's float model: the issue's QAT
# targets are medians over seeds 0, 1, 2 (seed 0's 2-bit run above is repeated as a check).
for bits in 2 1; do
  for seed in 0 1 2; do
    start=$(date +%s%N)
    result=$($lowbit qat --model "$out/fc_mnist_seed$seed.lbm" --bits "$bits" --epochs 10 --no-progress \
      --out "$out/qat_w${bits}a${bits}_seed$seed.lbq" 2>/dev/null | tail -1)
    echo "qat --bits $bits seed $seed: $result ($(( ($(date +%s%N) - start) / 1000000 )) ms)" \
      | tee -a "$out/qat.txt"
  done
done

# Mixed precision under a size budget, chosen on held-out training images (docs/qat.md).
for config in "minmax" "best" "best --separate-act-bits"; do
  name=$(echo "$config" | tr -d ' -')
  # shellcheck disable=SC2086
  $lowbit sensitivity --model "$model" --budget 20000 --method $config \
    --out-dir "$out/mixed_$name" | tee "$out/mixed_$name.txt"
done

: >"$out/bench.txt"
for bits in 8 4 2 1; do
  $lowbit quantize --model "$model" --bits "$bits" --out "$out/fc_w${bits}a${bits}.lbq" >/dev/null
  $lowbit bench --model "$out/fc_w${bits}a${bits}.lbq" --batch 1,64,10000 --threads 1,2 --repeat 5 \
    | tee -a "$out/bench.txt"
done
echo "wrote $out/"
