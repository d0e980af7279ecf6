#!/usr/bin/env python3
"""PyTorch -> ONNX -> `lowbit import` -> lowbit's float engine, against PyTorch's own outputs.

usage: torch_import.py LOWBIT_BINARY WORK_DIR [--images N] [--data-dir DIR] [--opsets 13,17]
                      [--models fc_nn,cifar_small,resnet20]

For FC_NN, cifar_small and resnet20 (lowbit's presets written in PyTorch), exported at opsets 13
and 17, and in two spellings where PyTorch has them (flatten or reshape; batch norm kept or fused
into the convolution): the imported model's log-probabilities must be within 1e-4 (relative to
the largest) of PyTorch's and give the same class on >= 99.99 % of the images. Images are the
official test images when DIR holds them (lowbit.load_dataset), else seeded random ones.
Exit 77 (CTest's skip) when torch or the lowbit Python module is missing.
"""
import argparse
import os
import subprocess
import sys

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as e:  # Debian: python3-torch
    print(f"skipped: {e}")
    sys.exit(77)
try:
    import lowbit
except ImportError as e:
    print(f"skipped: the lowbit Python module is not built ({e})")
    sys.exit(77)


class FcNn(nn.Module):
    def __init__(self, reshape):
        super().__init__()
        self.reshape = reshape
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 64), nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x):
        x = x.reshape(-1, 784) if self.reshape else torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return torch.log_softmax(self.fc3(x), dim=1)


def conv_bn_relu(cin, cout, stride=1):
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class CifarSmall(nn.Module):
    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for width in (32, 64, 128):
            layers += conv_bn_relu(cin, width) + [nn.MaxPool2d(2)] + conv_bn_relu(width, width)
            cin = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))  # logits: lowbit adds LogSoftmax


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn_relu(3, 16))
        blocks, cin = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for b in range(3):
                blocks.append(Block(cin, width, 2 if stage > 0 and b == 0 else 1))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool(self.blocks(self.stem(x)))
        return torch.log_softmax(self.fc(torch.flatten(x, 1)), dim=1)


def randomize_batch_norm(model, generator):
    """Running statistics and affine parameters away from 0/1, so that a mapping error shows."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5, generator=generator)
                m.running_var.uniform_(0.5, 2.0, generator=generator)
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.uniform_(-0.2, 0.2, generator=generator)


def images_for(name, count, data_dir, generator):
    shape = (1, 28, 28) if name == "fc_nn" else (3, 32, 32)
    dataset = "mnist" if name == "fc_nn" else "cifar10"
    if data_dir:
        try:
            data = lowbit.load_dataset(dataset, data_dir)
            pixels = data["test_images"][:count].astype(np.float32) / 255.0
            mean = np.array(data["mean"], np.float32).reshape(1, -1, 1, 1)
            std = np.array(data["std"], np.float32).reshape(1, -1, 1, 1)
            return torch.from_numpy((pixels.reshape(-1, *shape) - mean) / std), dataset, f"{dataset} test images"
        except lowbit.Error as e:
            print(f"note: {e}; using random images")
    return torch.randn((count, *shape), generator=generator), dataset, "random images"


def check(binary, work, name, model, opset, variant, count, data_dir):
    generator = torch.Generator().manual_seed(opset * 7 + len(variant))
    randomize_batch_norm(model, generator)
    model.eval()
    images, dataset, source = images_for(name, count, data_dir, generator)
    onnx_path = os.path.join(work, f"{name}_{variant}_op{opset}.onnx")
    lbm_path = onnx_path[:-5] + ".lbm"
    training = torch.onnx.TrainingMode.PRESERVE if variant == "bn" else torch.onnx.TrainingMode.EVAL
    torch.onnx.export(model, images[:2], onnx_path, opset_version=opset, input_names=["pixels"],
                      output_names=["scores"], dynamic_axes={"pixels": {0: "batch"}, "scores": {0: "batch"}},
                      training=training, do_constant_folding=True)
    subprocess.run([binary, "import", onnx_path, "--out", lbm_path, "--dataset", dataset], check=True,
                   stdout=subprocess.DEVNULL)
    # In chunks: a forward pass keeps every node's output, about 4 MB per resnet20 image.
    imported = lowbit.Model.load(lbm_path)
    expected, got = [], []
    for chunk in torch.split(images, 250):
        with torch.no_grad():
            expected.append(torch.log_softmax(model(chunk), dim=1).numpy())
        got.append(imported.log_probabilities(chunk.numpy().astype(np.float32)))
    expected, got = np.concatenate(expected), np.concatenate(got)
    scale = float(np.abs(expected).max())
    worst = float(np.abs(got - expected).max()) / scale
    same = float((got.argmax(1) == expected.argmax(1)).mean())
    ok = worst <= 1e-4 and same >= 0.9999
    print(f"{'ok  ' if ok else 'FAIL'} {name:12s} {variant:8s} opset {opset}: {count} {source}, "
          f"max |diff| / max |value| = {worst:.2e}, same class on {100 * same:.2f} %")
    return ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("work")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--data-dir", default=os.environ.get("LOWBIT_DATA_DIR"))
    parser.add_argument("--opsets", default="13,17")
    parser.add_argument("--models", default="fc_nn,cifar_small,resnet20")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cases = [("fc_nn", lambda: FcNn(reshape=True), "reshape"), ("fc_nn", lambda: FcNn(reshape=False), "flatten"),
             ("cifar_small", CifarSmall, "bn"), ("cifar_small", CifarSmall, "fused"),
             ("resnet20", ResNet20, "bn"), ("resnet20", ResNet20, "fused")]
    results = [check(args.binary, args.work, name, make(), opset, variant, args.images, args.data_dir)
               for opset in map(int, args.opsets.split(",")) for name, make, variant in cases
               if name in args.models.split(",")]
    if not all(results):
        sys.exit(1)


if __name__ == "__main__":
    main()
