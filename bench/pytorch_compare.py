#!/usr/bin/python3
"""lowbit's integer engine against PyTorch's float and int8 engines, same model, same run: images/s and ratios.

FC_NN (the default), or any CNN lowbit trained (cifar_small, resnet20: --model X.lbm), rebuilt in
PyTorch with the same weights (bench/torch_graph.py), fused as lowbit fuses (conv + BN + ReLU),
calibrated on the same training images as `lowbit quantize`, traced and frozen. Needs Debian's
PyTorch, which the project's setup does not install, and for CNNs lowbit's Python module (build/python):

    apt-get install python3-torch
    /usr/bin/python3 bench/pytorch_compare.py            # trains a 1-epoch FC_NN with build/tools/lowbit
    /usr/bin/python3 bench/pytorch_compare.py --model fc.lbm --json results/torch.json
    /usr/bin/python3 bench/pytorch_compare.py --model cifar_small.lbm --data-dir ../shared/data

Run it with /usr/bin/python3: a pyenv or venv python3 earlier on PATH does not see Debian's torch.
Without torch it says so and exits 0. Design notes and measured figures: docs/performance-pytorch.md.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = (784, 64, 32, 10)  # FC_NN: 784 -> 64 -> ReLU -> 32 -> ReLU -> 10
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
# Engines in the order the table shows them; "float" is PyTorch's default float32 backend.
TORCH_ENGINES = ("float", "fbgemm", "x86", "onednn", "qnnpack")


def fail(message):
    print(f"pytorch_compare: {message}", file=sys.stderr)
    sys.exit(2)


def int_list(text):
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated list of integers")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be at least 1")
    return values


def parse_args():
    parser = argparse.ArgumentParser(
        description="Time PyTorch's float and int8 FC_NN and lowbit's integer engine on the same "
                    "batches and thread counts; print images/s and lowbit / PyTorch ratios.")
    parser.add_argument("--lowbit", default=os.path.join(ROOT, "build", "tools", "lowbit"),
                        help="lowbit CLI binary (default: %(default)s)")
    parser.add_argument("--model", help="float lowbit model (.lbm): FC_NN or a CNN; default: train an "
                                        "FC_NN with `lowbit train --epochs EPOCHS`")
    parser.add_argument("--epochs", type=int, default=1, help="epochs when training (default: 1)")
    parser.add_argument("--dataset", default="mnist", help="dataset when training (default: mnist)")
    parser.add_argument("--data-dir", help="sets LOWBIT_DATA_DIR for lowbit (default: inherited)")
    parser.add_argument("--bits", type=int_list, default=[8, 4, 2],
                        help="lowbit bit widths, weights and activations (default: 8,4,2)")
    parser.add_argument("--batch", type=int_list,
                        help="batch sizes (default: 1,64,10000 for FC_NN, 1,256 for CNNs)")
    parser.add_argument("--calib-count", type=int, default=1024,
                        help="CNNs: training images both sides calibrate on, the first ones, as "
                             "`lowbit quantize --calib-count` (default: %(default)s)")
    parser.add_argument("--check-count", type=int, default=2000,
                        help="CNNs: test images for the accuracy and agreement notes (default: %(default)s)")
    parser.add_argument("--threads", type=int_list, default=[1, 2],
                        help="thread counts (default: 1,2)")
    parser.add_argument("--engines", default=",".join(TORCH_ENGINES),
                        help="PyTorch engines to time; those this torch lacks are skipped "
                             "(default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per configuration, best kept (default: 3)")
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="length of one timed run (default: 0.5)")
    parser.add_argument("--eager", action="store_true",
                        help="time PyTorch's eager modules instead of a traced, frozen TorchScript "
                             "graph (eager pays Python dispatch per layer: slower at small batches)")
    parser.add_argument("--input", choices=("test", "random"), default="test",
                        help="pixels lowbit is timed on: the dataset's test images (its first layer "
                             "skips background pixels) or uniform random ones, its worst case "
                             "(default: %(default)s). PyTorch's dense GEMMs take the same time on "
                             "any values.")
    parser.add_argument("--work-dir", help="where lowbit model files go (default: a temporary folder)")
    parser.add_argument("--json", metavar="FILE", help="also write the table's rows to FILE")
    args = parser.parse_args()
    if args.repeats < 1 or args.seconds <= 0 or args.epochs < 1:
        parser.error("--repeats and --epochs must be at least 1 and --seconds positive")
    if any(b > 8 for b in args.bits):
        parser.error("--bits: lowbit quantizes to 1..8 bits")
    args.engines = [e for e in args.engines.split(",") if e]
    unknown = sorted(set(args.engines) - set(TORCH_ENGINES))
    if unknown:
        parser.error(f"--engines: unknown {','.join(unknown)}; known: {','.join(TORCH_ENGINES)}")
    return args


def import_torch():
    """torch, or None after telling the user how to get it."""
    try:
        import torch
    except ImportError:
        print("pytorch_compare: PyTorch is not installed for this interpreter "
              f"({sys.executable}); nothing to compare.\n"
              "  Install Debian's build:  apt-get install python3-torch\n"
              "  then run:                /usr/bin/python3 bench/pytorch_compare.py\n"
              "  (a pyenv or venv python3 does not see Debian's packages)")
        return None
    return torch


# ---------------------------------------------------------------------------------------------
# PyTorch side


def build_torch_model(torch, engine, calibration):
    """FC_NN for one engine: float32, or int8 post-training static quantization.

    Linear+ReLU pairs are fused, as lowbit folds ReLU into requantization. The model stops at the
    logits, as `lowbit bench` does; log-softmax does not change the predicted digit.
    """
    from torch import nn
    from torch.ao import quantization as tq

    class FcNn(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = tq.QuantStub()
            self.fc1, self.relu1 = nn.Linear(SIZES[0], SIZES[1]), nn.ReLU()
            self.fc2, self.relu2 = nn.Linear(SIZES[1], SIZES[2]), nn.ReLU()
            self.fc3 = nn.Linear(SIZES[2], SIZES[3])
            self.dequant = tq.DeQuantStub()

        def forward(self, x):  # x: [batch, 784] normalized float -> [batch, 10] logits
            x = self.quant(x)
            x = self.relu1(self.fc1(x))
            x = self.relu2(self.fc2(x))
            return self.dequant(self.fc3(x))

    torch.manual_seed(0)  # the speed does not depend on the weights' values
    model = FcNn().eval()
    if engine == "float":
        return model, model
    # Prepacked weights belong to the engine that was current at convert time.
    torch.backends.quantized.engine = engine
    model.qconfig = tq.get_default_qconfig(engine)
    fused = tq.fuse_modules(model, [["fc1", "relu1"], ["fc2", "relu2"]])
    prepared = tq.prepare(fused)
    with torch.inference_mode():
        prepared(calibration)
    return tq.convert(prepared), model


def random_inputs(torch, batch, seed):
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.rand(batch, SIZES[0], generator=generator)
    return (pixels - MNIST_MEAN) / MNIST_STD


def images_per_s(run, batch, seconds):
    """One timed run: calls `run` until `seconds` have passed."""
    calls = 0
    start = time.perf_counter()
    while True:
        run()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * batch / elapsed


def build_torch_models(torch, args, builder, calibration, check, reference=None):
    """{engine: model} for the engines this torch has, each checked against float first.

    builder(engine, calibration) gives (model, float model); check is a batch of inputs, and
    reference, when given, the classes lowbit's float model predicts for them (CNNs: proves the
    weights were carried over).
    """
    models, notes = {}, []
    supported = set(torch.backends.quantized.supported_engines) - {"none"}
    for engine in args.engines:
        if engine != "float" and engine not in supported:
            notes.append(f"PyTorch {engine}: not built into this torch (it has "
                         f"{', '.join(sorted(supported))}); skipped")
            continue
        try:
            model, float_model = builder(engine, calibration)
            with torch.inference_mode():
                classes = model(check).argmax(1)
                agreement = (classes == float_model(check).argmax(1)).float().mean()
        except Exception as error:  # an engine that cannot run on this CPU is reported, not fatal
            notes.append(f"PyTorch {engine}: failed to build or run ({error}); skipped")
            continue
        kinds = sorted({type(m).__name__ for m in model.modules()
                        if "Linear" in type(m).__name__ or "Conv" in type(m).__name__})
        note = (f"PyTorch {engine}: {', '.join(kinds)}; argmax agrees with PyTorch float on "
                f"{100 * agreement:.2f}% of {len(check)} {args.check_source}")
        if reference is not None:
            same = (classes == reference).float().mean()
            note += f", with lowbit's float model on {100 * same:.2f}%"
        if args.check_labels is not None:
            note += f"; accuracy {100 * (classes == args.check_labels).float().mean():.2f}%"
        notes.append(note)
        if not args.eager:  # how PyTorch deploys a model: one graph, no Python between layers
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = torch.jit.freeze(torch.jit.trace(model, check[:1]))
        models[engine] = model
    return models, notes


def build_torch_cnn(torch, description, tensors, engine, calibration):
    """A lowbit CNN for one engine: float32, or int8 post-training static quantization with
    conv + BN + ReLU (and linear + ReLU) fused, as lowbit folds them."""
    import torch_graph
    from torch.ao import quantization as tq

    model, fusions = torch_graph.build(torch, description, tensors)
    if engine == "float":
        return model, model
    float_model, _ = torch_graph.build(torch, description, tensors)
    torch.backends.quantized.engine = engine
    model.qconfig = tq.get_default_qconfig(engine)
    fused = tq.fuse_modules(model, fusions)
    prepared = tq.prepare(fused)
    with torch.inference_mode():
        for chunk in torch.split(calibration, 256):
            prepared(chunk)
    return tq.convert(prepared), float_model


def import_lowbit(args):
    """lowbit's Python module from the build beside --lowbit (build/python)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.lowbit))), "python"))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # torch_graph
    try:
        import lowbit
    except ImportError as error:
        fail(f"a CNN needs lowbit's Python module (build it: cmake --build build --target lowbit_python): {error}")
    return lowbit


def cnn_inputs(torch, args, lowbit, float_model):
    """(calibration, check, lowbit's float classes for check, test pixels as normalized floats)."""
    import numpy as np
    dataset = float_model.metadata.get("dataset", "cifar10")
    data = lowbit.load_dataset(dataset, args.data_dir) if args.data_dir else lowbit.load_dataset(dataset)
    mean = np.array(data["mean"], np.float32).reshape(1, -1, 1, 1)
    std = np.array(data["std"], np.float32).reshape(1, -1, 1, 1)
    shape = tuple(float_model.input_shape)

    def normalized(pixels):
        return torch.from_numpy((pixels.reshape(-1, *shape).astype(np.float32) / 255.0 - mean) / std)

    calibration = normalized(data["train_images"][:args.calib_count])
    count = min(args.check_count, len(data["test_labels"]))
    check = normalized(data["test_images"][:count])
    reference = torch.from_numpy(float_model.predict(data["test_images"][:count]))
    args.check_labels = torch.from_numpy(data["test_labels"][:count].astype(np.int64))
    args.check_source = f"{dataset} test images"
    return calibration, check, reference, normalized(data["test_images"][:max(args.batch)])


def openblas_thread_setter():
    """openblas_set_num_threads of the OpenBLAS that torch loaded, or None.

    Debian's torch runs float Linear through the system BLAS (OpenBLAS), whose own thread pool
    torch.set_num_threads does not reach.
    """
    import ctypes
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "openblas" in line and ".so" in line}
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path).openblas_set_num_threads
        except (OSError, AttributeError):
            continue
    return None


def time_torch(torch, model, engine, x, threads, seconds):
    """images/s of one timed run of a PyTorch model on the batch x, after a warm-up."""
    torch.set_num_threads(threads)
    batch = len(x)
    if engine != "float":  # a converted model's prepacked weights belong to its engine
        torch.backends.quantized.engine = engine
    with torch.inference_mode():
        for _ in range(3):  # warm up: allocator, thread pool
            model(x)
        return images_per_s(lambda: model(x), batch, seconds)


# ---------------------------------------------------------------------------------------------
# lowbit side


def run_lowbit(args, *command):
    env = dict(os.environ)
    if args.data_dir:
        env["LOWBIT_DATA_DIR"] = args.data_dir
    result = subprocess.run([args.lowbit, *command], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"`lowbit {' '.join(command)}` exited {result.returncode}: "
             f"{result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def model_description(args):
    """The --model's description when it is a graph with convolutions (a CNN), else None (FC_NN)."""
    if args.model is None:
        return None
    description = json.loads(run_lowbit(args, "inspect", "--json", args.model))["description"]
    nodes = description.get("nodes", [])
    return description if any(n.get("kind") == "conv2d" for n in nodes) else None


def prepare_lowbit_models(args, work_dir):
    """{bits: quantized model path}, training a float model first unless --model was given."""
    models, notes = {}, []
    model = args.model
    if model is None:
        model = os.path.join(work_dir, "fc.lbm")
        out = run_lowbit(args, "train", "--dataset", args.dataset, "--epochs", str(args.epochs),
                         "--out", model)
        notes.append(f"lowbit train --epochs {args.epochs}: {out.strip().splitlines()[-1]}")
    for bits in args.bits:
        models[bits] = os.path.join(work_dir, f"model_{bits}bit.lbq")
        run_lowbit(args, "quantize", "--model", model, "--bits", str(bits), "--calib-count",
                   str(args.calib_count), "--out", models[bits])
    return models, notes


def time_lowbit(args, model, batch, threads):
    """(images/s, kernel) of one `lowbit bench` run: one warm-up call, then the mean over --seconds."""
    report = json.loads(run_lowbit(args, "bench", "--model", model, "--batch", str(batch),
                                   "--threads", str(threads), "--seconds", str(args.seconds),
                                   "--input", args.input, "--json"))
    kernels = (f"CNN graph: {report['ops_kernel']} + {report['kernel']}" if args.cnn
               else f"{report['input_kernel']} (first layer) + {report['kernel']}")
    return report["results"][0]["images_per_s"], kernels


# ---------------------------------------------------------------------------------------------
# both


def measure(torch, args, lowbit_models, torch_models, inputs):
    """Best of --repeats runs for every configuration, as table rows, and notes.

    The repeats go round-robin over every model at one (threads, batch), so a burst of load from
    elsewhere on a shared machine hits lowbit and PyTorch alike rather than one side only.
    """
    set_blas_threads = openblas_thread_setter()
    best, kernels = {}, {}
    for threads in args.threads:
        if set_blas_threads:
            set_blas_threads(threads)
        for batch in args.batch:
            for _ in range(args.repeats):
                for bits, path in lowbit_models.items():
                    speed, kernels[bits] = time_lowbit(args, path, batch, threads)
                    key = ("lowbit", bits, batch, threads)
                    best[key] = max(best.get(key, 0.0), speed)
                for engine, model in torch_models.items():
                    speed = time_torch(torch, model, engine, inputs(batch), threads, args.seconds)
                    key = (engine, 32 if engine == "float" else 8, batch, threads)
                    best[key] = max(best.get(key, 0.0), speed)
    rows = [{"side": "lowbit" if engine == "lowbit" else "pytorch", "engine": engine,
             "bits": bits, "batch": batch, "threads": threads, "images_per_s": speed}
            for (engine, bits, batch, threads), speed in best.items()]
    notes = [f"lowbit {bits}-bit: kernel {kernel}" for bits, kernel in sorted(kernels.items())]
    notes.append(f"lowbit input: {'test images' if args.input == 'test' else 'random pixels'} (--input)")
    if set_blas_threads is None:
        notes.append("PyTorch float: no OpenBLAS found; its BLAS threads were left as they were")
    return rows, notes


# ---------------------------------------------------------------------------------------------
# the table


def add_ratios(rows, bits):
    """Each PyTorch row gets lowbit's images/s at each bit width, same batch and threads, over its own."""
    lowbit = {(r["bits"], r["batch"], r["threads"]): r["images_per_s"]
              for r in rows if r["side"] == "lowbit"}
    for r in rows:
        if r["side"] == "pytorch":
            r["lowbit_over_pytorch"] = {
                f"{b}bit": lowbit[(b, r["batch"], r["threads"])] / r["images_per_s"]
                for b in bits if (b, r["batch"], r["threads"]) in lowbit}


def print_table(rows, bits):
    order = {engine: i for i, engine in enumerate(("lowbit",) + TORCH_ENGINES)}
    rows.sort(key=lambda r: (r["threads"], r["batch"], order[r["engine"]], -r["bits"]))
    ratio_heads = [f"lb{b}/pt" for b in bits]
    print(f"{'engine':<8} {'bits':>4} {'batch':>6} {'threads':>7} {'images/s':>12} "
          + " ".join(f"{h:>7}" for h in ratio_heads))
    previous = None
    for r in rows:
        if previous is not None and (r["threads"], r["batch"]) != previous:
            print()
        previous = (r["threads"], r["batch"])
        ratios = r.get("lowbit_over_pytorch", {})
        cells = [f"{ratios[f'{b}bit']:7.2f}" if f"{b}bit" in ratios else f"{'-':>7}" for b in bits]
        print(f"{r['engine']:<8} {r['bits']:>4} {r['batch']:>6} {r['threads']:>7} "
              f"{r['images_per_s']:>12,.0f} " + " ".join(cells))


def main():
    args = parse_args()
    torch = import_torch()
    if torch is None:
        return 0
    if not os.access(args.lowbit, os.X_OK):
        fail(f"{args.lowbit}: no lowbit binary; build it with "
             "`cmake -S . -B build && make -C build -j2 lowbit_cli` or pass --lowbit")
    if args.model and not os.path.isfile(args.model):
        fail(f"--model {args.model}: no such file")
    args.cnn = model_description(args) is not None
    if args.batch is None:
        args.batch = [1, 256] if args.cnn else [1, 64, 10000]

    load_before = os.getloadavg()
    if load_before[0] > 0.5:
        # Measured here: with one other busy process on a 2-core machine, every 2-thread parallel
        # region waits milliseconds for its second thread (lowbit batch 64: 720k -> 2.7k images/s).
        print(f"pytorch_compare: warning: load average {load_before[0]:.2f} before timing; "
              "another process is using the CPU, so multi-thread rows will be far too low",
              file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="lowbit-torch-") as temporary:
        work_dir = args.work_dir or temporary
        os.makedirs(work_dir, exist_ok=True)
        lowbit_models, lowbit_notes = prepare_lowbit_models(args, work_dir)
        description = model_description(args)
        if description is None:  # FC_NN: seeded random inputs (its GEMMs take the same time on any)
            args.check_source, args.check_labels = "random inputs", None
            torch_models, torch_notes = build_torch_models(
                torch, args, lambda engine, calibration: build_torch_model(torch, engine, calibration),
                random_inputs(torch, 1024, seed=1), random_inputs(torch, 1024, seed=2))
            timed = random_inputs(torch, max(args.batch), seed=3)
        else:
            lowbit = import_lowbit(args)
            float_model = lowbit.Model.load(args.model)
            tensors = float_model.tensors()
            calibration, check, reference, timed = cnn_inputs(torch, args, lowbit, float_model)
            lowbit_notes.append(f"model: {description.get('name', 'CNN')} from {args.model}; PyTorch "
                                f"calibrated on the first {len(calibration)} training images, as lowbit")
            torch_models, torch_notes = build_torch_models(
                torch, args,
                lambda engine, calibration: build_torch_cnn(torch, description, tensors, engine, calibration),
                calibration, check, reference)
        rows, timing_notes = measure(torch, args, lowbit_models, torch_models, lambda batch: timed[:batch])
    notes = lowbit_notes + torch_notes + timing_notes + [
        "load average (1, 5, 15 min): before %.2f %.2f %.2f, after %.2f %.2f %.2f"
        % (load_before + os.getloadavg())]

    add_ratios(rows, args.bits)
    print(f"PyTorch {torch.__version__} ({torch.__file__}), python {sys.executable}, "
          f"{'eager modules' if args.eager else 'traced and frozen TorchScript'}")
    for note in notes:
        print(note)
    print(f"best of {args.repeats} runs of {args.seconds} s each; images/s; "
          "lbB/pt = lowbit at B bits / this PyTorch row, same batch and threads\n")
    print_table(rows, args.bits)
    if args.json:
        document = {"torch_version": torch.__version__,
                    "torch_mode": "eager" if args.eager else "torchscript", "notes": notes,
                    "repeats": args.repeats, "seconds": args.seconds, "rows": rows}
        temporary_json = args.json + ".tmp"
        with open(temporary_json, "w") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
        os.replace(temporary_json, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
