#!/bin/sh
# The PyTorch -> lowbit example end to end: train a tiny CNN in PyTorch and export it to ONNX,
# `lowbit import` it, quantize at 8 and 4 bits, `lowbit export` each as a QDQ graph, and check
# that ONNX Runtime runs it to lowbit's engine's classes (README.md).
# usage: run.sh LOWBIT DATA_DIR WORK_DIR [TRAIN_IMAGES [TEST_IMAGES]]
# DATA_DIR holds mnist/ (lowbit data fetch mnist); empty: $LOWBIT_DATA_DIR. Exit 77 (CTest's skip)
# without torch, node, onnxruntime-node or the data.
set -eu
LOWBIT=$1 DATA=${2:-${LOWBIT_DATA_DIR:-}} WORK=$3 TRAIN=${4:-5000} TEST=${5:-2000}
[ -n "$DATA" ] || { echo "skipped: no DATA_DIR and LOWBIT_DATA_DIR is unset"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
export NODE_PATH="${NODE_PATH:-/usr/local/share/lowbit/npm/node_modules}"
command -v node >/dev/null || { echo "skipped: no node"; exit 77; }
[ -f "$NODE_PATH/onnxruntime-node/package.json" ] || { echo "skipped: no onnxruntime-node in $NODE_PATH"; exit 77; }
[ -f "$DATA/mnist/t10k-images-idx3-ubyte.gz" ] || { echo "skipped: no MNIST in $DATA/mnist"; exit 77; }
mkdir -p "$WORK"

# 1. PyTorch: train and export (float input, normalized as lowbit's mnist metadata says).
"$PYTHON" "$HERE/train_export.py" "$DATA" "$WORK/tiny_cnn.onnx" --train "$TRAIN" || exit $?

# 2. lowbit: import the float graph (BatchNorm, ReLU, MaxPool, Flatten, Gemm map onto its layers).
"$LOWBIT" import "$WORK/tiny_cnn.onnx" --out "$WORK/tiny_cnn.lbm" --dataset mnist

for BITS in 8 4; do
  # 3. Quantize (W = A bits, minmax calibration on 1,024 training images) and export as QDQ.
  "$LOWBIT" quantize --model "$WORK/tiny_cnn.lbm" --bits "$BITS" --act-bits "$BITS" \
    --out "$WORK/tiny_cnn_w$BITS.lbq" --data-dir "$DATA" -q
  "$LOWBIT" export "$WORK/tiny_cnn_w$BITS.lbq" --out "$WORK/tiny_cnn_w$BITS.onnx"
  # 4. lowbit's engine and ONNX Runtime on the same uint8 test images.
  "$LOWBIT" infer --model "$WORK/tiny_cnn_w$BITS.lbq" "$DATA/mnist/t10k-images-idx3-ubyte.gz" \
    --limit "$TEST" --json -q > "$WORK/tiny_cnn_w$BITS.json"
  MIN=99.5
  [ "$BITS" = 8 ] || MIN=95
  node "$HERE/check_ort.js" "$WORK/tiny_cnn_w$BITS.onnx" "$DATA/mnist/t10k-images-idx3-ubyte.gz" \
    "$DATA/mnist/t10k-labels-idx1-ubyte.gz" "$WORK/tiny_cnn_w$BITS.json" "$MIN"
done
