"""Activation layers (relu, leaky relu, gelu, sigmoid, tanh, maxout) and dropout."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.kernels import activations as kernels
from engine.layers.base import Layer, checked_batch, register

class _Elementwise(Layer):
    """out = f(x) element by element. The backward kernel reads either the input or the output
    (`saves`), whichever its derivative is cheaper from; the kernels see flat 1-D views."""

    forward_kernel: ClassVar = None
    backward_kernel: ClassVar = None
    saves: ClassVar[str] = "out"  # or "x"

    def scalars(self, dtype) -> tuple:
        """Extra kernel arguments (leaky relu's alpha), cast to the data's dtype."""
        return ()

    def forward(self, x, ctx):
        # x: (N, C, H, W) -> out: (N, C, H, W)
        x = checked_batch(self, x, self.in_shape, "input")
        out = ctx.workspace.empty(self, "out", x.shape, x.dtype)
        self.forward_kernel(out.reshape(-1), x.reshape(-1), *self.scalars(x.dtype))
        return out, (x if self.saves == "x" else out)

    def backward(self, dout, cache, grads, ctx):
        saved = cache
        dout = checked_batch(self, dout, self.in_shape, "dout", saved.dtype)
        if dout.shape != saved.shape:
            raise ValueError(f"{self.type} layer: dout {dout.shape} does not match the forward "
                             f"pass {saved.shape}")
        dx = ctx.workspace.empty(self, "dx", saved.shape, saved.dtype)
        self.backward_kernel(dx.reshape(-1), dout.reshape(-1), saved.reshape(-1),
                             *self.scalars(saved.dtype))
        return dx


@register
class ReluLayer(_Elementwise):
    type = "relu"
    forward_kernel = staticmethod(kernels.relu_forward)
    backward_kernel = staticmethod(kernels.relu_backward)
    saves = "out"  # out > 0 exactly where x > 0, and out is this layer's own buffer


@register
class LeakyReluLayer(_Elementwise):
    type = "leaky_relu"
    forward_kernel = staticmethod(kernels.leaky_relu_forward)
    backward_kernel = staticmethod(kernels.leaky_relu_backward)
    saves = "x"  # alpha may be 0 or negative, so the sign of out does not tell

    def __init__(self, d):
        super().__init__(d)
        self.alpha = float(d["alpha"])

    def scalars(self, dtype):
        return (dtype.type(self.alpha),)


@register
class GeluLayer(_Elementwise):
    """x * Phi(x), the exact (erf) GELU; in float32 Phi comes from vectorised arithmetic
    within a rounding or two of libm's (engine/kernels/activations.py). Not fused into a conv
    as relu is: its backward needs x, not a mask, so it runs as its own pass."""

    type = "gelu"
    forward_kernel = staticmethod(kernels.gelu_forward)
    backward_kernel = staticmethod(kernels.gelu_backward)
    saves = "x"  # GELU is not one-to-one (it dips to -0.17 and back), so out cannot give x


@register
class SigmoidLayer(_Elementwise):
    type = "sigmoid"
    forward_kernel = staticmethod(kernels.sigmoid_forward)
    backward_kernel = staticmethod(kernels.sigmoid_backward)


@register
class TanhLayer(_Elementwise):
    type = "tanh"
    forward_kernel = staticmethod(kernels.tanh_forward)
    backward_kernel = staticmethod(kernels.tanh_backward)


@register
class MaxoutLayer(Layer):
    """out[:, k] = max over input channels k*g .. k*g + g - 1 (consecutive, as ConvNetJS);
    C / g is floored, as ConvNetJS does, and channels past it get no gradient."""

    type = "maxout"

    def __init__(self, d):
        super().__init__(d)
        self.group_size = int(d["group_size"])

    def forward(self, x, ctx):
        # x: (N, C, H, W) -> out: (N, C // g, H, W)
        x = checked_batch(self, x, self.in_shape, "input")
        n, c, h, w = x.shape
        out_shape = (n, c // self.group_size, h, w)
        if out_shape[1] < 1:
            raise ValueError(f"maxout layer: {c} channels cannot fill a group of "
                             f"{self.group_size}")
        out = ctx.workspace.empty(self, "out", out_shape, x.dtype)
        argmax = ctx.workspace.empty(self, "argmax", out_shape, np.int32)
        kernels.maxout_forward(out, argmax, x, self.group_size)
        return out, (x.dtype, argmax)

    def backward(self, dout, cache, grads, ctx):
        dtype, argmax = cache
        dout = checked_batch(self, dout, argmax.shape[1:], "dout", dtype)
        if dout.shape != argmax.shape:
            raise ValueError(f"maxout layer: dout {dout.shape} does not match the forward "
                             f"pass {argmax.shape}")
        dx = ctx.workspace.empty(self, "dx", (dout.shape[0],) + self.in_shape, dtype)
        kernels.maxout_backward(dx, dout, argmax, self.group_size)
        return dx


@register
class DropoutLayer(Layer):
    """Inverted dropout: in training each element is zeroed with probability p and the kept
    ones are scaled by 1 / (1 - p), so evaluation is the identity (ConvNetJS instead scales at
    test time, by the wrong factor). The mask is drawn from ctx.rng: same seed, same mask."""

    type = "dropout"

    def __init__(self, d):
        super().__init__(d)
        self.drop_prob = float(d["drop_prob"])

    def forward(self, x, ctx):
        x = checked_batch(self, x, self.in_shape, "input")
        if not ctx.training:
            return x, None
        p = self.drop_prob
        keep_scale = 1.0 / (1.0 - p) if p < 1.0 else 0.0
        mask = ctx.workspace.empty(self, "mask", x.shape, x.dtype)
        ctx.rng.random(out=mask, dtype=x.dtype)
        np.greater_equal(mask, p, out=mask)  # uniform [0, 1) draws -> 1.0 kept / 0.0 dropped
        mask *= x.dtype.type(keep_scale)
        out = ctx.workspace.empty(self, "out", x.shape, x.dtype)
        kernels.dropout_forward(out.reshape(-1), x.reshape(-1), mask.reshape(-1))
        return out, mask

    def backward(self, dout, cache, grads, ctx):
        mask = cache
        if mask is None:  # the forward pass was an evaluation pass: identity
            return checked_batch(self, dout, self.in_shape, "dout")
        dout = checked_batch(self, dout, self.in_shape, "dout", mask.dtype)
        if dout.shape != mask.shape:
            raise ValueError(f"dropout layer: dout {dout.shape} does not match the forward "
                             f"pass {mask.shape}")
        dx = ctx.workspace.empty(self, "dx", mask.shape, mask.dtype)
        kernels.dropout_backward(dx.reshape(-1), dout.reshape(-1), mask.reshape(-1))
        return dx
