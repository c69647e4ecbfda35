"""Normalisation layers: batch norm (as torch.nn.BatchNorm2d) and local response norm."""

from __future__ import annotations

import numpy as np

from engine.kernels.norms import (
    batchnorm_backward_eval,
    batchnorm_backward_train,
    batchnorm_forward_eval,
    batchnorm_forward_train,
    lrn_backward,
    lrn_forward,
)
from engine.layers.base import Layer, register


def _planes(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) contiguous -> (N, C, H*W) view, the layout the kernels loop over."""
    n, c, h, w = a.shape
    return a.reshape(n, c, h * w)


def _check_batch(layer: Layer, x: np.ndarray, dtype) -> np.ndarray:
    """Kernels check no bounds: a batch of the wrong shape or dtype must stop here."""
    if x.ndim != 4 or tuple(x.shape[1:]) != layer.in_shape:
        c, h, w = layer.in_shape
        raise ValueError(f"{layer.type} expects a batch of shape (N, {c}, {h}, {w}), "
                         f"got {x.shape}")
    if dtype is not None and x.dtype != dtype:
        raise ValueError(f"{layer.type} expects {np.dtype(dtype)} data, got {x.dtype}")
    return np.ascontiguousarray(x)


@register
class BatchNormLayer(Layer):
    """Per channel over (N, H, W): out = gamma * (x - mean) / sqrt(var + eps) + beta.

    Training normalises with the batch's statistics (biased variance) and moves the running
    statistics towards them (running_var towards the UNBIASED variance, as torch does);
    evaluation normalises with the running statistics.

    The spec's "scale": false fixes gamma at 1 (airbench94's batch norms): gamma stays a
    parameter, so snapshots and exports read as before, but `fixed` names it and the
    optimizer never steps it (engine/train/param_groups.py). "lr_mul" multiplies the learning
    rate of gamma and beta, "l2_decay_mul" their weight decay (0 by default, as ConvNetJS
    leaves biases undecayed).
    """

    type = "batchnorm"

    def __init__(self, d):
        super().__init__(d)
        self.eps = float(d["eps"])
        self.momentum = float(d["momentum"])
        self.learns_scale = bool(d.get("scale", True))
        self.fixed = frozenset() if self.learns_scale else frozenset({"gamma"})
        lr_mul = float(d.get("lr_mul", 1.0))
        self.lr_mul = {} if lr_mul == 1.0 else {"gamma": lr_mul, "beta": lr_mul}
        self.l2_decay_mul = float(d.get("l2_decay_mul", 0.0))

    def init(self, rng, dtype=np.float32):
        channels = self.in_shape[0]
        self.params = {"gamma": np.ones(channels, dtype), "beta": np.zeros(channels, dtype)}
        decay = (0.0, self.l2_decay_mul)
        self.decay = {"gamma": decay, "beta": decay}
        self.buffers = {"running_mean": np.zeros(channels, dtype),
                        "running_var": np.ones(channels, dtype)}

    def forward(self, x, ctx):
        # x: (N, C, H, W) -> out: (N, C, H, W)
        gamma, beta = self.params["gamma"], self.params["beta"]
        x = _check_batch(self, x, gamma.dtype)
        n, channels, h, w = x.shape
        ws = ctx.workspace
        out = ws.empty(self, "out", x.shape, x.dtype)
        running_mean = self.buffers["running_mean"]
        running_var = self.buffers["running_var"]
        if not ctx.training:
            batchnorm_forward_eval(_planes(out), _planes(x), running_mean, running_var,
                                   gamma, beta, self.eps)
            return out, ("eval", _planes(x))

        count = n * h * w
        if count < 2:
            raise ValueError(
                f"batch norm needs more than one value per channel to train, got a batch of "
                f"{n} with {h}x{w} spatial size; train with a batch of 2 or more")
        x_hat = ws.empty(self, "x_hat", x.shape, x.dtype)
        mean = ws.empty(self, "mean", (channels,), x.dtype)
        var = ws.empty(self, "var", (channels,), x.dtype)
        inv_std = ws.empty(self, "inv_std", (channels,), x.dtype)
        batchnorm_forward_train(_planes(out), _planes(x_hat), mean, var, inv_std, _planes(x),
                                gamma, beta, self.eps)
        # In place: blocks and snapshots hold references to these very arrays.
        m = self.momentum
        running_mean *= 1 - m
        running_mean += m * mean
        running_var *= 1 - m
        running_var += (m * count / (count - 1)) * var
        return out, ("train", _planes(x_hat), inv_std)

    def backward(self, dout, cache, grads, ctx):
        gamma = self.params["gamma"]
        dout = _check_batch(self, dout, gamma.dtype)
        dx = ctx.workspace.empty(self, "dx", dout.shape, dout.dtype)
        if cache[0] == "train":
            _, x_hat, inv_std = cache
            batchnorm_backward_train(_planes(dx), grads["gamma"], grads["beta"], _planes(dout),
                                     x_hat, inv_std, gamma)
        else:
            _, x = cache
            batchnorm_backward_eval(_planes(dx), grads["gamma"], grads["beta"], _planes(dout),
                                    x, self.buffers["running_mean"], self.buffers["running_var"],
                                    gamma, self.eps)
        return dx


@register
class LRNLayer(Layer):
    """Local response normalisation across channels (ConvNetJS, torch.nn.LocalResponseNorm):
    out = x / (k + alpha/n * sum of x^2 over the n channels centred on this one)^beta."""

    type = "lrn"

    def __init__(self, d):
        super().__init__(d)
        self.k = float(d["k"])
        self.n = int(d["n"])
        self.alpha = float(d["alpha"])
        self.beta = float(d["beta"])

    def forward(self, x, ctx):
        # x: (N, C, H, W) -> out: (N, C, H, W)
        x = _check_batch(self, x, None)
        ws = ctx.workspace
        out = ws.empty(self, "out", x.shape, x.dtype)
        scale = ws.empty(self, "scale", x.shape, x.dtype)
        lrn_forward(_planes(out), _planes(scale), _planes(x), self.n, self.k, self.alpha,
                    self.beta)
        return out, (_planes(x), _planes(out), _planes(scale))

    def backward(self, dout, cache, grads, ctx):
        x, out, scale = cache
        dout = _check_batch(self, dout, x.dtype)
        dx = ctx.workspace.empty(self, "dx", dout.shape, dout.dtype)
        ratio = ctx.workspace.empty(self, "ratio", dout.shape, dout.dtype)
        lrn_backward(_planes(dx), _planes(ratio), _planes(dout), x, out, scale, self.n,
                     self.alpha, self.beta)
        return dx
