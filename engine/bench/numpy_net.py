"""A plain NumPy im2col implementation of a net: the "what NumPy alone gets you" baseline that
`convnet-demo bench` races. Used ONLY by the benchmark; the engine never calls it.

Convolution is the textbook im2col: copy every filter tap's strided view of the padded input
into a (C*sy*sx, N*Ho*Wo) matrix, multiply by the (F, C*sy*sx) weights (one BLAS call), and
scatter back with col2im in the backward pass; pooling reuses im2col per channel. Float32
throughout, momentum SGD as engine/optim does it (v = mu*v - lr*g; w += v).

Supported layer types (what the benchmark nets use): input, conv, pool, fc, relu, batchnorm,
global_avg_pool, residual, softmax. Anything else raises NotImplementedError.
"""

from __future__ import annotations

import numpy as np

SUPPORTED = ("input", "conv", "pool", "fc", "relu", "batchnorm", "global_avg_pool", "residual",
             "softmax")


def im2col(x, sy, sx, stride_y, stride_x, pad_y, pad_x, out_h, out_w, fill=0.0):
    """x (N, C, H, W) -> cols (C*sy*sx, N*Ho*Wo); padded positions hold `fill`."""
    n, c, _, _ = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad_y, pad_y), (pad_x, pad_x)), constant_values=fill)
    cols = np.empty((c, sy, sx, n, out_h, out_w), x.dtype)
    for ky in range(sy):
        for kx in range(sx):
            view = xp[:, :, ky:ky + stride_y * out_h:stride_y, kx:kx + stride_x * out_w:stride_x]
            cols[:, ky, kx] = view.transpose(1, 0, 2, 3)
    return cols.reshape(c * sy * sx, n * out_h * out_w)


def col2im(cols, x_shape, sy, sx, stride_y, stride_x, pad_y, pad_x, out_h, out_w):
    """The adjoint of im2col: cols (C*sy*sx, N*Ho*Wo) -> dx (N, C, H, W), overlaps summed."""
    n, c, h, w = x_shape
    dxp = np.zeros((n, c, h + 2 * pad_y, w + 2 * pad_x), cols.dtype)
    cols6 = cols.reshape(c, sy, sx, n, out_h, out_w)
    for ky in range(sy):
        for kx in range(sx):
            dxp[:, :, ky:ky + stride_y * out_h:stride_y, kx:kx + stride_x * out_w:stride_x] += \
                cols6[:, ky, kx].transpose(1, 0, 2, 3)
    return dxp[:, :, pad_y:pad_y + h, pad_x:pad_x + w]


def _window(d):
    return d["sy"], d["sx"], d["stride_y"], d["stride_x"], d["pad_y"], d["pad_x"]


class _Layer:
    params: dict

    def __init__(self, d):
        self.d, self.params, self.buffers = d, {}, {}


class Conv(_Layer):
    def forward(self, x, train):
        # x (N, C, H, W) -> (N, F, Ho, Wo)
        f, out_h, out_w = self.d["out_shape"]
        cols = im2col(x, *_window(self.d), out_h, out_w)
        w2 = self.params["w"].reshape(f, -1)
        out = w2 @ cols
        if "b" in self.params:
            out += self.params["b"][:, None]
        out = np.ascontiguousarray(out.reshape(f, x.shape[0], out_h, out_w).transpose(1, 0, 2, 3))
        return out, (x.shape, cols)

    def backward(self, dout, cache, grads):
        x_shape, cols = cache
        f, out_h, out_w = self.d["out_shape"]
        d2 = dout.transpose(1, 0, 2, 3).reshape(f, -1)
        grads["w"] += (d2 @ cols.T).reshape(self.params["w"].shape)
        if "b" in self.params:
            grads["b"] += d2.sum(axis=1)
        dcols = self.params["w"].reshape(f, -1).T @ d2
        return col2im(dcols, x_shape, *_window(self.d), out_h, out_w)


class Pool(_Layer):
    def forward(self, x, train):
        # x (N, C, H, W) -> (N, C, Ho, Wo); each channel pooled as a 1-channel image
        n, c, h, w = x.shape
        _, out_h, out_w = self.d["out_shape"]
        is_max = self.d["mode"] == "max"
        planes = x.reshape(n * c, 1, h, w)
        cols = im2col(planes, *_window(self.d), out_h, out_w, fill=-np.inf if is_max else 0.0)
        if is_max:
            arg = cols.argmax(axis=0)
            out = cols[arg, np.arange(cols.shape[1])]
            return out.reshape(n, c, out_h, out_w), (x.shape, arg, None)
        counts = im2col(np.ones((1, 1, h, w), x.dtype), *_window(self.d), out_h, out_w).sum(0)
        counts = np.tile(counts, n * c)  # in-bounds elements per window (count_include_pad off)
        out = cols.sum(axis=0) / counts
        return out.reshape(n, c, out_h, out_w), (x.shape, None, counts)

    def backward(self, dout, cache, grads):
        (n, c, h, w), arg, counts = cache
        _, out_h, out_w = self.d["out_shape"]
        flat = dout.reshape(-1)
        dcols = np.zeros((self.d["sy"] * self.d["sx"], flat.size), dout.dtype)
        if arg is not None:
            dcols[arg, np.arange(flat.size)] = flat
        else:
            dcols[:] = flat / counts
        return col2im(dcols, (n * c, 1, h, w), *_window(self.d), out_h, out_w).reshape(n, c, h, w)


class FC(_Layer):
    def forward(self, x, train):
        # x (N, C, H, W) -> (N, K, 1, 1), x flattened in (C, H, W) order
        x2 = x.reshape(x.shape[0], -1)
        out = x2 @ self.params["w"].T
        if "b" in self.params:
            out += self.params["b"]
        return out[:, :, None, None], x

    def backward(self, dout, cache, grads):
        x = cache
        d2 = dout.reshape(dout.shape[0], -1)
        grads["w"] += d2.T @ x.reshape(x.shape[0], -1)
        if "b" in self.params:
            grads["b"] += d2.sum(axis=0)
        return (d2 @ self.params["w"]).reshape(x.shape)


class Relu(_Layer):
    def forward(self, x, train):
        out = np.maximum(x, 0)
        return out, out

    def backward(self, dout, cache, grads):
        return dout * (cache > 0)


class GlobalAvgPool(_Layer):
    def forward(self, x, train):
        return x.mean(axis=(2, 3), keepdims=True), x.shape

    def backward(self, dout, cache, grads):
        n, c, h, w = cache
        return np.broadcast_to(dout / (h * w), cache).copy()


class BatchNorm(_Layer):
    def forward(self, x, train):
        # per channel over (N, H, W); as torch.nn.BatchNorm2d
        gamma = self.params["gamma"][None, :, None, None]
        beta = self.params["beta"][None, :, None, None]
        eps, m = self.d["eps"], self.d["momentum"]
        if not train:
            mean = self.buffers["running_mean"][None, :, None, None]
            var = self.buffers["running_var"][None, :, None, None]
            return (x - mean) / np.sqrt(var + eps) * gamma + beta, None
        count = x.shape[0] * x.shape[2] * x.shape[3]
        mean = x.mean(axis=(0, 2, 3), keepdims=True)
        var = x.var(axis=(0, 2, 3), keepdims=True)
        inv_std = 1 / np.sqrt(var + eps)
        x_hat = (x - mean) * inv_std
        self.buffers["running_mean"] *= 1 - m
        self.buffers["running_mean"] += m * mean.ravel()
        self.buffers["running_var"] *= 1 - m
        self.buffers["running_var"] += m * count / (count - 1) * var.ravel()
        return x_hat * gamma + beta, (x_hat, inv_std)

    def backward(self, dout, cache, grads):
        x_hat, inv_std = cache
        grads["gamma"] += (dout * x_hat).sum(axis=(0, 2, 3))
        grads["beta"] += dout.sum(axis=(0, 2, 3))
        dx_hat = dout * self.params["gamma"][None, :, None, None]
        mean_d = dx_hat.mean(axis=(0, 2, 3), keepdims=True)
        mean_dx = (dx_hat * x_hat).mean(axis=(0, 2, 3), keepdims=True)
        return (dx_hat - mean_d - x_hat * mean_dx) * inv_std


class Identity(_Layer):
    def forward(self, x, train):
        return x, None

    def backward(self, dout, cache, grads):
        return dout


class Residual(_Layer):
    def __init__(self, d):
        super().__init__(d)
        self.chains = {"layers": [build(c) for c in d["layers"]],
                       "shortcut": [build(c) for c in d["shortcut"]]}

    def forward(self, x, train):
        outs, caches = [], []
        for layers in self.chains.values():
            y, chain_caches = x, []
            for layer in layers:
                y, cache = layer.forward(y, train)
                chain_caches.append(cache)
            outs.append(y)
            caches.append(chain_caches)
        return outs[0] + outs[1], caches

    def backward(self, dout, cache, grads):
        dx = None
        for (chain, layers), chain_caches in zip(self.chains.items(), cache):
            d = dout
            for j in range(len(layers) - 1, -1, -1):
                d = layers[j].backward(d, chain_caches[j], grads.get(f"{chain}.{j}", {}))
            dx = d if dx is None else dx + d
        return dx


_CLASSES = {"input": Identity, "conv": Conv, "pool": Pool, "fc": FC, "relu": Relu,
            "batchnorm": BatchNorm, "global_avg_pool": GlobalAvgPool, "residual": Residual}


def build(d):
    if d["type"] not in _CLASSES:
        raise NotImplementedError(f"the NumPy benchmark reference has no {d['type']!r} layer; "
                                  f"it supports {', '.join(SUPPORTED)}")
    return _CLASSES[d["type"]](d)


def _leaves(layers, prefix=""):
    """(name prefix, layer) for every leaf layer, named as Net names their parameters."""
    for j, layer in enumerate(layers):
        if isinstance(layer, Residual):
            for chain, inner in layer.chains.items():
                yield from _leaves(inner, f"{prefix}{j}.{chain}.")
        else:
            yield f"{prefix}{j}.", layer


class NumpyNet:
    """The spec's layers in NumPy, weights copied from our Net; softmax loss only."""

    def __init__(self, net):
        spec = net.spec
        if spec.loss_type != "softmax":
            raise NotImplementedError("the NumPy benchmark reference supports softmax nets only")
        self.layers = [build(d) for d in spec.layers[:-1]]
        self.label_smoothing = spec.layers[-1].get("label_smoothing", 0.0)
        ours = {name: arr for name, arr, _ in net.named_params()}
        buffers = dict(net.named_buffers())
        self.params, self.grads, self.velocity = {}, {}, {}
        for prefix, layer in _leaves(self.layers):
            kind = layer.d["type"]
            names = {"conv": ("w", "b"), "fc": ("w", "b"), "batchnorm": ("gamma", "beta")}
            for name in names.get(kind, ()):
                if prefix + name in ours:
                    layer.params[name] = ours[prefix + name].copy()
                    self.params[prefix + name] = layer.params[name]
            for name in ("running_mean", "running_var") if kind == "batchnorm" else ():
                layer.buffers[name] = buffers[prefix + name].copy()
        if set(self.params) != set(ours):
            raise ValueError(f"parameters differ: {sorted(set(self.params) ^ set(ours))}")
        for name, arr in self.params.items():
            self.grads[name] = np.zeros_like(arr)
            self.velocity[name] = np.zeros_like(arr)

    def forward(self, x, train=False):
        """x (N, C, H, W) -> (scores (N, K), caches)."""
        caches = []
        for layer in self.layers:
            x, cache = layer.forward(x, train)
            caches.append(cache)
        return x.reshape(x.shape[0], -1), caches

    def predict(self, x):
        scores, _ = self.forward(x, train=False)
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def loss_and_grads(self, x, y):
        """Mean cross-entropy (label smoothing included); gradients (batch means) written into
        self.grads."""
        scores, caches = self.forward(x, train=True)
        n = scores.shape[0]
        shifted = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        log_probs = shifted - np.log(e.sum(axis=1, keepdims=True))   # finite where probs is 0
        probs = e / e.sum(axis=1, keepdims=True)
        # the softmax layer's target: (1 - eps) * onehot + eps / K (eps = 0: plain onehot)
        target = np.full_like(probs, self.label_smoothing / probs.shape[1])
        target[np.arange(n), y] += 1 - self.label_smoothing
        loss = float(-(target * log_probs).sum(axis=1).mean())
        d = probs - target
        d = (d / n).reshape(n, -1, 1, 1)
        for g in self.grads.values():
            g.fill(0)
        for i in range(len(self.layers) - 1, -1, -1):
            d = self.layers[i].backward(d, caches[i], self._layer_grads(str(i)))
        return loss

    def _layer_grads(self, index: str) -> dict:
        """A view of self.grads for top-level layer `index`: "w" for plain layers, nested
        "layers.<j>" / "shortcut.<j>" dicts for residual blocks."""
        out: dict = {}
        for key, g in self.grads.items():
            head, _, rest = key.partition(".")
            if head != index:
                continue
            parts = rest.split(".")
            if len(parts) == 1:
                out[parts[0]] = g
            else:  # residual child: "<chain>.<j>.<name>" (blocks nest one level here)
                out.setdefault(f"{parts[0]}.{parts[1]}", {})[".".join(parts[2:])] = g
        return out

    def sgd_momentum_step(self, lr: float, momentum: float) -> None:
        for name, w in self.params.items():
            v = self.velocity[name]
            v *= momentum
            v -= lr * self.grads[name]
            w += v
