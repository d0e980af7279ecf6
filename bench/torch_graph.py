"""A lowbit model description (graph form) as a PyTorch module with the same weights, for bench/pytorch_compare.py.

The module keeps lowbit's node order and names, so PyTorch's eager-mode quantization can fuse what
lowbit fuses (conv + batch norm + ReLU, linear + ReLU, add + ReLU) and convert the rest. It stops
at the logits, as `lowbit bench` does: a final log_softmax does not change the predicted class.
"""


def pair(value):
    """lowbit writes square windows as one integer and others as [h, w]."""
    return (value, value) if isinstance(value, int) else tuple(value)


def readers_of(nodes):
    """{node name: number of nodes reading it}."""
    counts = {}
    for node in nodes:
        for name in node["inputs"]:
            counts[name] = counts.get(name, 0) + 1
    return counts


def fusion_groups(nodes):
    """Chains PyTorch fuses, as lists of node names: conv [+ bn] [+ relu], linear + relu; and the
    set of add nodes whose only reader is a ReLU (run as add_relu)."""
    readers = readers_of(nodes)
    sole_reader = {}
    for node in nodes:
        for name in node["inputs"]:
            if readers[name] == 1:
                sole_reader[name] = node
    groups, add_relu = [], set()
    for node in nodes:
        kind = node["kind"]
        if kind not in ("conv2d", "linear", "add"):
            continue
        chain, tail = [node["name"]], node
        nxt = sole_reader.get(tail["name"])
        if kind == "conv2d" and nxt is not None and nxt["kind"] == "batch_norm":
            chain.append(nxt["name"])
            tail, nxt = nxt, sole_reader.get(nxt["name"])
        if nxt is not None and nxt["kind"] == "relu":
            if kind == "add":
                add_relu.add(node["name"])
                continue
            chain.append(nxt["name"])
        if len(chain) > 1:
            groups.append(chain)
    return groups, add_relu


def build(torch, description, tensors):
    """(module, fusion groups as module keys): a float nn.Module over [batch, C, H, W] normalized
    images, with QuantStub/DeQuantStub at its ends (identities until PyTorch converts it)."""
    from torch import nn
    from torch.ao import quantization as tq
    from torch.ao.nn.quantized import FloatFunctional

    nodes = description["nodes"]
    if nodes and nodes[-1]["kind"] == "log_softmax":
        nodes = nodes[:-1]
    groups, add_relu = fusion_groups(nodes)
    fused_relus = {n["name"] for n in nodes if n["kind"] == "relu" and n["inputs"][0] in add_relu}
    key = {n["name"]: n["name"].replace(".", "_") for n in nodes}
    shapes = {"input": tuple(description["input_shape"])}

    def as_tensor(array):
        return torch.from_numpy(array.copy())

    def window(node):
        return pair(node.get("kernel", 1)), pair(node.get("stride", node.get("kernel", 1))), pair(node.get("padding", 0))

    modules, steps = nn.ModuleDict(), []
    for node in nodes:
        name, kind, inputs = node["name"], node["kind"], node["inputs"]
        shape = shapes[inputs[0]]
        params = tensors.get(name, {}).get("parameters", [])
        buffers = tensors.get(name, {}).get("buffers", [])
        if kind == "conv2d":
            kernel, stride, padding = pair(node["kernel"]), pair(node["stride"]), pair(node["padding"])
            groups_n = node.get("groups", 1)
            module = nn.Conv2d(shape[0], node["out_channels"], kernel, stride, padding, groups=groups_n,
                               bias=bool(node.get("bias", True)))
            with torch.no_grad():
                module.weight.copy_(as_tensor(params[0]))
                if module.bias is not None:
                    module.bias.copy_(as_tensor(params[1]))
            out_h = (shape[1] + 2 * padding[0] - kernel[0]) // stride[0] + 1
            out_w = (shape[2] + 2 * padding[1] - kernel[1]) // stride[1] + 1
            shapes[name] = (node["out_channels"], out_h, out_w)
        elif kind == "batch_norm":
            module = nn.BatchNorm2d(shape[0], eps=node["epsilon"], momentum=node["momentum"])
            with torch.no_grad():
                module.weight.copy_(as_tensor(params[0]))
                module.bias.copy_(as_tensor(params[1]))
                module.running_mean.copy_(as_tensor(buffers[0]))
                module.running_var.copy_(as_tensor(buffers[1]))
            shapes[name] = shape
        elif kind == "relu":
            module = nn.Identity() if name in fused_relus else nn.ReLU()
            shapes[name] = shape
        elif kind in ("max_pool2d", "avg_pool2d"):
            kernel, stride, padding = window(node)
            if kind == "max_pool2d":
                module = nn.MaxPool2d(kernel, stride, padding)
            else:
                module = nn.AvgPool2d(kernel, stride, padding, count_include_pad=node.get("count_include_pad", True))
            shapes[name] = (shape[0], (shape[1] + 2 * padding[0] - kernel[0]) // stride[0] + 1,
                            (shape[2] + 2 * padding[1] - kernel[1]) // stride[1] + 1)
        elif kind in ("global_max_pool", "global_avg_pool"):
            # PyTorch's quantized backends have no adaptive max pool: MaxPool2d over the whole map is
            # the same function.
            pool = nn.MaxPool2d(shape[1:]) if kind == "global_max_pool" else nn.AdaptiveAvgPool2d(1)
            module = nn.Sequential(pool, nn.Flatten(1))
            shapes[name] = (shape[0],)
        elif kind == "flatten":
            module = nn.Flatten(1)
            shapes[name] = (int(torch.tensor(shape).prod()),)
        elif kind == "dropout":
            module = nn.Identity()
            shapes[name] = shape
        elif kind == "add":
            if len(inputs) != 2:
                raise ValueError(f"node {name!r}: an add of {len(inputs)} inputs (PyTorch's quantized add takes 2)")
            module = FloatFunctional()
            shapes[name] = shape
        elif kind == "linear":
            module = nn.Linear(shape[0], node["out_features"])
            with torch.no_grad():
                module.weight.copy_(as_tensor(params[0]))
                module.bias.copy_(as_tensor(params[1]))
            shapes[name] = (node["out_features"],)
        else:
            raise ValueError(f"node {name!r}: kind {kind!r} has no PyTorch counterpart here")
        modules[key[name]] = module
        steps.append((key[name], kind, [key.get(i, i) for i in inputs], name in add_relu))

    class LowbitGraph(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
            self.nodes = modules

        def forward(self, x):  # x: [batch, C, H, W] normalized -> [batch, classes] logits
            values = {"input": self.quant(x)}
            for name, kind, inputs, with_relu in steps:
                module = self.nodes[name]
                if kind == "add":
                    a, b = values[inputs[0]], values[inputs[1]]
                    values[name] = module.add_relu(a, b) if with_relu else module.add(a, b)
                else:
                    values[name] = module(values[inputs[0]])
            return self.dequant(values[steps[-1][0]])

    module_groups = [[f"nodes.{key[name]}" for name in group] for group in groups]
    return LowbitGraph().eval(), module_groups
