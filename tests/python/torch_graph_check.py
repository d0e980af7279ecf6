#!/usr/bin/env python3
"""bench/torch_graph.py rebuilds lowbit CNNs in PyTorch with the same weights: same outputs, and it quantizes.

pytorch_compare.py times PyTorch's engines on these modules, so a wrong mapping would time a
different network. Checks a small plain CNN (max, average and global max pooling, dropout) and a
tiny ResNet (both block shapes, batch norm statistics away from 0 and 1, brought in through ONNX)
against lowbit's float engine, and that PyTorch's fusion and int8 conversion accept them. Exit 77
(CTest's skip) without python3-torch.
"""
import os
import sys

try:
    import numpy as np
    import torch
except ImportError as e:  # Debian: python3-torch
    print(f"skipped: {e}")
    sys.exit(77)
import lowbit
import torch_graph


def node(name, kind, inputs, **settings):
    return {"name": name, "kind": kind, "inputs": inputs, **settings}


def conv(name, inputs, out, kernel=3, stride=1):
    return node(name, "conv2d", inputs, out_channels=out, kernel=kernel, stride=stride, padding=kernel // 2,
                bias=False)


def tiny_resnet():
    return {"name": "tiny_resnet", "input_shape": [3, 8, 8], "nodes": [
        conv("stem", ["input"], 4), node("stem_bn", "batch_norm", ["stem"]), node("stem_relu", "relu", ["stem_bn"]),
        conv("a.conv1", ["stem_relu"], 4), node("a.bn1", "batch_norm", ["a.conv1"]), node("a.relu1", "relu", ["a.bn1"]),
        conv("a.conv2", ["a.relu1"], 4), node("a.bn2", "batch_norm", ["a.conv2"]),
        node("a.add", "add", ["a.bn2", "stem_relu"]), node("a.relu2", "relu", ["a.add"]),
        conv("b.conv1", ["a.relu2"], 6, stride=2), node("b.bn1", "batch_norm", ["b.conv1"]),
        node("b.relu1", "relu", ["b.bn1"]), conv("b.conv2", ["b.relu1"], 6), node("b.bn2", "batch_norm", ["b.conv2"]),
        conv("b.shortcut", ["a.relu2"], 6, kernel=1, stride=2), node("b.shortcut_bn", "batch_norm", ["b.shortcut"]),
        node("b.add", "add", ["b.bn2", "b.shortcut_bn"]), node("b.relu2", "relu", ["b.add"]),
        node("pool", "global_avg_pool", ["b.relu2"]), node("fc", "linear", ["pool"], out_features=3),
        node("out", "log_softmax", ["fc"])]}


def small_plain():
    return {"name": "plain", "input_shape": [3, 8, 8], "nodes": [
        conv("c1", ["input"], 5), node("bn1", "batch_norm", ["c1"]), node("r1", "relu", ["bn1"]),
        node("p1", "max_pool2d", ["r1"], kernel=2, stride=2), conv("c2", ["p1"], 7), node("r2", "relu", ["c2"]),
        node("avg", "avg_pool2d", ["r2"], kernel=2, stride=2), node("drop", "dropout", ["avg"], p=0.1),
        node("pool", "global_max_pool", ["drop"]), node("fc", "linear", ["pool"], out_features=4),
        node("out", "log_softmax", ["fc"])]}


def with_trained_batch_norm(description, seed, lowbit_binary, work_dir):
    """The model, its batch norms given running statistics away from 0 and 1: built in PyTorch from
    the description's own mapping, exported to ONNX (batch norm kept) and imported by `lowbit import`,
    the one way into a .lbm with such statistics that does not train."""
    import subprocess
    model = lowbit.Model.from_description(description)
    model.init(seed)
    module, _ = torch_graph.build(torch, model.description, model.tensors())
    generator = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5, generator=generator)
                m.running_var.uniform_(0.5, 2.0, generator=generator)
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.uniform_(-0.2, 0.2, generator=generator)
    onnx_path = os.path.join(work_dir, f"{description['name']}.onnx")
    lbm_path = onnx_path[:-5] + ".lbm"
    shape = description["input_shape"]
    torch.onnx.export(module, torch.zeros(2, *shape), onnx_path, opset_version=17, input_names=["pixels"],
                      output_names=["scores"], dynamic_axes={"pixels": {0: "batch"}, "scores": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    subprocess.run([lowbit_binary, "import", onnx_path, "--out", lbm_path, "--dataset", "cifar10"], check=True,
                   stdout=subprocess.DEVNULL)
    return lowbit.Model.load(lbm_path)


def check(model, seed):
    from torch.ao import quantization as tq
    description, tensors = model.description, model.tensors()
    if "name" not in description:
        description["name"] = "imported"
    images = np.random.default_rng(seed).normal(size=(64, *description["input_shape"])).astype(np.float32)
    expected = model.log_probabilities(images)
    module, fusions = torch_graph.build(torch, description, tensors)
    with torch.no_grad():
        got = torch.log_softmax(module(torch.from_numpy(images)), dim=1).numpy()
    error = np.abs(got - expected).max() / np.abs(expected).max()
    assert error < 1e-4, f"{description['name']}: relative error {error}"
    assert (got.argmax(1) == expected.argmax(1)).all()
    # Every conv followed by its batch norm is fused, and the whole module converts to int8.
    convs = [n["name"] for n in description["nodes"] if n["kind"] == "conv2d"]
    fused_firsts = {group[0] for group in fusions}
    assert all(f"nodes.{c.replace('.', '_')}" in fused_firsts for c in convs), fusions
    engine = "qnnpack" if "qnnpack" in torch.backends.quantized.supported_engines else "fbgemm"
    torch.backends.quantized.engine = engine
    module.qconfig = tq.get_default_qconfig(engine)
    prepared = tq.prepare(tq.fuse_modules(module, fusions))
    with torch.no_grad():
        prepared(torch.from_numpy(images))
        quantized = tq.convert(prepared)
        out = quantized(torch.from_numpy(images))
    assert out.shape == (64, expected.shape[1]) and torch.isfinite(out).all()
    print(f"{description['name']}: relative error {error:.2e}, {len(fusions)} fusions, int8 ({engine}) runs")


def main():
    if len(sys.argv) != 3:
        print("usage: torch_graph_check.py LOWBIT_BINARY WORK_DIR", file=sys.stderr)
        return 2
    binary, work_dir = sys.argv[1], sys.argv[2]
    os.makedirs(work_dir, exist_ok=True)
    plain = lowbit.Model.from_description(small_plain())
    plain.init(1)
    check(plain, 1)
    if not os.access(binary, os.X_OK):
        print(f"{binary}: no lowbit binary", file=sys.stderr)
        return 1
    check(with_trained_batch_norm(tiny_resnet(), 2, binary, work_dir), 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
