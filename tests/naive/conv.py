"""Plain NumPy loop references for convolution and fully-connected layers (no cleverness)."""

import numpy as np


def conv_forward(x, w, b, stride_y, stride_x, pad_y, pad_x):
    # x: (N, C, H, W), w: (F, C, sy, sx), b: (F,) or None -> (N, F, Ho, Wo)
    n_img, _, height, width = x.shape
    n_f, _, sy, sx = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad_y, pad_y), (pad_x, pad_x)))
    out_h = (height + 2 * pad_y - sy) // stride_y + 1
    out_w = (width + 2 * pad_x - sx) // stride_x + 1
    out = np.zeros((n_img, n_f, out_h, out_w), dtype=np.float64)
    for n in range(n_img):
        for f in range(n_f):
            for oy in range(out_h):
                for ox in range(out_w):
                    y, x0 = oy * stride_y, ox * stride_x
                    out[n, f, oy, ox] = np.sum(xp[n, :, y:y + sy, x0:x0 + sx] * w[f])
            if b is not None:
                out[n, f] += b[f]
    return out


def conv_backward(dout, x, w, stride_y, stride_x, pad_y, pad_x):
    # dout: (N, F, Ho, Wo) -> (dx, dw, db) of the forward above, by scattering each output.
    n_img, _, height, width = x.shape
    _, _, sy, sx = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad_y, pad_y), (pad_x, pad_x))).astype(np.float64)
    dxp = np.zeros_like(xp)
    dw = np.zeros(w.shape, dtype=np.float64)
    for n in range(n_img):
        for f in range(dout.shape[1]):
            for oy in range(dout.shape[2]):
                for ox in range(dout.shape[3]):
                    y, x0 = oy * stride_y, ox * stride_x
                    g = dout[n, f, oy, ox]
                    dxp[n, :, y:y + sy, x0:x0 + sx] += g * w[f]
                    dw[f] += g * xp[n, :, y:y + sy, x0:x0 + sx]
    dx = dxp[:, :, pad_y:pad_y + height, pad_x:pad_x + width]
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db


def fc_forward(x, w, b):
    # x: (N, D) flattened input, w: (K, D), b: (K,) or None -> (N, K)
    out = np.zeros((x.shape[0], w.shape[0]), dtype=np.float64)
    for n in range(x.shape[0]):
        for k in range(w.shape[0]):
            out[n, k] = np.sum(x[n] * w[k]) + (b[k] if b is not None else 0.0)
    return out


def fc_backward(dout, x, w):
    # dout: (N, K) -> (dx (N, D), dw (K, D), db (K,))
    dx = np.zeros(x.shape, dtype=np.float64)
    dw = np.zeros(w.shape, dtype=np.float64)
    for n in range(x.shape[0]):
        for k in range(w.shape[0]):
            dx[n] += dout[n, k] * w[k]
            dw[k] += dout[n, k] * x[n]
    return dx, dw, dout.sum(axis=0)
