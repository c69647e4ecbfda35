"""Plain NumPy references for engine/kernels/norms.py: loops and textbook formulas, in float64."""

import numpy as np


def batchnorm_forward_train(x, gamma, beta, eps):
    """x: (N, C, H, W) -> out, x_hat (same shape), mean, biased var, inv_std (C,)."""
    n, c, h, w = x.shape
    x = x.astype(np.float64)
    out, x_hat = np.zeros_like(x), np.zeros_like(x)
    mean, var, inv_std = np.zeros(c), np.zeros(c), np.zeros(c)
    for ch in range(c):
        values = [x[i, ch, r, s] for i in range(n) for r in range(h) for s in range(w)]
        mean[ch] = sum(values) / len(values)
        var[ch] = sum((v - mean[ch]) ** 2 for v in values) / len(values)
        inv_std[ch] = 1.0 / np.sqrt(var[ch] + eps)
        for i in range(n):
            for r in range(h):
                for s in range(w):
                    x_hat[i, ch, r, s] = (x[i, ch, r, s] - mean[ch]) * inv_std[ch]
                    out[i, ch, r, s] = gamma[ch] * x_hat[i, ch, r, s] + beta[ch]
    return out, x_hat, mean, var, inv_std


def batchnorm_backward_train(dout, x, gamma, eps):
    """The chain rule through mean and variance step by step (no compact formula).
    Returns dx, dgamma, dbeta."""
    n, c, h, w = x.shape
    m = n * h * w
    dx = np.zeros(x.shape)
    dgamma, dbeta = np.zeros(c), np.zeros(c)
    for ch in range(c):
        xc = x[:, ch].astype(np.float64)
        dc = dout[:, ch].astype(np.float64)
        mu = xc.sum() / m
        var = ((xc - mu) ** 2).sum() / m
        std_inv = 1.0 / np.sqrt(var + eps)
        x_hat = (xc - mu) * std_inv
        dgamma[ch] = (dc * x_hat).sum()
        dbeta[ch] = dc.sum()
        dx_hat = dc * gamma[ch]
        dvar = (dx_hat * (xc - mu)).sum() * -0.5 * std_inv ** 3
        dmu = (-dx_hat * std_inv).sum() + dvar * (-2.0 * (xc - mu)).sum() / m
        dx[:, ch] = dx_hat * std_inv + dvar * 2.0 * (xc - mu) / m + dmu / m
    return dx, dgamma, dbeta


def batchnorm_forward_eval(x, running_mean, running_var, gamma, beta, eps):
    n, c, h, w = x.shape
    out = np.zeros(x.shape)
    for i in range(n):
        for ch in range(c):
            for r in range(h):
                for s in range(w):
                    x_hat = (x[i, ch, r, s] - running_mean[ch]) / np.sqrt(running_var[ch] + eps)
                    out[i, ch, r, s] = gamma[ch] * x_hat + beta[ch]
    return out


def batchnorm_backward_eval(dout, x, running_mean, running_var, gamma, eps):
    """Returns dx, dgamma, dbeta with the running statistics held constant."""
    inv_std = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
    x_hat = (x - running_mean[None, :, None, None]) * inv_std[None, :, None, None]
    dx = dout * (gamma * inv_std)[None, :, None, None]
    return dx, (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))


def lrn_window(c, channels, size):
    return range(max(0, c - size // 2), min(channels - 1, c + size // 2) + 1)


def lrn_forward(x, size, k, alpha, beta):
    """x: (N, C, H, W) -> out, scale, with scale = k + alpha/size * sum of squares in window."""
    n, channels, h, w = x.shape
    out, scale = np.zeros(x.shape), np.zeros(x.shape)
    for i in range(n):
        for c in range(channels):
            for r in range(h):
                for s in range(w):
                    total = sum(float(x[i, j, r, s]) ** 2 for j in lrn_window(c, channels, size))
                    scale[i, c, r, s] = k + alpha / size * total
                    out[i, c, r, s] = x[i, c, r, s] / scale[i, c, r, s] ** beta
    return out, scale


def lrn_backward(dout, x, size, k, alpha, beta):
    """dx by differentiating out[c] = x[c] * scale[c]^-beta with respect to every x[i]."""
    n, channels, h, w = x.shape
    _, scale = lrn_forward(x, size, k, alpha, beta)
    dx = np.zeros(x.shape)
    for b in range(n):
        for r in range(h):
            for s in range(w):
                for c in range(channels):
                    sc = scale[b, c, r, s]
                    for i in lrn_window(c, channels, size):
                        # d out[c] / d x[i]
                        d = (-beta * x[b, c, r, s] * sc ** (-beta - 1)
                             * alpha / size * 2 * x[b, i, r, s])
                        if i == c:
                            d += sc ** -beta
                        dx[b, i, r, s] += dout[b, c, r, s] * d
    return dx
