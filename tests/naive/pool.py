"""Plain loop references for engine/kernels/pool.py (slow, obviously correct).

Windows start at o * stride - pad and are clipped to the input: padded positions are ignored.
"""

import numpy as np


def out_size(size, window, stride, pad):
    return (size - window + 2 * pad) // stride + 1


def _windows(height, width, sy, sx, stride_y, stride_x, pad_y, pad_x):
    """Yield (oy, ox, y_lo, y_hi, x_lo, x_hi) for every output position."""
    for oy in range(out_size(height, sy, stride_y, pad_y)):
        for ox in range(out_size(width, sx, stride_x, pad_x)):
            y0, x0 = oy * stride_y - pad_y, ox * stride_x - pad_x
            yield oy, ox, max(y0, 0), min(y0 + sy, height), max(x0, 0), min(x0 + sx, width)


def _out(x, sy, sx, stride_y, stride_x, pad_y, pad_x):
    n, c, h, w = x.shape
    return np.zeros((n, c, out_size(h, sy, stride_y, pad_y), out_size(w, sx, stride_x, pad_x)),
                    dtype=x.dtype)


def max_pool_forward(x, sy, sx, stride_y, stride_x, pad_y, pad_x):
    out = _out(x, sy, sx, stride_y, stride_x, pad_y, pad_x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for oy, ox, y_lo, y_hi, x_lo, x_hi in _windows(*x.shape[2:], sy, sx, stride_y,
                                                          stride_x, pad_y, pad_x):
                window = x[n, c, y_lo:y_hi, x_lo:x_hi]
                out[n, c, oy, ox] = window.max() if window.size else 0
    return out


def max_pool_backward(x, dout, sy, sx, stride_y, stride_x, pad_y, pad_x):
    """The gradient goes to the first maximum of each window."""
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for oy, ox, y_lo, y_hi, x_lo, x_hi in _windows(*x.shape[2:], sy, sx, stride_y,
                                                          stride_x, pad_y, pad_x):
                window = x[n, c, y_lo:y_hi, x_lo:x_hi]
                if window.size:
                    iy, ix = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, y_lo + iy, x_lo + ix] += dout[n, c, oy, ox]
    return dx


def avg_pool_forward(x, sy, sx, stride_y, stride_x, pad_y, pad_x):
    out = _out(x, sy, sx, stride_y, stride_x, pad_y, pad_x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for oy, ox, y_lo, y_hi, x_lo, x_hi in _windows(*x.shape[2:], sy, sx, stride_y,
                                                          stride_x, pad_y, pad_x):
                window = x[n, c, y_lo:y_hi, x_lo:x_hi]
                out[n, c, oy, ox] = window.mean() if window.size else 0
    return out


def avg_pool_backward(x, dout, sy, sx, stride_y, stride_x, pad_y, pad_x):
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for oy, ox, y_lo, y_hi, x_lo, x_hi in _windows(*x.shape[2:], sy, sx, stride_y,
                                                          stride_x, pad_y, pad_x):
                count = (y_hi - y_lo) * (x_hi - x_lo)
                if count > 0:
                    dx[n, c, y_lo:y_hi, x_lo:x_hi] += dout[n, c, oy, ox] / count
    return dx


def global_avg_pool_forward(x):
    out = np.zeros(x.shape[:2] + (1, 1), dtype=x.dtype)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[n, c, 0, 0] = x[n, c].mean()
    return out


def global_avg_pool_backward(x, dout):
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            dx[n, c] = dout[n, c, 0, 0] / (x.shape[2] * x.shape[3])
    return dx
