"""A network: the layers a validated spec describes, run forward and backward in order.

The Net owns parameters (and batch-norm running statistics) only. Activations live in the
caller's Workspace, gradients in the caller's grads (see `new_grads`), so training and any
number of classify requests can share one Net's weights without touching each other's state.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import engine.layers  # noqa: F401  (registers layer types)
from engine.layers.base import Context, Layer, LossLayer
from engine.layers.core import build_layer
from engine.spec.net_spec import NetSpec

Grads = list[dict[str, np.ndarray]]  # one dict per top-level layer, keys as that layer's params


CLASSIFIER_GAIN = 0.01   # scores start ~10x smaller than their inputs (see _Weighted)


class Net:
    def __init__(self, spec: NetSpec, *, rng: np.random.Generator | None = None,
                 dtype=np.float32) -> None:
        self.spec = spec
        self.dtype = np.dtype(dtype)
        self.layers: list[Layer] = [build_layer(d) for d in spec.layers]
        if not isinstance(self.layers[-1], LossLayer):
            raise ValueError("the last layer of a net must be a loss layer")
        rng = rng if rng is not None else np.random.default_rng(0)
        classifier = self.layers[-2] if len(self.layers) > 1 else None
        if classifier is not None and classifier.type == "fc":
            classifier.init_gain = CLASSIFIER_GAIN
        for layer in self.layers:
            layer.init(rng, self.dtype)
        # The first layer with weights, when only parameter-free layers come before it: a
        # pass that needs no dL/dx stops its backward there (Context.input_grad).
        self.first_weighted = next(
            (i for i, layer in enumerate(self.layers) if layer.params), None)
        if self.first_weighted is not None and hasattr(self.layers[self.first_weighted],
                                                       "first_weighted"):
            self.layers[self.first_weighted].first_weighted = True
        else:
            self.first_weighted = None
        # Conv layers whose next layer is a relu: the two run as one pass (ConvLayer.
        # forward_relu), the relu's time then counting in the conv's.
        self.fused_relu = frozenset(
            i for i in range(len(self.layers) - 1)
            if self.layers[i].type == "conv" and self.layers[i + 1].type == "relu")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.layers[0].out_shape

    @property
    def loss_layer(self) -> LossLayer:
        return self.layers[-1]  # type: ignore[return-value]

    # --- parameters -----------------------------------------------------------------------
    def named_params(self):
        """[(name, array, (l1_mul, l2_mul))] with names "<layer index>.<param>"."""
        return [(f"{i}.{name}", arr, self.layers[i].decay.get(name, (0.0, 0.0)))
                for i in range(len(self.layers)) for name, arr in self.layers[i].params.items()]

    def named_buffers(self):
        return [(f"{i}.{name}", arr)
                for i in range(len(self.layers)) for name, arr in self.layers[i].buffers.items()]

    def copy_weights_from(self, other: Net) -> None:
        """Copy another net's parameters and batch-norm statistics into this one's arrays
        (in place: optimizers and blocks hold references to them). Same spec and dtype."""
        if other.spec != self.spec or other.dtype != self.dtype:
            raise ValueError("copy_weights_from needs a net with the same spec and dtype")
        for (_, dst, _), (_, src, _) in zip(self.named_params(), other.named_params()):
            np.copyto(dst, src)
        for (_, dst), (_, src) in zip(self.named_buffers(), other.named_buffers()):
            np.copyto(dst, src)

    def new_grads(self) -> Grads:
        return [{name: np.zeros_like(arr) for name, arr in layer.params.items()}
                for layer in self.layers]

    @staticmethod
    def zero_grads(grads: Grads) -> None:
        for layer_grads in grads:
            for g in layer_grads.values():
                g.fill(0)

    def named_grads(self, grads: Grads):
        """[(name, param, grad, (l1_mul, l2_mul))] aligned with named_params()."""
        return [(f"{i}.{name}", arr, grads[i][name], self.layers[i].decay.get(name, (0.0, 0.0)))
                for i in range(len(self.layers)) for name, arr in self.layers[i].params.items()]

    # --- passes ---------------------------------------------------------------------------
    def check_input(self, x: np.ndarray) -> np.ndarray:
        """Kernels check nothing, so the batch is checked here: shape, dtype, layout."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            c, h, w = self.input_shape
            raise ValueError(f"input batch must have shape (N, {c}, {h}, {w}), got {x.shape}")
        if x.shape[0] < 1:
            raise ValueError("input batch is empty")
        if x.dtype != self.dtype:
            raise ValueError(f"input batch must be {self.dtype}, got {x.dtype}")
        return np.ascontiguousarray(x)

    def forward(self, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, list[Any], list[np.ndarray]]:
        """x: (N, C, H, W) -> (output of the loss layer, caches, every layer's output).
        Outputs are Workspace buffers: copy what must outlive the next pass."""
        x = self.check_input(x)
        caches, outputs = [], []
        timings = ctx.timings
        fused = self.fused_relu
        for i, layer in enumerate(self.layers):
            if i - 1 in fused:
                continue  # this relu ran with the conv before it
            t0 = time.perf_counter()
            if i in fused:
                out, cache, x, relu_cache = layer.forward_relu(x, ctx, self.layers[i + 1])
                caches += [cache, relu_cache]
                outputs += [out, x]
            else:
                x, cache = layer.forward(x, ctx)
                caches.append(cache)
                outputs.append(x)
            if timings is not None:
                timings.append(("forward", i, time.perf_counter() - t0))
                if i in fused:
                    timings.append(("forward", i + 1, 0.0))
        return x, caches, outputs

    def predict(self, x: np.ndarray, ctx: Context | None = None) -> np.ndarray:
        """Evaluation-mode output of the loss layer (probabilities for softmax)."""
        ctx = ctx if ctx is not None else Context(training=False)
        out, _, _ = self.forward(x, ctx)
        return out

    def backward_stop(self, ctx: Context) -> int:
        """The last layer index a backward pass visits: 0, or the first weighted layer when
        nobody reads dL/d(net input) (it then skips its dx and nothing before it runs)."""
        return self.first_weighted if not ctx.input_grad and self.first_weighted else 0

    def backward(self, out: np.ndarray, caches: list[Any], y: np.ndarray, grads: Grads,
                 ctx: Context, *, keep_grads: bool = False
                 ) -> tuple[float, np.ndarray, list[np.ndarray] | None]:
        """Mean data loss, dL/dx (None when ctx.input_grad is False and the net could skip
        it), and (when keep_grads) copies of dL/d(every layer's output). Parameter gradients
        are ADDED into grads."""
        timings = ctx.timings
        t0 = time.perf_counter()
        loss, dout = self.loss_layer.loss(out, caches[-1], y, ctx)  # checks the labels
        if timings is not None:
            timings.append(("backward", len(self.layers) - 1, time.perf_counter() - t0))
        dx, output_grads = self.backward_from(dout, caches, grads, ctx, keep_grads=keep_grads)
        return float(loss), dx, output_grads

    def backward_from(self, dout: np.ndarray, caches: list[Any], grads: Grads, ctx: Context,
                      *, keep_grads: bool = False
                      ) -> tuple[np.ndarray | None, list[np.ndarray] | None]:
        """Backward from a given gradient of the layer below the loss (the scores): the pass
        `backward` makes after the loss layer, and what a saliency map needs (a one-hot on
        the top class's score). Returns dL/dx (None when ctx.input_grad is False and the net
        could skip it) and, when keep_grads, copies of dL/d(every layer's output) (the loss
        layer's entry stays None). Parameter gradients are ADDED into grads."""
        scores = tuple(self.layers[-2].out_shape)
        if dout.ndim != 4 or tuple(dout.shape[1:]) != scores:   # the batch: each layer's own
            raise ValueError(f"the gradient of the scores must have shape (N, "
                             f"{', '.join(map(str, scores))}), got {dout.shape}")
        timings = ctx.timings
        output_grads = [None] * len(self.layers) if keep_grads else None
        stop = self.backward_stop(ctx)
        # Fused backward (relu then conv, one pass) unless every layer's gradient is wanted:
        # the fused pass never makes the relu's dx.
        fused = self.fused_relu if output_grads is None else frozenset()
        i = len(self.layers) - 2
        while i >= stop:
            t0 = time.perf_counter()
            if i - 1 in fused and i - 1 >= stop:
                dout = self.layers[i - 1].backward_relu(dout, caches[i], caches[i - 1],
                                                        grads[i - 1], ctx)
                if timings is not None:
                    timings += [("backward", i, 0.0),
                                ("backward", i - 1, time.perf_counter() - t0)]
                i -= 2
                continue
            if output_grads is not None:
                output_grads[i] = dout.copy()
            dout = self.layers[i].backward(dout, caches[i], grads[i], ctx)
            if timings is not None:
                timings.append(("backward", i, time.perf_counter() - t0))
            i -= 1
        return dout, output_grads

    def loss_and_grads(self, x, y, grads: Grads, ctx: Context) -> tuple[float, np.ndarray]:
        """One training pass: forward, loss, backward (grads accumulate; zero them first)."""
        out, caches, _ = self.forward(x, ctx)
        loss, dx, _ = self.backward(out, caches, y, grads, ctx)
        return loss, out
