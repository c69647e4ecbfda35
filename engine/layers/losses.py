"""Loss layers: softmax (cross-entropy), svm (multiclass hinge) and regression (L2).

Each takes scores (N, K, 1, 1) (any (N, C, H, W) is read as K = C*H*W scores, as ConvNetJS
flattens), and `loss` returns the mean loss over the batch and its gradient, shaped like the
input. Labels and targets are checked here in Python: the kernels index with them unchecked.
"""

from __future__ import annotations

import numpy as np

from engine.kernels.losses import regression_loss, softmax_cross_entropy, softmax_forward, svm_loss
from engine.layers.base import LossLayer, register


def check_labels(y, n: int, classes: int) -> np.ndarray:
    """Class labels as contiguous int64 (n,), each in 0..classes-1, or ValueError."""
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"expected {n} labels (shape ({n},)), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= classes:
        raise ValueError(f"labels must lie in 0..{classes - 1}, got values from "
                         f"{y.min()} to {y.max()}")
    return np.ascontiguousarray(y, dtype=np.int64)


def check_targets(y, n: int, k: int, dtype) -> np.ndarray:
    """Regression targets as contiguous (n, k) of the scores' dtype, all finite, or ValueError."""
    y = np.asarray(y)
    if y.shape != (n, k):
        raise ValueError(f"regression targets must have shape ({n}, {k}), got {y.shape}")
    if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
        raise ValueError(f"regression targets must be numbers, got dtype {y.dtype}")
    y = np.ascontiguousarray(y, dtype=dtype)
    if not np.isfinite(y).all():
        raise ValueError("regression targets must be finite (found NaN or infinity)")
    return y


class _ScoreLoss(LossLayer):
    """Shared plumbing: validate, lay out buffers, call `kernel(dx, losses, x, ...)`."""

    def _scores(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) -> contiguous (N, C*H*W); the shape is checked (kernels check none)."""
        if x.ndim != 4 or x.shape[0] < 1 or tuple(x.shape[1:]) != self.in_shape:
            c, h, w = self.in_shape
            raise ValueError(f"{self.type} expects a non-empty batch of shape "
                             f"(N, {c}, {h}, {w}), got {x.shape}")
        return np.ascontiguousarray(x).reshape(x.shape[0], -1)

    def _buffers(self, x2d, ctx):
        n = x2d.shape[0]
        dx = ctx.workspace.empty(self, "dx", (n,) + self.in_shape, x2d.dtype)
        losses = ctx.workspace.empty(self, "losses", (n,), x2d.dtype)
        return dx, dx.reshape(x2d.shape), losses

    def forward(self, x, ctx):
        # x: (N, K, 1, 1) -> the scores themselves (no copy; layers never write their input)
        return x, self._scores(x)

    def backward(self, dout, cache, grads, ctx):
        raise TypeError(f"{self.type} is a loss layer: call loss(), not backward()")


@register
class SoftmaxLayer(_ScoreLoss):
    """Probabilities softmax(x); loss = mean over the batch of -sum_k t_k log p_k with the
    target t = (1 - eps) * onehot(label) + eps / K (eps: label_smoothing, PyTorch's meaning;
    eps = 0 is -log p[label]). The smoothing shapes training only: the probabilities are the
    same with or without it."""

    type = "softmax"

    def __init__(self, d):
        super().__init__(d)
        # Defs from the spec parser always carry it; a hand-made def without it means 0.
        self.label_smoothing = float(d.get("label_smoothing", 0.0))

    def forward(self, x, ctx):
        # x: (N, K, 1, 1) -> probabilities (N, K, 1, 1)
        x2d = self._scores(x)
        probs = ctx.workspace.empty(self, "out", (x2d.shape[0],) + self.in_shape, x2d.dtype)
        softmax_forward(probs.reshape(x2d.shape), x2d)
        return probs, x2d

    def loss(self, out, cache, y, ctx):
        x2d = cache
        y = check_labels(y, x2d.shape[0], x2d.shape[1])
        probs2d = np.ascontiguousarray(out).reshape(x2d.shape)
        dx, dx2d, losses = self._buffers(x2d, ctx)
        softmax_cross_entropy(dx2d, losses, x2d, probs2d, y,
                              x2d.dtype.type(self.label_smoothing))
        return float(losses.mean(dtype=np.float64)), dx


@register
class SVMLayer(_ScoreLoss):
    """Scores pass through; loss = mean over the batch of sum_{j != y} max(0, s_j - s_y + 1)."""

    type = "svm"

    def loss(self, out, cache, y, ctx):
        x2d = cache
        y = check_labels(y, x2d.shape[0], x2d.shape[1])
        dx, dx2d, losses = self._buffers(x2d, ctx)
        svm_loss(dx2d, losses, x2d, y)
        return float(losses.mean(dtype=np.float64)), dx


@register
class RegressionLayer(_ScoreLoss):
    """Values pass through; loss = mean over the batch of 0.5 * sum_j (x_j - y_j)^2."""

    type = "regression"

    def loss(self, out, cache, y, ctx):
        x2d = cache
        y = check_targets(y, x2d.shape[0], x2d.shape[1], x2d.dtype)
        dx, dx2d, losses = self._buffers(x2d, ctx)
        regression_loss(dx2d, losses, x2d, y)
        return float(losses.mean(dtype=np.float64)), dx
