#!/usr/bin/env python3
"""Step 1 of the PyTorch -> lowbit example: train a tiny CNN on an MNIST slice in PyTorch and
export it with torch.onnx.export (opset 17, float input normalized as lowbit's "mnist" metadata
says: (pixel / 255 - mean) / std).
usage: train_export.py DATA_DIR OUT.onnx [--train N] [--epochs E] [--seed S]
DATA_DIR holds mnist/train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz.
Exit 77 (CTest's skip) when torch or the data is missing.
"""
import argparse
import gzip
import os
import sys

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as e:  # Debian: python3-torch
    print(f"skipped: {e}")
    sys.exit(77)

MEAN, STD = 0.1307, 0.3081  # lowbit's MNIST normalization (lowbit data info mnist)


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


class TinyCnn(nn.Module):
    """conv3x3(8)-BN-ReLU-maxpool2, conv3x3(16)-BN-ReLU-maxpool2, Linear(784 -> 10)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))  # logits; lowbit adds its LogSoftmax


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data_dir")
    p.add_argument("out")
    p.add_argument("--train", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    images_path = os.path.join(a.data_dir, "mnist", "train-images-idx3-ubyte.gz")
    if not os.path.exists(images_path):
        print(f"skipped: no MNIST training images at {images_path}")
        sys.exit(77)
    images = read_idx(images_path)[:a.train]
    labels = read_idx(os.path.join(a.data_dir, "mnist", "train-labels-idx1-ubyte.gz"))[:a.train]
    x = torch.from_numpy((images.astype(np.float32) / 255.0 - MEAN) / STD).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))

    torch.manual_seed(a.seed)
    torch.set_num_threads(2)
    model = TinyCnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            batch = order[i:i + 64]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch + 1}: last batch loss {loss.item():.3f}")
    model.eval()
    torch.onnx.export(model, x[:2], a.out, opset_version=17, input_names=["pixels"], output_names=["logits"],
                      dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}})
    print(f"wrote {a.out}: TinyCnn trained on {len(x)} MNIST images")


if __name__ == "__main__":
    main()
