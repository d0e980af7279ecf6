#!/usr/bin/python3
"""Training speed, lowbit against PyTorch in the same run: resnet20 and cifar_small on CIFAR-10.

Each framework trains each model for the same number of batches (default 20) of 128 real CIFAR-10
training images, on 2 threads, with the same recipe: SGD Nesterov 0.9, weight decay 5e-4, label
smoothing 0.1, random crop with 4 pixels of black padding and horizontal flip. It prints seconds
per batch and the ratio lowbit / PyTorch (below 1: lowbit is faster), with the load average
before and after, since the machine may be shared.

    /usr/bin/python3 bench/train_compare.py --data-dir /work/shared/data [--batches 20] [--json F]

Needs Debian's python3-torch (torchvision is not needed) and python3-numpy; without torch it says
so and exits 0. Run it with /usr/bin/python3 (a venv python3 does not see Debian's torch).
Timing: the whole loop, the first batch included, on both sides; lowbit's figure is the training
time its CLI reports ("trained ... in S s"), PyTorch's the same loop in Python (batch assembly,
augmentation, forward, backward, step).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
MODELS = ("cifar_small", "resnet20")


def fail(message):
    print(f"train_compare: {message}", file=sys.stderr)
    sys.exit(2)


def load_cifar_batch(data_dir, count):
    """The first `count` (<= 10,000) images of data_batch_1: uint8 [count, 3, 32, 32], labels."""
    import numpy as np
    archive = os.path.join(data_dir, "cifar10", "cifar-10-binary.tar.gz")
    if not os.path.isfile(archive):
        fail(f"{archive}: not found (give --data-dir DIR with cifar10/cifar-10-binary.tar.gz)")
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile("cifar-10-batches-bin/data_batch_1.bin")
        raw = np.frombuffer(member.read(), dtype=np.uint8).reshape(10000, 3073)[:count]
    return raw[:, 1:].reshape(-1, 3, 32, 32).copy(), raw[:, 0].astype(np.int64)


def torch_model(torch, name):
    nn = torch.nn

    def conv_bn(cin, cout, stride=1, kernel=3):
        return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]

    if name == "cifar_small":
        layers, cin = [], 3
        for width in (32, 64, 128):
            layers += conv_bn(cin, width) + [nn.ReLU(), nn.MaxPool2d(2)]
            layers += conv_bn(width, width) + [nn.ReLU()]
            cin = width
        layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(128, 10)]
        return nn.Sequential(*layers)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.branch = nn.Sequential(*conv_bn(cin, cout, stride), nn.ReLU(), *conv_bn(cout, cout))
            self.shortcut = (nn.Sequential(*conv_bn(cin, cout, stride, 1))
                             if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):
            return torch.relu(self.branch(x) + self.shortcut(x))

    layers, cin = conv_bn(3, 16) + [nn.ReLU()], 16
    for stage, width in enumerate((16, 32, 64)):
        for block in range(3):
            layers.append(Block(cin, width, 2 if stage > 0 and block == 0 else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def time_torch(torch, name, images, labels, batches, batch_size, seed):
    torch.manual_seed(seed)
    model = torch_model(torch, name)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    pixels = torch.from_numpy(images)
    targets = torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for b in range(batches):
        x = pixels[b * batch_size:(b + 1) * batch_size].float() / 255
        y = targets[b * batch_size:(b + 1) * batch_size]
        # Crop from the image padded with 4 black pixels, then flip, as torchvision's
        # RandomCrop(32, padding=4) and RandomHorizontalFlip on raw images.
        padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
        offsets = torch.randint(0, 9, (len(x), 2), generator=generator)
        flips = torch.rand(len(x), generator=generator) < 0.5
        crops = []
        for i in range(len(x)):
            dy, dx = offsets[i].tolist()
            crop = padded[i, :, dy:dy + 32, dx:dx + 32]
            crops.append(crop.flip(2) if flips[i] else crop)
        x = (torch.stack(crops) - mean) / std
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / batches, float(loss)


def time_lowbit(lowbit, name, data_dir, batches, batch_size, threads, work_dir):
    out = os.path.join(work_dir, f"{name}.lbm")
    command = [lowbit, "train", "--dataset", "cifar10", "--data-dir", data_dir, "--arch", name,
               "--train-images", str(batches * batch_size), "--epochs", "1",
               "--batch-size", str(batch_size), "--threads", str(threads),
               "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--nesterov",
               "--weight-decay", "5e-4", "--label-smoothing", "0.1", "--crop-padding", "4", "--flip",
               "--no-progress", "--out", out]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"lowbit train failed: {run.stderr.strip()}")
    match = re.search(r"for 1 epochs in ([0-9.]+) s", run.stderr)
    if not match:
        fail(f"cannot find the training time in lowbit's output: {run.stderr.strip()}")
    return float(match.group(1)) / batches


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lowbit", default=os.path.join(ROOT, "build", "tools", "lowbit"))
    parser.add_argument("--data-dir", default=os.environ.get("LOWBIT_DATA_DIR", ""),
                        help="folder holding cifar10/cifar-10-binary.tar.gz (default: $LOWBIT_DATA_DIR)")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="also write the rows to FILE")
    args = parser.parse_args()
    if args.batches < 1 or args.batch_size < 1 or args.threads < 1:
        fail("--batches, --batch-size and --threads must be at least 1")
    if args.batches * args.batch_size > 10000:
        fail("--batches x --batch-size must be at most 10,000 (one CIFAR-10 batch file)")
    models = args.models.split(",")
    for m in models:
        if m not in MODELS:
            fail(f"--models: unknown model {m!r} (known: {', '.join(MODELS)})")
    if not args.data_dir:
        fail("--data-dir (or LOWBIT_DATA_DIR) is needed")
    if not os.access(args.lowbit, os.X_OK):
        fail(f"{args.lowbit}: not an executable (build lowbit first)")
    try:
        import torch
    except ImportError:
        print("train_compare: PyTorch is not installed (apt-get install python3-torch); skipping")
        return 0
    torch.set_num_threads(args.threads)
    images, labels = load_cifar_batch(args.data_dir, args.batches * args.batch_size)
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, torch {torch.__version__}, "
          f"{args.threads} threads, {args.batches} batches of {args.batch_size}; load before: "
          f"{load_average()}")
    print(f"{'model':<12} {'lowbit s/batch':>15} {'PyTorch s/batch':>16} {'lowbit/PyTorch':>15}")
    rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        for name in models:
            ours = time_lowbit(args.lowbit, name, args.data_dir, args.batches, args.batch_size,
                               args.threads, work_dir)
            theirs, _ = time_torch(torch, name, images, labels, args.batches, args.batch_size,
                                   args.seed)
            rows.append({"model": name, "lowbit_seconds_per_batch": ours,
                         "pytorch_seconds_per_batch": theirs, "ratio": ours / theirs})
            print(f"{name:<12} {ours:>15.3f} {theirs:>16.3f} {ours / theirs:>15.2f}", flush=True)
    print(f"# load after: {load_average()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"batches": args.batches, "batch_size": args.batch_size,
                       "threads": args.threads, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
