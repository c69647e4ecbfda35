"""The input layer, the constant scale, and the two blocks that hold other layers: residual
and concat."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.layers.base import LAYER_TYPES, Layer, register


def build_layer(d: dict[str, Any]) -> Layer:
    """A layer object from a normalised LayerDef (engine.spec.net_spec guarantees the keys)."""
    return LAYER_TYPES[d["type"]](d)


@register
class InputLayer(Layer):
    type = "input"

    def forward(self, x, ctx):
        return x, None

    def backward(self, dout, cache, grads, ctx):
        return dout


@register
class ScaleLayer(Layer):
    """out = factor * x, a constant (airbench94 multiplies its head's scores by 1/9; in front
    of an fc without bias the product is the same: w (f x) = f (w x))."""

    type = "scale"

    def __init__(self, d):
        super().__init__(d)
        self.factor = float(d["factor"])

    def forward(self, x, ctx):
        # x: (N, C, H, W) -> out: (N, C, H, W)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.in_shape:
            c, h, w = self.in_shape
            raise ValueError(f"scale expects a batch of shape (N, {c}, {h}, {w}), "
                             f"got {x.shape}")
        out = ctx.workspace.empty(self, "out", x.shape, x.dtype)
        np.multiply(x, x.dtype.type(self.factor), out=out)
        return out, None

    def backward(self, dout, cache, grads, ctx):
        dx = ctx.workspace.empty(self, "dx", dout.shape, dout.dtype)
        np.multiply(dout, dout.dtype.type(self.factor), out=dx)
        return dx


class _Block(Layer):
    """A layer made of named chains of layers; its params are its children's, flattened as
    "<chain>.<index>.<name>" and referencing (never copying) the children's arrays."""

    chains: tuple[str, ...] = ()

    def __init__(self, d):
        super().__init__(d)
        self.children: dict[str, list[Layer]] = {}

    def init(self, rng, dtype=np.float32):
        for layers in self.children.values():
            for layer in layers:
                layer.init(rng, dtype)
        self.params, self.decay, self.buffers = {}, {}, {}
        self.lr_mul, fixed = {}, set()
        for chain, layers in self.children.items():
            for j, layer in enumerate(layers):
                prefix = f"{chain}.{j}."
                for name, arr in layer.params.items():
                    self.params[prefix + name] = arr
                    self.decay[prefix + name] = layer.decay.get(name, (0.0, 0.0))
                for name, mul in getattr(layer, "lr_mul", {}).items():
                    self.lr_mul[prefix + name] = mul
                fixed.update(prefix + name for name in getattr(layer, "fixed", ()))
                for name, arr in layer.buffers.items():
                    self.buffers[prefix + name] = arr
        self.fixed = frozenset(fixed)

    def walk(self, prefix: str = ""):
        """Yield (path, layer) for every layer inside, depth first."""
        for chain, layers in self.children.items():
            for j, layer in enumerate(layers):
                path = f"{prefix}{chain}.{j}"
                yield path, layer
                if isinstance(layer, _Block):
                    yield from layer.walk(path + ".")

    @staticmethod
    def _chain_forward(layers: list[Layer], x, ctx):
        caches = []
        record = ctx.inner_outputs
        for layer in layers:
            x, cache = layer.forward(x, ctx)
            caches.append(cache)
            if record is not None:
                record[id(layer)] = x
        return x, caches

    @staticmethod
    def _chain_backward(layers, chain, caches, dout, grads, ctx):
        for j in range(len(layers) - 1, -1, -1):
            layer = layers[j]
            prefix = f"{chain}.{j}."
            child_grads = {name: grads[prefix + name] for name in layer.params}
            dout = layer.backward(dout, caches[j], child_grads, ctx)
        return dout


@register
class ResidualBlock(_Block):
    """out = inner(x) + shortcut(x); an empty shortcut is the identity."""

    type = "residual"

    def __init__(self, d):
        super().__init__(d)
        self.children = {
            "layers": [build_layer(c) for c in d["layers"]],
            "shortcut": [build_layer(c) for c in d["shortcut"]],
        }

    def forward(self, x, ctx):
        # x: (N, C, H, W) -> (N, F, H', W')
        inner_out, inner_caches = self._chain_forward(self.children["layers"], x, ctx)
        short_out, short_caches = self._chain_forward(self.children["shortcut"], x, ctx)
        out = ctx.workspace.empty(self, "out", inner_out.shape, inner_out.dtype)
        np.add(inner_out, short_out, out=out)
        return out, (inner_caches, short_caches)

    def backward(self, dout, cache, grads, ctx):
        inner_caches, short_caches = cache
        # Both chains read dout; layers never write into their dout, so it can be shared.
        d_inner = self._chain_backward(self.children["layers"], "layers", inner_caches,
                                       dout, grads, ctx)
        d_short = self._chain_backward(self.children["shortcut"], "shortcut", short_caches,
                                       dout, grads, ctx)
        dx = ctx.workspace.empty(self, "dx", d_inner.shape, d_inner.dtype)
        np.add(d_inner, d_short, out=dx)
        return dx


@register
class ConcatBlock(_Block):
    """Parallel branches on the same input, outputs stacked on the channel axis (inception)."""

    type = "concat"

    def __init__(self, d):
        super().__init__(d)
        self.children = {f"branches.{b}": [build_layer(c) for c in branch]
                         for b, branch in enumerate(d["branches"])}

    def forward(self, x, ctx):
        # x: (N, C, H, W) -> (N, sum of branch channels, H', W')
        n = x.shape[0]
        c_out, h_out, w_out = self.out_shape
        out = ctx.workspace.empty(self, "out", (n, c_out, h_out, w_out), x.dtype)
        caches, c0 = [], 0
        for layers in self.children.values():
            branch_out, branch_caches = self._chain_forward(layers, x, ctx)
            c1 = c0 + branch_out.shape[1]
            out[:, c0:c1] = branch_out
            caches.append((c0, c1, branch_caches))
            c0 = c1
        return out, caches

    def backward(self, dout, cache, grads, ctx):
        dx = ctx.workspace.zeros(self, "dx", (dout.shape[0],) + self.in_shape, dout.dtype)
        for (chain, layers), (c0, c1, branch_caches) in zip(self.children.items(), cache):
            branch_dout = np.ascontiguousarray(dout[:, c0:c1])
            dx += self._chain_backward(layers, chain, branch_caches, branch_dout, grads, ctx)
        return dx
