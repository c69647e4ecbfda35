"""Convolution and fully-connected layers: the engine's parameterised, FLOP-heavy layers.

The kernels check nothing, so everything is checked here first: shapes, dtypes, layout.
Scratch buffers come from the caller's Workspace (reused from step to step) and the grids
the convolution kernels write are 64-byte aligned (see engine/kernels/conv.py).
"""

from __future__ import annotations

import numpy as np

from engine.kernels import conv as conv_kernels
from engine.kernels import fc as fc_kernels
from engine.kernels import winograd
from engine.kernels.winograd import ELEMENTS
from engine.layers.base import FLOAT_DTYPES, Layer, register
from engine.layers.inits import dirac_uniform

# Below this many input or output channels, or tiles in the batch, a 3x3 conv stays on the
# direct kernels (see uses_winograd).
WINOGRAD_MIN_CHANNELS = 64
WINOGRAD_MIN_TILES = 32
# A Winograd conv's scratch for one group of images (engine/kernels/winograd.py's V, M, Z
# and dV are 2.25x the size of the output): bounded, whatever the batch.
WINOGRAD_GROUP_BYTES = 48 * 2**20


def _checked(layer: Layer, a: np.ndarray, shape: tuple[int, ...], what: str,
             dtype) -> np.ndarray:
    """`a` as a C-contiguous array of exactly this shape and dtype, or a clear error."""
    if not isinstance(a, np.ndarray) or a.shape != tuple(shape):
        got = getattr(a, "shape", type(a).__name__)
        raise ValueError(f"{layer.type} layer: {what} must have shape {tuple(shape)}, got {got}")
    if a.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{layer.type} layer: {what} must be float32 or float64, got {a.dtype}")
    if a.dtype == dtype and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dtype=dtype)


def _batch(layer: Layer, x: np.ndarray, shape: tuple[int, ...], what: str, dtype) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[0] < 1:
        got = getattr(x, "shape", type(x).__name__)
        raise ValueError(f"{layer.type} layer: {what} must have shape (N, "
                         f"{', '.join(map(str, shape))}) with N >= 1, got {got}")
    return _checked(layer, x, (x.shape[0],) + tuple(shape), what, dtype)


class _Weighted(Layer):
    """Shared by conv and fc: params w (and b when d["bias"]), He init, decay multipliers.
    Net marks the first weighted layer of a net `first_weighted`: its backward returns None
    instead of dx when the pass's Context says input_grad=False."""

    def __init__(self, d):
        super().__init__(d)
        self.has_bias = bool(d["bias"])
        self.bias_pref = float(d["bias_pref"])
        self.first_weighted = False
        # Weights ~ N(0, init_gain / fan_in). He et al.'s 2 suits a layer followed by relu.
        # Net sets CLASSIFIER_GAIN on an fc feeding the loss directly: with 2 its scores start
        # so spread that the first losses are 4-8; near-zero scores give the lecture's sanity
        # check, a first loss of ln(10) = 2.30 for 10 classes.
        self.init_gain = 2.0
        self.decay = {"w": (float(d["l1_decay_mul"]), float(d["l2_decay_mul"]))}
        if self.has_bias:
            self.decay["b"] = (0.0, 0.0)

    def weight_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def init(self, rng, dtype=np.float32):
        shape = self.weight_shape()
        fan_in = int(np.prod(shape[1:]))
        w = rng.standard_normal(shape) * np.sqrt(self.init_gain / fan_in)
        self.params = {"w": np.ascontiguousarray(w, dtype=dtype)}
        if self.has_bias:
            self.params["b"] = np.full(shape[0], self.bias_pref, dtype=dtype)

    def _weights(self):
        """(w, b or None, dtype), checked: params may have been replaced (snapshots)."""
        if "w" not in self.params:
            raise RuntimeError(f"{self.type} layer: call init() before forward()")
        w = self.params["w"]
        dtype = w.dtype
        w = _checked(self, w, self.weight_shape(), "weights", dtype)
        b = None
        if self.has_bias:
            b = _checked(self, self.params["b"], self.weight_shape()[:1], "bias", dtype)
        return w, b, dtype

    def _grads(self, grads, dtype):
        """The gradient arrays the kernels add into; they must be the caller's own arrays."""
        shape = self.weight_shape()
        out = []
        for name, want in (("w", shape), ("b", shape[:1])):
            if name == "b" and not self.has_bias:
                out.append(None)
                continue
            g = grads.get(name)
            if not isinstance(g, np.ndarray) or g.shape != want or g.dtype != dtype:
                ok = False
            else:
                flags = g.flags
                ok = flags.c_contiguous and flags.writeable
            if not ok:
                raise ValueError(f"{self.type} layer: grads[{name!r}] must be a writable "
                                 f"C-contiguous {dtype} array of shape {want}")
            out.append(g)
        return out


@register
class ConvLayer(_Weighted):
    """2-D convolution (cross-correlation, as torch's conv2d), any filter size, stride and
    zero padding per axis; weights (F, C, sy, sx), optional bias (F,)."""

    type = "conv"

    def __init__(self, d):
        super().__init__(d)
        self.sx, self.sy = int(d["sx"]), int(d["sy"])
        self.stride_x, self.stride_y = int(d["stride_x"]), int(d["stride_y"])
        self.pad_x, self.pad_y = int(d["pad_x"]), int(d["pad_y"])
        self.filters = int(d["filters"])

    def weight_shape(self):
        return (self.filters, self.in_shape[0], self.sy, self.sx)

    def init(self, rng, dtype=np.float32):
        super().init(rng, dtype)
        if self.d.get("init") == "dirac":     # the spec's choice (engine/layers/inits.py)
            self.params["w"] = dirac_uniform(self.weight_shape(), rng, dtype)

    def geometry(self, n: int):
        c, h, w = self.in_shape
        return conv_kernels.conv_geometry(n, c, h, w, self.filters, self.sy, self.sx,
                                          self.stride_y, self.stride_x, self.pad_y, self.pad_x)

    def forward(self, x, ctx):
        # x: (N, C, H, W) -> out: (N, F, Ho, Wo)
        out, cache, _ = self._forward(x, ctx, None)
        return out, cache

    def forward_relu(self, x, ctx, relu):
        """This conv and the relu layer after it in one pass (Net fuses them: one loop over
        the output instead of two). Returns (out, cache, relu's out, relu's cache), exactly
        what forward and relu.forward would."""
        out, cache, relu_out = self._forward(x, ctx, relu)
        return out, cache, relu_out, relu_out  # a relu's cache is its output

    def backward_relu(self, dout, relu_cache, cache, grads, ctx):
        """relu.backward and then this layer's backward in one pass: dout is the gradient at
        the relu's output. The relu's dx is never made (Net asks for it when it keeps every
        layer's gradient)."""
        return self._backward(dout, relu_cache, cache, grads, ctx)

    def backward(self, dout, cache, grads, ctx):
        return self._backward(dout, None, cache, grads, ctx)

    def uses_winograd(self, n: int) -> bool:
        """A batch of n through a 3x3 conv at stride 1 with enough channels on both sides
        runs as Winograd F(4x4, 3x3) (engine/kernels/winograd.py); narrower layers spend
        more on its transforms than its 4x fewer multiplies save, a batch of few tiles
        (batch-1 inference) more on its fixed costs, and the direct kernels take every
        other shape. Measured one layer at a time: docs/engine.md."""
        c, h, w = self.in_shape
        if not (winograd.applies(self.sy, self.sx, self.stride_y, self.stride_x, self.pad_y,
                                 self.pad_x, h, w)
                and min(c, self.filters) >= WINOGRAD_MIN_CHANNELS):
            return False
        one = winograd.winograd_geometry(1, c, h, w, self.filters, self.pad_y, self.pad_x)
        return n * one.tiles >= WINOGRAD_MIN_TILES

    def _output_buffers(self, ctx, relu, out_shape, dtype):
        out = ctx.workspace.empty(self, "out", out_shape, dtype)
        # The relu's output is the relu layer's own buffer, as relu.forward would give it.
        relu_out = (ctx.workspace.empty(relu, "out", out_shape, dtype) if relu is not None
                    else ctx.workspace.empty(self, "no_relu", (0, 0, 0, 0), dtype))
        return out, relu_out

    def _forward(self, x, ctx, relu):
        w, b, dtype = self._weights()
        x = _batch(self, x, self.in_shape, "input", dtype)
        if b is None:
            b = ctx.workspace.zeros(self, "no_bias", (self.filters,), dtype)
        if self.uses_winograd(x.shape[0]):
            return self._forward_winograd(x, w, b, ctx, relu)
        g, phases = self.geometry(x.shape[0])
        geo = tuple(g)  # what the kernels take (see engine/kernels/conv.py)
        xph = ctx.workspace.empty_aligned(self, "xph", (g.phases * g.c * g.row,), dtype)
        conv_kernels.pad_phases(xph, x, geo, phases)
        if g.phases == 1 and g.f4 == g.f:
            wf = w.reshape(1, g.f, -1)  # already in the kernel's order
        else:
            wf = ctx.workspace.empty(self, "wf", (g.phases, g.f4, g.c * g.taps_y * g.taps_x),
                                     dtype)
            conv_kernels.forward_weights(wf, w, phases, g.stride_y, g.stride_x)
        grid = ctx.workspace.empty_aligned(self, "grid", (g.f4, g.grid_row), dtype)
        out, relu_out = self._output_buffers(ctx, relu, (g.n, g.f, g.out_h, g.out_w), dtype)
        conv_kernels.conv_forward(out, relu_out, grid, xph, wf, b, geo, phases)
        return out, (g, geo, phases, xph, w), relu_out

    def _winograd_groups(self, n: int):
        """[(n0, n1, geometry)]: the batch in groups of images small enough that one group's
        transformed tiles (V, M; or V, Z, dV) stay under WINOGRAD_GROUP_BYTES. The scratch
        is sized for one group, so an evaluation batch of 256 costs what 30 images do.
        Every group takes the first's layout (tile-major or not), as the scratch does."""
        c, h, w = self.in_shape
        one = winograd.winograd_geometry(1, c, h, w, self.filters, self.pad_y, self.pad_x)
        per_image = (4 * ELEMENTS * one.tiles_y * one.tiles_x
                     * (one.c_rows + one.f_rows + one.dc_rows))
        size = max(1, min(n, WINOGRAD_GROUP_BYTES // per_image))
        count = -(-n // size)
        size = -(-n // count)                  # the same number of groups, evenly filled
        major = winograd.tile_major_for(size * one.tiles, c, self.filters)
        return [(n0, min(n, n0 + size),
                 winograd.winograd_geometry(min(n, n0 + size) - n0, c, h, w, self.filters,
                                            self.pad_y, self.pad_x, major))
                for n0 in range(0, n, size)]

    def _tiles(self, ctx, block, g, big, dtype):
        """Scratch for one group g: 36 blocks of rows x cols, as a 2-D view at the start of
        the buffer sized for the largest group `big` (every group shares it). block: which
        of the geometry's blocks ("v", "m", "z" or "dv")."""
        def shape(geo):
            rows, cols = ((geo.f_rows, geo.tile_row) if block == "z" else
                          (getattr(geo, block + "_rows"), getattr(geo, block + "_cols")))
            return ELEMENTS * rows, cols
        size = shape(big)[0] * shape(big)[1]
        rows, cols = shape(g)
        buf = ctx.workspace.empty_aligned(self, "wino_" + block, (size,), dtype)
        return buf[:rows * cols].reshape(rows, cols)

    def _input_tiles(self, ctx, x, n0, n1, g, big, dtype):
        """V for images n0..n1-1 of x (group g)."""
        v = self._tiles(ctx, "v", g, big, dtype)
        winograd.transform_input(v.reshape(-1), x[n0:n1], tuple(g))
        return v

    def _forward_winograd(self, x, w, b, ctx, relu):
        groups = self._winograd_groups(x.shape[0])
        big, dtype = groups[0][2], w.dtype
        # Tile-major products read U^T forward and U for dx: backward makes U when it needs it
        u = ctx.workspace.empty(self, "wino_u", (0 if big.tile_major else ELEMENTS * big.f_rows,
                                                 big.c_cols), dtype)
        ut = ctx.workspace.empty(self, "wino_ut", (ELEMENTS * big.c_rows, big.f_cols)
                                 if big.tile_major else (0, 0), dtype)
        winograd.transform_weights(u, ut, w)
        out, relu_out = self._output_buffers(ctx, relu, (x.shape[0], big.f, big.out_h,
                                                         big.out_w), dtype)
        for n0, n1, g in groups:
            v = self._input_tiles(ctx, x, n0, n1, g, big, dtype)
            m = self._tiles(ctx, "m", g, big, dtype)
            winograd.product_forward(m, v, u, ut, g)
            winograd.transform_output(out[n0:n1], relu_out[n0:n1], m.reshape(-1), b, tuple(g))
        return out, ("winograd", groups, x, u, w), relu_out

    def _checked_relu(self, relu_out, out_shape, dtype, ctx):
        if relu_out is None:
            return ctx.workspace.empty(self, "no_relu", (0, 0, 0, 0), dtype)
        if (not isinstance(relu_out, np.ndarray) or relu_out.shape != out_shape
                or relu_out.dtype != dtype or not relu_out.flags.c_contiguous):
            raise ValueError(f"conv layer: the fused relu's output must be a C-contiguous "
                             f"{dtype} array of shape {out_shape}")
        return relu_out

    def _backward(self, dout, relu_out, cache, grads, ctx):
        if cache[0] == "winograd":
            return self._backward_winograd(dout, relu_out, cache, grads, ctx)
        g, geo, phases, xph, w = cache
        dtype = w.dtype
        out_shape = (g.n, g.f, g.out_h, g.out_w)
        dout = _checked(self, dout, out_shape, "dout", dtype)
        relu_out = self._checked_relu(relu_out, out_shape, dtype, ctx)
        dw, db = self._grads(grads, dtype)
        dpad = ctx.workspace.empty_aligned(self, "dpad", (g.f4 * g.row,), dtype)
        if db is None:
            db = ctx.workspace.empty(self, "no_bias_grad", (0,), dtype)
        conv_kernels.pad_dout(dpad, db, dout, relu_out, geo)
        conv_kernels.conv_backward_weights(dw, xph, dpad, geo, phases)
        if self.first_weighted and not ctx.input_grad:
            return None
        wd = ctx.workspace.empty(self, "wd", (g.phases, g.c4, g.f * g.taps_y * g.taps_x), dtype)
        conv_kernels.flipped_weights(wd, w, phases, g.stride_y, g.stride_x)
        grid = ctx.workspace.empty_aligned(self, "dx_grid", (g.c4, g.grid_row), dtype)
        dx = ctx.workspace.empty(self, "dx", (g.n, g.c, g.h, g.w), dtype)
        conv_kernels.conv_backward_data(dx, grid, dpad, wd, geo, phases)
        return dx

    def _backward_winograd(self, dout, relu_out, cache, grads, ctx):
        # Group by group, as forward: V again from x (cheaper than keeping it for the whole
        # batch), Z from dout, dU summed over the groups, dx written group by group.
        _, groups, x, u, w = cache
        big, dtype = groups[0][2], w.dtype
        out_shape = (x.shape[0], big.f, big.out_h, big.out_w)
        dout = _checked(self, dout, out_shape, "dout", dtype)
        relu_out = self._checked_relu(relu_out, out_shape, dtype, ctx)
        dw, db = self._grads(grads, dtype)
        if db is None:
            db = ctx.workspace.empty(self, "no_bias_grad", (0,), dtype)
        du = ctx.workspace.empty(self, "wino_du", (ELEMENTS * big.f_rows, big.c_cols), dtype)
        du.fill(0)
        input_grad = not (self.first_weighted and not ctx.input_grad)
        dx = (ctx.workspace.empty(self, "dx", (x.shape[0], big.c, big.h, big.w), dtype)
              if input_grad else None)
        if input_grad and big.tile_major:
            u = ctx.workspace.empty(self, "wino_u_dx", (ELEMENTS * big.f_rows, big.c_cols),
                                    dtype)
            winograd.transform_weights(u, ctx.workspace.empty(self, "no_ut", (0, 0), dtype), w)
        for n0, n1, g in groups:
            geo = tuple(g)
            v = self._input_tiles(ctx, x, n0, n1, g, big, dtype)
            z = self._tiles(ctx, "z", g, big, dtype)
            winograd.transform_dout(z.reshape(-1), db, dout[n0:n1], relu_out[n0:n1], geo)
            winograd.product_weights(du, z, v, g)
            if input_grad:
                dv = self._tiles(ctx, "dv", g, big, dtype)
                winograd.product_input(dv, z, u, g)
                winograd.transform_input_grad(dx[n0:n1], dv.reshape(-1), geo)
        winograd.weight_gradient(dw, du)
        return dx


@register
class FCLayer(_Weighted):
    """Fully connected: out[n, k] = sum_j w[k, j] * x[n].flat[j] + b[k], x flattened in
    (C, H, W) order (torch's nn.Linear after flatten). Output (N, K, 1, 1)."""

    type = "fc"

    def __init__(self, d):
        super().__init__(d)
        self.num_neurons = int(d["num_neurons"])
        self.fan_in = int(np.prod(self.in_shape))

    def weight_shape(self):
        return (self.num_neurons, self.fan_in)

    def forward(self, x, ctx):
        # x: (N, C, H, W) -> out: (N, K, 1, 1)
        w, b, dtype = self._weights()
        x = _batch(self, x, self.in_shape, "input", dtype)
        n = x.shape[0]
        out = ctx.workspace.empty(self, "out", (n, self.num_neurons, 1, 1), dtype)
        if b is None:
            b = ctx.workspace.zeros(self, "no_bias", (self.num_neurons,), dtype)
        x2 = x.reshape(n, self.fan_in)
        fc_kernels.fc_forward(out.reshape(n, self.num_neurons), x2, w, b)
        return out, (x2, w, dtype)

    def backward(self, dout, cache, grads, ctx):
        x2, w, dtype = cache
        n = x2.shape[0]
        dout = _checked(self, dout, (n, self.num_neurons, 1, 1), "dout", dtype)
        dout2 = dout.reshape(n, self.num_neurons)
        dw, db = self._grads(grads, dtype)
        if db is None:
            db = ctx.workspace.empty(self, "no_bias_grad", (0,), dtype)
        fc_kernels.fc_backward_weights(dw, db, dout2, x2)
        if self.first_weighted and not ctx.input_grad:
            return None
        dx = ctx.workspace.empty(self, "dx", (n,) + tuple(self.in_shape), dtype)
        fc_kernels.fc_backward_data(dx.reshape(n, self.fan_in), dout2, w)
        return dx
