"""Loss kernels: softmax with cross-entropy, multiclass SVM (hinge) and L2 regression.

Scores arrive as contiguous (N, K) arrays. Each loss writes the per-example losses (N,) and
the gradient of the MEAN loss over the batch (hence the 1/N in every gradient). Labels are
int64 in 0..K-1 and targets are (N, K): the layer checks them, the kernels trust them.
These are serial on purpose: (N, K) is tiny and a parallel region would cost more than it saves.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def softmax_forward(probs, x):
    # x, probs: (N, K).  probs[i] = exp(x[i] - max x[i]) / sum(...): stable for huge logits.
    n_batch, classes = x.shape
    for i in range(n_batch):
        top = x[i, 0]
        for j in range(1, classes):
            top = max(top, x[i, j])
        total = x.dtype.type(0)
        for j in range(classes):
            e = np.exp(x[i, j] - top)
            probs[i, j] = e
            total += e
        for j in range(classes):
            probs[i, j] /= total


@njit(cache=True, nogil=True, error_model="numpy")
def softmax_cross_entropy(dx, losses, x, probs, y, smoothing):
    # x, probs (from softmax_forward), dx: (N, K); y: (N,) int64; losses: (N,);
    # smoothing: eps in [0, 1), the target is t = (1 - eps) * onehot(y) + eps / K (PyTorch's
    # label_smoothing). With lse = logsumexp(x[i]), losses[i] = -sum_k t_k log softmax(x[i])_k
    #   = (1 - eps) * (lse - x[i, y[i]]) + eps / K * sum_k (lse - x[i, k]):
    # from the scores, not log(probs), so a probability that underflows to 0 still gives a
    # finite loss, and every term is >= 0 (no cancellation). dx = (probs - t) / N.
    # eps = 0 skips the smoothing terms, so the values are exactly the unsmoothed ones.
    n_batch, classes = x.shape
    inv_n = dx.dtype.type(1.0 / n_batch)
    eps = x.dtype.type(smoothing)
    on = x.dtype.type(1) - eps
    off = eps / x.dtype.type(classes)
    on_n, off_n = on * inv_n, off * inv_n
    for i in range(n_batch):
        top = x[i, 0]
        for j in range(1, classes):
            top = max(top, x[i, j])
        total = x.dtype.type(0)
        for j in range(classes):
            total += np.exp(x[i, j] - top)
        label = y[i]
        lse = np.log(total) + top
        if eps > 0:
            spread = x.dtype.type(0)
            for j in range(classes):
                spread += lse - x[i, j]
            losses[i] = on * (lse - x[i, label]) + off * spread
            for j in range(classes):
                dx[i, j] = probs[i, j] * inv_n - off_n
            dx[i, label] -= on_n
        else:
            losses[i] = lse - x[i, label]
            for j in range(classes):
                dx[i, j] = probs[i, j] * inv_n
            dx[i, label] -= inv_n


@njit(cache=True, nogil=True, error_model="numpy")
def svm_loss(dx, losses, x, y):
    # x, dx: (N, K); y: (N,) int64; losses: (N,)
    # losses[i] = sum over j != y[i] of max(0, x[i, j] - x[i, y[i]] + 1)  (ConvNetJS, margin 1);
    # each violated margin adds 1/N to dx[i, j] and takes 1/N from dx[i, y[i]].
    n_batch, classes = x.shape
    inv_n = dx.dtype.type(1.0 / n_batch)
    one = x.dtype.type(1)
    for i in range(n_batch):
        label = y[i]
        correct = x[i, label]
        loss = x.dtype.type(0)
        for j in range(classes):
            dx[i, j] = 0
        for j in range(classes):
            if j == label:
                continue
            margin = x[i, j] - correct + one
            if margin > 0:
                loss += margin
                dx[i, j] += inv_n
                dx[i, label] -= inv_n
        losses[i] = loss


@njit(cache=True, nogil=True, error_model="numpy")
def regression_loss(dx, losses, x, y):
    # x, y (targets), dx: (N, K); losses: (N,)
    # losses[i] = 0.5 * sum_j (x[i, j] - y[i, j])^2;  dx = (x - y) / N.
    n_batch, classes = x.shape
    inv_n = dx.dtype.type(1.0 / n_batch)
    half = x.dtype.type(0.5)
    for i in range(n_batch):
        loss = x.dtype.type(0)
        for j in range(classes):
            d = x[i, j] - y[i, j]
            loss += d * d
            dx[i, j] = d * inv_n
        losses[i] = half * loss
