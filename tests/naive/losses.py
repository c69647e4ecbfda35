"""Plain NumPy references for engine/kernels/losses.py, in float64.
Each loss returns (per-example losses (N,), gradient of the mean loss (N, K))."""

import math

import numpy as np


def softmax(x):
    """x: (N, K) -> probabilities (N, K), max subtracted for stability."""
    probs = np.zeros(x.shape)
    for i in range(x.shape[0]):
        top = max(x[i])
        exps = [math.exp(v - top) for v in x[i]]
        probs[i] = [e / sum(exps) for e in exps]
    return probs


def softmax_cross_entropy(x, y, smoothing=0.0):
    """Cross-entropy against the target t = (1 - smoothing) * onehot(y) + smoothing / K:
    losses[i] = -sum_j t_j log p_j, dx = (p - t) / N."""
    n, k = x.shape
    losses, dx = np.zeros(n), np.zeros((n, k))
    probs = softmax(x)
    for i in range(n):
        top = max(x[i])
        log_total = math.log(sum(math.exp(v - top) for v in x[i])) + top
        for j in range(k):
            target = (1.0 - smoothing) * (1.0 if j == y[i] else 0.0) + smoothing / k
            losses[i] -= target * (x[i, j] - log_total)
            dx[i, j] = (probs[i, j] - target) / n
    return losses, dx


def svm(x, y):
    n, k = x.shape
    losses, dx = np.zeros(n), np.zeros((n, k))
    for i in range(n):
        for j in range(k):
            if j != y[i] and x[i, j] - x[i, y[i]] + 1 > 0:
                losses[i] += x[i, j] - x[i, y[i]] + 1
                dx[i, j] += 1.0 / n
                dx[i, y[i]] -= 1.0 / n
    return losses, dx


def regression(x, y):
    n, k = x.shape
    losses, dx = np.zeros(n), np.zeros((n, k))
    for i in range(n):
        for j in range(k):
            losses[i] += 0.5 * (x[i, j] - y[i, j]) ** 2
            dx[i, j] = (x[i, j] - y[i, j]) / n
    return losses, dx
