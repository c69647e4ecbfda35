"""PyTorch twins of our nets: the reference the tests compare against and the benchmark races.

    tnet = torch_net_from_spec(spec, net)       # same layers, same weights (copied from net)
    scores = tnet(torch.from_numpy(x))          # (N, K, 1, 1): the loss layer's INPUT
    loss = spec_loss(scores, y, spec)           # torch_loss with the spec's loss layer
    loss.backward(); torch_grads(tnet)          # {"<our param name>": ndarray}

Parameter names are ours ("3.w", "5.layers.1.gamma", "7.branches.0.0.b"), so gradients compare
name by name with `engine_grads(net, grads)`. torch is imported inside functions only: this
module imports (and the engine runs) without it.

Dropout in training mode draws its mask the way ours does (from a NumPy Generator, uniform
draws >= p kept and scaled by 1/(1-p), layer after layer in forward order) once
`set_dropout_rng(tnet, rng)` is given a generator in the same state as our Context's rng;
without one it uses torch's own dropout.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Our parameter name for each torch parameter name, per layer type.
_PARAM_NAMES = {"conv": {"weight": "w", "bias": "b"}, "fc": {"weight": "w", "bias": "b"},
                "batchnorm": {"weight": "gamma", "bias": "beta"}}
_BUFFER_NAMES = {"batchnorm": {"running_mean": "running_mean", "running_var": "running_var"}}
_TORCH_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}


def _torch():
    import torch  # noqa: PLC0415  (lazy: torch is an optional dependency)
    return torch


def _modules():
    """The custom module classes, defined on first use (they subclass torch.nn.Module)."""
    global _MODULES
    if _MODULES is not None:
        return _MODULES
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional

    class Flatten4d(nn.Module):
        """fc: flatten in (C, H, W) order, multiply, give (N, K, 1, 1) as our fc does."""

        def __init__(self, linear):
            super().__init__()
            self.linear = linear

        def forward(self, x):
            return self.linear(x.reshape(x.shape[0], -1))[:, :, None, None]

    class GlobalAvgPool(nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3), keepdim=True)

    class Maxout(nn.Module):
        def __init__(self, group_size):
            super().__init__()
            self.group_size = group_size

        def forward(self, x):
            n, c, h, w = x.shape
            k = c // self.group_size
            grouped = x[:, :k * self.group_size].reshape(n, k, self.group_size, h, w)
            return grouped.max(dim=2).values

    class Scale(nn.Module):
        """Ours: every value times a constant (airbench94's 1/9 on the scores)."""

        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

    class Dropout(nn.Module):
        def __init__(self, p):
            super().__init__()
            self.p = p
            self.rng = None  # a numpy Generator: draw masks as engine/layers/activations does

        def forward(self, x):
            if not self.training or self.p == 0.0:
                return x
            if self.rng is None:
                return F.dropout(x, self.p, training=True)
            dtype = _numpy_dtype(x.dtype)
            draws = self.rng.random(tuple(x.shape), dtype=dtype)
            mask = (draws >= self.p).astype(dtype) * dtype.type(1.0 / (1.0 - self.p))
            return x * torch.from_numpy(mask)

    class Residual(nn.Module):
        def __init__(self, layers, shortcut):
            super().__init__()
            self.layers, self.shortcut = layers, shortcut

        def forward(self, x):
            return self.layers(x) + self.shortcut(x)

    class Concat(nn.Module):
        def __init__(self, branches):
            super().__init__()
            self.branches = branches

        def forward(self, x):
            return torch.cat([branch(x) for branch in self.branches], dim=1)

    class TorchNet(nn.Module):
        """Every layer but the loss, registered under its index ("0", "1", ...)."""

        def __init__(self, spec, modules):
            super().__init__()
            self.spec = spec
            self.loss_type = spec.loss_type
            for i, module in enumerate(modules):
                self.add_module(str(i), module)

        def forward(self, x, keep_outputs: bool = False):
            """x (N, C, H, W) -> scores (N, K, 1, 1); with keep_outputs, (scores, outputs)."""
            outputs = []
            for module in self.children():
                x = module(x)
                outputs.append(x)
            return (x, outputs) if keep_outputs else x

        def predict(self, x):
            """What our loss layer's forward gives: probabilities for softmax, else scores."""
            scores = self(x)
            if self.loss_type == "softmax":
                return torch.softmax(scores.reshape(scores.shape[0], -1), dim=1).reshape(
                    scores.shape)
            return scores

    _MODULES = {"Flatten4d": Flatten4d, "GlobalAvgPool": GlobalAvgPool, "Maxout": Maxout,
                "Dropout": Dropout, "Scale": Scale, "Residual": Residual, "Concat": Concat, "TorchNet": TorchNet}
    return _MODULES


_MODULES: dict[str, Any] | None = None


def _numpy_dtype(torch_dtype) -> np.dtype:
    return np.dtype(str(torch_dtype).removeprefix("torch."))


def _module(d: dict[str, Any]):
    """One torch module for one normalised LayerDef (blocks recurse)."""
    torch = _torch()
    nn, m = torch.nn, _modules()
    t, (c, h, w) = d["type"], d["in_shape"]
    if t == "input":
        return nn.Identity()
    if t == "conv":
        # "rounding": "floor" needs nothing: torch floors the output size anyway.
        return nn.Conv2d(c, d["filters"], (d["sy"], d["sx"]),
                         stride=(d["stride_y"], d["stride_x"]),
                         padding=(d["pad_y"], d["pad_x"]), bias=d["bias"])
    if t == "fc":
        return m["Flatten4d"](nn.Linear(c * h * w, d["num_neurons"], bias=d["bias"]))
    if t == "pool":
        window = dict(kernel_size=(d["sy"], d["sx"]), stride=(d["stride_y"], d["stride_x"]),
                      padding=(d["pad_y"], d["pad_x"]))
        if d["mode"] == "max":
            return nn.MaxPool2d(**window)  # pads with -inf: max over in-bounds elements
        return nn.AvgPool2d(**window, count_include_pad=False)
    if t == "global_avg_pool":
        return m["GlobalAvgPool"]()
    if t == "relu":
        return nn.ReLU()
    if t == "leaky_relu":
        return nn.LeakyReLU(d["alpha"])
    if t == "gelu":
        return nn.GELU()               # approximate="none": the erf form, as ours
    if t == "sigmoid":
        return nn.Sigmoid()
    if t == "tanh":
        return nn.Tanh()
    if t == "maxout":
        return m["Maxout"](d["group_size"])
    if t == "dropout":
        return m["Dropout"](d["drop_prob"])
    if t == "scale":
        return m["Scale"](d["factor"])
    if t == "batchnorm":
        return nn.BatchNorm2d(c, eps=d["eps"], momentum=d["momentum"])
    if t == "lrn":
        return nn.LocalResponseNorm(d["n"], alpha=d["alpha"], beta=d["beta"], k=d["k"])
    if t == "residual":
        return m["Residual"](nn.Sequential(*map(_module, d["layers"])),
                             nn.Sequential(*map(_module, d["shortcut"])))
    if t == "concat":
        return m["Concat"](nn.ModuleList(nn.Sequential(*map(_module, branch))
                                         for branch in d["branches"]))
    raise ValueError(f"no torch module for layer type {t!r}")


def _walk(defs: list[dict], modules, prefix: str = ""):
    """Yield (our name prefix, LayerDef, torch module) for every leaf layer, depth first.
    Names follow engine/layers/core.py: "<i>.", "<i>.layers.<j>.", "<i>.branches.<b>.<j>."."""
    for j, (d, module) in enumerate(zip(defs, modules)):
        here = f"{prefix}{j}."
        if d["type"] == "residual":
            yield from _walk(d["layers"], module.layers, here + "layers.")
            yield from _walk(d["shortcut"], module.shortcut, here + "shortcut.")
        elif d["type"] == "concat":
            for b, (branch, seq) in enumerate(zip(d["branches"], module.branches)):
                yield from _walk(branch, seq, f"{here}branches.{b}.")
        else:
            yield here, d, (module.linear if d["type"] == "fc" else module)


def named_torch_params(tnet) -> dict[str, Any]:
    """{our parameter name: torch Parameter}, in our Net.named_params() order."""
    out = {}
    for prefix, d, module in _walk(tnet.spec.layers[:-1], list(tnet.children())):
        for torch_name, ours in _PARAM_NAMES.get(d["type"], {}).items():
            param = getattr(module, torch_name, None)
            if param is not None:
                out[prefix + ours] = param
    return out


def named_torch_buffers(tnet) -> dict[str, Any]:
    out = {}
    for prefix, d, module in _walk(tnet.spec.layers[:-1], list(tnet.children())):
        for torch_name, ours in _BUFFER_NAMES.get(d["type"], {}).items():
            out[prefix + ours] = getattr(module, torch_name)
    return out


def torch_net_from_spec(spec, net=None, *, dtype=None):
    """A torch.nn.Module computing what our Net computes up to (not including) the loss layer.
    With `net`, its parameters and batchnorm statistics are copied in; dtype defaults to the
    net's (float32 without one)."""
    torch = _torch()
    dtype = np.dtype(dtype if dtype is not None else (net.dtype if net is not None
                                                     else np.float32))
    tnet = _modules()["TorchNet"](spec, [_module(d) for d in spec.layers[:-1]])
    tnet.to(getattr(torch, _TORCH_DTYPES[dtype]))
    if net is not None:
        copy_weights(net, tnet)
    return tnet


def copy_weights(net, tnet) -> None:
    """Our Net's parameters and buffers into the torch twin (names must match one to one)."""
    torch = _torch()
    params, buffers = named_torch_params(tnet), named_torch_buffers(tnet)
    ours = {name: arr for name, arr, _ in net.named_params()}
    our_buffers = dict(net.named_buffers())
    if set(ours) != set(params) or set(our_buffers) != set(buffers):
        raise ValueError(f"parameter names differ: ours {sorted(ours)} + {sorted(our_buffers)}"
                         f", torch {sorted(params)} + {sorted(buffers)}")
    with torch.no_grad():
        for table, source in ((params, ours), (buffers, our_buffers)):
            for name, tensor in table.items():
                if tuple(tensor.shape) != source[name].shape:
                    raise ValueError(f"{name}: torch {tuple(tensor.shape)}, "
                                     f"ours {source[name].shape}")
                tensor.copy_(torch.from_numpy(np.ascontiguousarray(source[name])))


def set_dropout_rng(tnet, rng: np.random.Generator | None) -> None:
    """Make every dropout layer draw masks from `rng` as ours do (None: torch's own)."""
    dropout = _modules()["Dropout"]
    for module in tnet.modules():
        if isinstance(module, dropout):
            module.rng = rng


def torch_loss(scores, y, loss_type: str, *, label_smoothing: float = 0.0):
    """Our loss definitions on torch scores (N, K, 1, 1) (or (N, K)); y: labels (N,) for softmax
    and svm, targets (N, K) for regression (numpy or torch). label_smoothing: the softmax
    layer's (see spec_loss)."""
    torch = _torch()
    F = torch.nn.functional
    s = scores.reshape(scores.shape[0], -1)
    if label_smoothing and loss_type != "softmax":
        raise ValueError(f"label_smoothing applies to softmax only, not {loss_type!r}")
    if loss_type in ("softmax", "svm"):
        labels = torch.as_tensor(np.asarray(y, dtype=np.int64))
        if loss_type == "softmax":
            # mean over the batch of -sum_k t_k log p_k, t = (1 - eps) * onehot + eps / K
            return torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)(s, labels)
        # multi_margin_loss averages over the K classes too; ConvNetJS sums over them.
        return F.multi_margin_loss(s, labels, p=1, margin=1.0) * s.shape[1]
    if loss_type == "regression":
        target = torch.as_tensor(np.asarray(y)).to(s.dtype)
        return 0.5 * ((s - target) ** 2).sum() / s.shape[0]
    raise ValueError(f"unknown loss type {loss_type!r}")


def spec_loss(scores, y, spec):
    """torch_loss with the spec's own loss layer: its type and (softmax) label smoothing."""
    last = spec.layers[-1]
    return torch_loss(scores, y, last["type"],
                      label_smoothing=last.get("label_smoothing", 0.0))


def torch_grads(tnet) -> dict[str, np.ndarray]:
    """{our parameter name: gradient as numpy} after loss.backward() (zeros where none)."""
    out = {}
    for name, param in named_torch_params(tnet).items():
        grad = param.grad
        out[name] = (grad.detach().numpy().copy() if grad is not None
                     else np.zeros(tuple(param.shape), _numpy_dtype(param.dtype)))
    return out


def torch_state(tnet) -> dict[str, np.ndarray]:
    """{our name: value} for every parameter and buffer (after training steps, say)."""
    tables = {**named_torch_params(tnet), **named_torch_buffers(tnet)}
    return {name: t.detach().numpy().copy() for name, t in tables.items()}


def engine_grads(net, grads) -> dict[str, np.ndarray]:
    """Our gradients (Net.new_grads() structure) as {name: array}, names as torch_grads."""
    return {name: grad for name, _, grad, _ in net.named_grads(grads)}
