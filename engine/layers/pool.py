"""Pooling layers: max or average pooling over windows, and global average pooling."""

from __future__ import annotations

import numpy as np

from engine.kernels import pool as kernels
from engine.layers.base import Layer, checked_batch, register


@register
class PoolLayer(Layer):
    """Max or average pooling, any window, stride and padding; padded positions are ignored
    (max over in-bounds elements; average divides by their count, torch count_include_pad=False).
    """

    type = "pool"

    def __init__(self, d):
        super().__init__(d)
        self.sx, self.sy = int(d["sx"]), int(d["sy"])
        self.stride_x, self.stride_y = int(d["stride_x"]), int(d["stride_y"])
        self.pad_x, self.pad_y = int(d["pad_x"]), int(d["pad_y"])
        self.mode = d["mode"]

    def _window(self):
        return self.sy, self.sx, self.stride_y, self.stride_x, self.pad_y, self.pad_x

    def forward(self, x, ctx):
        # x: (N, C, H, W) -> out: (N, C, Ho, Wo)
        x = checked_batch(self, x, self.in_shape, "input")
        out_shape = (x.shape[0],) + self.out_shape
        out = ctx.workspace.empty(self, "out", out_shape, x.dtype)
        if self.mode == "max":
            # argmax makes backward a scatter, exact and cheap; it is the layer's own buffer.
            argmax = ctx.workspace.empty(self, "argmax", out_shape, np.int32)
            kernels.max_pool_forward(out, argmax, x, *self._window())
            return out, (x.dtype, argmax)
        kernels.avg_pool_forward(out, x, *self._window())
        return out, (x.dtype, None)

    def backward(self, dout, cache, grads, ctx):
        dtype, argmax = cache
        dout = checked_batch(self, dout, self.out_shape, "dout", dtype)
        dx = ctx.workspace.empty(self, "dx", (dout.shape[0],) + self.in_shape, dtype)
        if argmax is not None:
            if argmax.shape != dout.shape:
                raise ValueError(f"pool layer: dout {dout.shape} does not match the forward "
                                 f"pass {argmax.shape}")
            kernels.max_pool_backward(dx, dout, argmax)
        else:
            kernels.avg_pool_backward(dx, dout, *self._window())
        return dx


@register
class GlobalAvgPoolLayer(Layer):
    """The mean of each channel: (N, C, H, W) -> (N, C, 1, 1)."""

    type = "global_avg_pool"

    def forward(self, x, ctx):
        x = checked_batch(self, x, self.in_shape, "input")
        out = ctx.workspace.empty(self, "out", (x.shape[0], self.in_shape[0], 1, 1), x.dtype)
        kernels.global_avg_pool_forward(out, x)
        return out, x.dtype

    def backward(self, dout, cache, grads, ctx):
        dout = checked_batch(self, dout, (self.in_shape[0], 1, 1), "dout", cache)
        dx = ctx.workspace.empty(self, "dx", (dout.shape[0],) + self.in_shape, cache)
        kernels.global_avg_pool_backward(dx, dout)
        return dx
