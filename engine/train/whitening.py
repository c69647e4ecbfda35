"""Patch-whitening init for a net's first conv (airbench94's init_whiten).

A conv right after the input, with stride 1, no padding, a small sx x sy filter and exactly
2 * C * sx * sy filters (the spec checks all this for "init": "whiten"), is set from the data
when training starts:

- take WHITEN_IMAGES training images, normalised as the trainer feeds them (no augmentation);
- every sx x sy patch of them is a vector p of length K = C * sx * sy, ordered as a filter is,
  (c, y, x); their second moment S = mean(p p^T) (the inputs are normalised to mean 0 per
  channel, so this is their covariance about 0, as airbench94 computes it);
- S = V diag(lambda) V^T; filter k (k < K, largest eigenvalue first) is v_k / sqrt(lambda_k +
  eps), filter K + k its negative, the bias 0.

The first K outputs on those patches then have the second moment diag(lambda / (lambda + eps)):
the identity, but for directions with almost no variance, which eps keeps from being blown up
into noise. The +/- pair lets a following relu or gelu keep both signs of each direction.

The weights stay as the data set them: the optimizer leaves them alone (Optimizer(frozen=...),
see engine/train/param_groups.py); the bias trains, for the first "bias_epochs" epochs when
the spec gives that key (airbench94: 3), else throughout.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine.data.normalize import Normalization, preprocess
from engine.train.options import TrainError

WHITEN_IMAGES = 5000
WHITEN_EPS = 5e-4        # airbench94's: about 1/1000 of the largest eigenvalue on CIFAR-10
CHUNK_IMAGES = 250       # images whose patches are held at once (float64: 23 MB for 2x2x3)


def whitened_layer(spec) -> int | None:
    """The index of the conv with "init": "whiten" (the spec allows it only at index 1)."""
    for i, d in enumerate(spec.layers):
        if d["type"] == "conv" and d.get("init") == "whiten":
            return i
    return None


def whitened_weights(net) -> tuple[str, ...]:
    """The parameter names the optimizer must leave alone: the whitening conv's weights."""
    i = whitened_layer(net.spec)
    return () if i is None else (f"{i}.w",)


def patch_second_moment(images: np.ndarray, sy: int, sx: int) -> tuple[np.ndarray, int]:
    """(sum of p p^T over every sy x sy patch p of float (N, C, H, W) images, in float64;
    the number of patches). Patches are ordered as conv weights are: (c, y, x)."""
    n, c, h, w = images.shape
    windows = sliding_window_view(images.astype(np.float64, copy=False), (sy, sx), axis=(2, 3))
    # (N, C, H', W', sy, sx) -> (N, H', W', C, sy, sx): one row per patch
    patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(-1, c * sy * sx)
    return patches.T @ patches, patches.shape[0]


def whitening_filters(second_moment: np.ndarray, eps: float = WHITEN_EPS
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(filters (2K, K), eigenvalues (K,), largest first) from a K x K second moment."""
    eigenvalues, eigenvectors = np.linalg.eigh(second_moment)
    eigenvalues = np.maximum(eigenvalues[::-1], 0.0)    # rounding can make ~0 slightly < 0
    scaled = eigenvectors[:, ::-1].T / np.sqrt(eigenvalues + eps)[:, None]
    return np.concatenate([scaled, -scaled]), eigenvalues


def sample_positions(n_images: int, count: int = WHITEN_IMAGES, seed: int = 0) -> np.ndarray:
    """Which training images the whitening looks at: `count` of them, a seeded draw, sorted
    (splits are grouped by class: the first `count` would see only a few classes)."""
    count = min(count, n_images)
    return np.sort(np.random.default_rng(seed).permutation(n_images)[:count])


def whiten_first_conv(net, split, normalization: Normalization, *, seed: int = 0,
                      count: int = WHITEN_IMAGES, eps: float = WHITEN_EPS) -> np.ndarray | None:
    """Set the net's whitening conv (if it has one) from `split`'s images; returns the
    eigenvalues (largest first), or None when the net has no whitening conv."""
    i = whitened_layer(net.spec)
    if i is None:
        return None
    if len(split) == 0:
        raise TrainError("the whitening init (\"init\": \"whiten\") needs training images; "
                         "the training split is empty", "init")
    d = net.spec.layers[i]
    c, sy, sx = d["in_shape"][0], d["sy"], d["sx"]
    k = c * sy * sx
    total = np.zeros((k, k))
    patches = 0
    positions = sample_positions(len(split), count, seed)
    for start in range(0, len(positions), CHUNK_IMAGES):
        x = preprocess(split.take(positions[start:start + CHUNK_IMAGES]), normalization)
        part, n = patch_second_moment(x, sy, sx)
        total += part
        patches += n
    filters, eigenvalues = whitening_filters(total / patches, eps)
    layer = net.layers[i]
    w = layer.params["w"]
    np.copyto(w, filters.reshape(w.shape).astype(w.dtype))
    if "b" in layer.params:
        layer.params["b"].fill(0)
    return eigenvalues
