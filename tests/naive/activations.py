"""Plain loop references for engine/kernels/activations.py (slow, obviously correct)."""

import math

import numpy as np


def _map(f, *arrays):
    out = np.zeros_like(arrays[0])
    for i in np.ndindex(out.shape):
        out[i] = f(*(a[i] for a in arrays))
    return out


def relu_forward(x):
    return _map(lambda v: v if v > 0 else 0.0, x)


def relu_backward(x, dout):
    return _map(lambda v, g: g if v > 0 else 0.0, x, dout)


def leaky_relu_forward(x, alpha):
    return _map(lambda v: v if v > 0 else alpha * v, x)


def leaky_relu_backward(x, dout, alpha):
    return _map(lambda v, g: g if v > 0 else alpha * g, x, dout)


def gelu_forward(x):
    """The exact GELU as written: x * 0.5 * (1 + erf(x / sqrt 2))."""
    return _map(lambda v: v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))), x)


def gelu_backward(x, dout):
    return _map(lambda v, g: g * (0.5 * (1.0 + math.erf(v / math.sqrt(2.0)))
                                  + v * math.exp(-v * v / 2.0) / math.sqrt(2.0 * math.pi)),
                x, dout)


def sigmoid_forward(x):
    return _map(lambda v: 1.0 / (1.0 + math.exp(-v)) if v > -700 else 0.0, x)


def sigmoid_backward(x, dout):
    s = sigmoid_forward(x)
    return _map(lambda si, g: g * si * (1.0 - si), s, dout)


def tanh_forward(x):
    return _map(math.tanh, x)


def tanh_backward(x, dout):
    return _map(lambda v, g: g * (1.0 - math.tanh(v) ** 2), x, dout)


def maxout_forward(x, group_size):
    """out[n, k] = max over channels k*g .. k*g + g - 1; channels past (C // g) * g ignored."""
    n_img, channels, height, width = x.shape
    groups = channels // group_size
    out = np.zeros((n_img, groups, height, width), dtype=x.dtype)
    for n in range(n_img):
        for k in range(groups):
            for y in range(height):
                for xx in range(width):
                    out[n, k, y, xx] = max(x[n, k * group_size + j, y, xx]
                                           for j in range(group_size))
    return out


def maxout_backward(x, dout, group_size):
    """The gradient goes to the first channel of each group holding the maximum."""
    n_img, groups, height, width = dout.shape
    dx = np.zeros_like(x)
    for n in range(n_img):
        for k in range(groups):
            for y in range(height):
                for xx in range(width):
                    values = [x[n, k * group_size + j, y, xx] for j in range(group_size)]
                    j = values.index(max(values))
                    dx[n, k * group_size + j, y, xx] = dout[n, k, y, xx]
    return dx


def dropout_forward(x, mask):
    return _map(lambda v, m: v * m, x, mask)


def dropout_backward(dout, mask):
    return _map(lambda g, m: g * m, dout, mask)
