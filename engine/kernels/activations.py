"""Activation kernels (relu, leaky relu, gelu, sigmoid, tanh, maxout) and dropout's mask
multiply.

The elementwise kernels take flat 1-D views of C-contiguous arrays (the layer reshapes, which
costs no copy): one long unit-stride loop is what LLVM vectorises, and a parallel loop over
the flat index splits it into one contiguous chunk per thread, so a batch of one image still
uses both cores. Each iteration writes only its own element. Constants take the array's dtype
(`x.dtype.type(...)`) so float32 arithmetic stays float32; scalars such as alpha arrive
already cast to that dtype.
"""

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def relu_forward(out, x):
    # x: (M,) -> out: (M,), max(x, 0); a NaN passes through (x < 0 is false), as in torch.
    zero = x.dtype.type(0)
    for i in prange(x.size):
        v = x[i]
        out[i] = zero if v < zero else v


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def relu_backward(dx, dout, x):
    # dout, x: (M,) -> dx: (M,); the gradient flows where the input was positive.
    zero = dout.dtype.type(0)
    for i in prange(x.size):
        dx[i] = dout[i] if x[i] > 0 else zero


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def leaky_relu_forward(out, x, alpha):
    # x: (M,) -> out: (M,), x where x > 0 else alpha * x.
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > 0 else alpha * v


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def leaky_relu_backward(dx, dout, x, alpha):
    # dout, x: (M,) -> dx: (M,)
    for i in prange(x.size):
        g = dout[i]
        dx[i] = g if x[i] > 0 else alpha * g


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def gelu_forward(out, x):
    # x: (M,) -> out: (M,), x * Phi(x) = x * 0.5 * (1 + erf(x / sqrt 2)): the exact GELU
    # (torch's approximate='none'), written as 0.5 * x * erfc(-x / sqrt 2), the same value:
    # for x < 0, 1 + erf cancels to multiples of 2^-24 in float32 (10% off at x = -5), erfc
    # keeps every digit.
    half = x.dtype.type(0.5)
    minus_rsqrt2 = x.dtype.type(-1.0 / math.sqrt(2.0))
    for i in prange(x.size):
        v = x[i]
        out[i] = half * v * math.erfc(v * minus_rsqrt2)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def gelu_backward(dx, dout, x):
    # dout, x: (M,) -> dx: (M,), GELU'(x) = Phi(x) + x * exp(-x^2 / 2) / sqrt(2 pi).
    half = x.dtype.type(0.5)
    minus_rsqrt2 = x.dtype.type(-1.0 / math.sqrt(2.0))
    rsqrt_2pi = x.dtype.type(1.0 / math.sqrt(2.0 * math.pi))
    for i in prange(x.size):
        v = x[i]
        cdf = half * math.erfc(v * minus_rsqrt2)
        pdf = rsqrt_2pi * np.exp(-half * v * v)
        dx[i] = dout[i] * (cdf + v * pdf)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def sigmoid_forward(out, x):
    # x: (M,) -> out: (M,), 1 / (1 + exp(-x)); exp overflowing to inf gives exactly 0.
    one = x.dtype.type(1)
    for i in prange(x.size):
        out[i] = one / (one + np.exp(-x[i]))


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def sigmoid_backward(dx, dout, out):
    # dout, out: (M,) -> dx: (M,), written through the forward output: s' = s * (1 - s).
    one = out.dtype.type(1)
    for i in prange(out.size):
        s = out[i]
        dx[i] = dout[i] * s * (one - s)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def tanh_forward(out, x):
    # x: (M,) -> out: (M,). Through one exp of -2|x| (never overflows): libm's tanhf ran 6x
    # slower here. Absolute error ~1e-7 in float32, which is what an activation needs.
    one = x.dtype.type(1)
    two = x.dtype.type(2)
    for i in prange(x.size):
        v = x[i]
        e = np.exp(-two * abs(v))
        t = (one - e) / (one + e)
        out[i] = t if v >= 0 else -t


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def tanh_backward(dx, dout, out):
    # dout, out: (M,) -> dx: (M,), through the forward output: tanh' = 1 - tanh^2.
    one = out.dtype.type(1)
    for i in prange(out.size):
        t = out[i]
        dx[i] = dout[i] * (one - t * t)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def maxout_forward(out, argmax, x, group_size):
    # x: (N, C, H, W) -> out, argmax: (N, K, H, W) with K = C // g (int32 argmax), where
    # out[n, k] = max over channels k*g .. k*g + g - 1 and argmax says which one (0 .. g-1).
    # Channels past K*g are ignored, as ConvNetJS floors C / g.
    n_img, channels, height, width = x.shape
    groups = out.shape[1]
    area = height * width
    x_rows = x.reshape((n_img, channels, area))
    out_rows = out.reshape((n_img, groups, area))
    arg_rows = argmax.reshape((n_img, groups, area))
    for plane in prange(n_img * groups):
        n = plane // groups
        k = plane - n * groups
        best = out_rows[n, k]
        best_at = arg_rows[n, k]
        first = x_rows[n, k * group_size]
        for i in range(area):
            best[i] = first[i]
            best_at[i] = 0
        for j in range(1, group_size):
            cand = x_rows[n, k * group_size + j]
            for i in range(area):
                v = cand[i]
                if v > best[i] or v != v:  # a NaN wins, as in max pooling
                    best[i] = v
                    best_at[i] = j


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def maxout_backward(dx, dout, argmax, group_size):
    # dout, argmax: (N, K, H, W) -> dx: (N, C, H, W), fully overwritten: each output's
    # gradient goes to the one channel of its group that won; ignored channels get 0.
    n_img, channels, height, width = dx.shape
    groups = dout.shape[1]
    area = height * width
    dx_rows = dx.reshape((n_img, channels, area))
    dout_rows = dout.reshape((n_img, groups, area))
    arg_rows = argmax.reshape((n_img, groups, area))
    zero = dx.dtype.type(0)
    for plane in prange(n_img * groups):
        n = plane // groups
        k = plane - n * groups
        g = dout_rows[n, k]
        won = arg_rows[n, k]
        for j in range(group_size):
            target = dx_rows[n, k * group_size + j]
            for i in range(area):
                target[i] = g[i] if won[i] == j else zero
        if k == groups - 1:  # this iteration also owns the ignored tail channels of image n
            for c in range(groups * group_size, channels):
                tail = dx_rows[n, c]
                for i in range(area):
                    tail[i] = zero


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def dropout_forward(out, x, mask):
    # x, mask: (M,) -> out: (M,). mask holds 0 (dropped) or 1 / (1 - p) (kept): inverted
    # dropout, so evaluation needs no rescaling. The layer draws the mask with ctx.rng.
    for i in prange(x.size):
        out[i] = x[i] * mask[i]


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def dropout_backward(dx, dout, mask):
    # dout, mask: (M,) -> dx: (M,), the same mask as the forward pass.
    for i in prange(dout.size):
        dx[i] = dout[i] * mask[i]
