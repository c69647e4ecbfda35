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
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload


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


# --- GELU ------------------------------------------------------------------------------------
# libm's erfc is one opaque call per value, so a loop over it never vectorises (it ran 25x
# slower than torch). In float32 the kernels below compute the normal CDF and density from
# plain arithmetic that LLVM turns into vector code, with an exp of our own (below):
#   erfc(z) = t * Q(t) * exp(-z^2),  t = 1 / (1 + z / 2),
# Q a degree-8 polynomial fitted (weighted least squares, relative error, float64 against a
# 30-digit reference) to erfc(z) exp(z^2) / t, which is smooth on t in (0, 1]: fractional
# error 5e-8 for 0 <= z <= 10.5 (t >= 0.16), about 2e-7 once evaluated in float32. Beyond
# z = 9.3 exp(-z^2) is below float32's normal range and the kernels give 0. The backward pass
# shares exp(-z^2) = exp(-x^2 / 2) between Phi and the density. A fractional erfc keeps the
# negative tail's digits, where 1 + erf(x / sqrt 2) would cancel to multiples of 2^-24.
# float64 keeps libm's erfc and exp: it is the reference precision (tests, gradient checks),
# not the fast path.

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693145751953125          # ln 2 split in two so that n * _LN2_HI is exact in float32
_LN2_LO = 1.4286067653302226e-06
_EXP_FLOOR = -87.0                   # exp(-87) = 1.6e-38, still a normal float32
_EXP_CEILING = 88.0                  # exp(88) = 1.7e38; float32 overflows past 88.72
_RSQRT2 = 0.7071067811865476
_RSQRT_2PI = 0.3989422804014327


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose IEEE bits are the int32 `bits` (a free register move)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@njit(inline="always", error_model="numpy", fastmath={"contract"})
def _exp_float32_core(y):
    # exp(y) for float32 y <= 88 (NaN gives 0), as 2^n * exp(r) with n = round(y / ln 2) and
    # |r| <= ln2 / 2: a degree-7 Taylor series gives exp(r) to 5e-9, 2^n is built from its
    # exponent bits. Below _EXP_FLOOR the result is 0 (the true value is below 1.7e-38).
    # GELU calls it directly (its arguments are <= 0 and a NaN input reaches the output
    # through its other terms): the checks of _exp_float32 cost it 12%.
    one = np.float32(1.0)
    clamped = max(y, np.float32(_EXP_FLOOR))
    n = np.floor(clamped * np.float32(_LOG2E) + np.float32(0.5))
    r = (clamped - n * np.float32(_LN2_HI)) - n * np.float32(_LN2_LO)
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + one
    p = p * r + one
    scale = _float32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))
    return p * scale if y >= np.float32(_EXP_FLOOR) else np.float32(0.0)


@njit(inline="always", error_model="numpy", fastmath={"contract"})
def _exp_float32(y):
    # exp(y) for any float32 y: inf above _EXP_CEILING (the true value overflows past 88.72),
    # NaN for NaN.
    inside = _exp_float32_core(min(y, np.float32(_EXP_CEILING)))
    if y > np.float32(_EXP_CEILING):
        return np.float32(np.inf)
    return inside if y == y else y


def _exp(v):
    """exp(v) for a float: _exp_float32 in float32 (vectorises), libm in float64."""
    raise NotImplementedError("called only from compiled kernels")


@overload(_exp, inline="always")
def _exp_for(v):
    if v == types.float32:
        return lambda v: _exp_float32(v)
    return lambda v: np.exp(v)


@njit(inline="always", error_model="numpy", fastmath={"contract"})
def _erfc_over_gauss_float32(z):
    # erfc(z) / exp(-z^2) = t * Q(t) for float32 z >= 0, to a few parts in 1e7.
    one = np.float32(1.0)
    t = one / (one + np.float32(0.5) * z)
    q = np.float32(-0.05900335971809539)
    q = q * t + np.float32(0.28429007714316634)
    q = q * t + np.float32(-0.4866898573424039)
    q = q * t + np.float32(0.27758357185283167)
    q = q * t + np.float32(-0.02636749672235924)
    q = q * t + np.float32(0.2026119250371661)
    q = q * t + np.float32(0.24311344346986474)
    q = q * t + np.float32(0.28237531490336676)
    q = q * t + np.float32(0.2820863393200875)
    return t * q


def _normal_cdf_and_pdf(v):
    """(Phi(v), phi(v)) for a float: the fast arithmetic above in float32, libm in float64."""
    raise NotImplementedError("called only from compiled kernels")


@overload(_normal_cdf_and_pdf, inline="always")
def _normal_cdf_and_pdf_for(v):
    if v == types.float32:
        def fast(v):
            half = np.float32(0.5)
            gauss = _exp_float32_core(-half * v * v)
            tail = half * _erfc_over_gauss_float32(abs(v) * np.float32(_RSQRT2)) * gauss
            cdf = tail if v < np.float32(0.0) else np.float32(1.0) - tail   # tail: Phi(-|v|)
            return cdf, np.float32(_RSQRT_2PI) * gauss
        return fast

    def exact(v):
        cdf = 0.5 * math.erfc(-v * _RSQRT2)
        pdf = _RSQRT_2PI * math.exp(-0.5 * v * v)
        return cdf, pdf
    return exact


def _normal_cdf(v):
    """Phi(v) alone (the forward pass has no use for the density)."""
    raise NotImplementedError("called only from compiled kernels")


@overload(_normal_cdf, inline="always")
def _normal_cdf_for(v):
    if v == types.float32:
        def fast(v):
            half = np.float32(0.5)
            tail = (half * _erfc_over_gauss_float32(abs(v) * np.float32(_RSQRT2))
                    * _exp_float32_core(-half * v * v))
            return tail if v < np.float32(0.0) else np.float32(1.0) - tail
        return fast

    def exact(v):
        # erfc, not 1 + erf: for v < 0 the latter cancels (10% off at v = -5 in float32)
        return 0.5 * math.erfc(-v * _RSQRT2)
    return exact


@njit(cache=True, nogil=True, error_model="numpy", parallel=True, fastmath={"contract"})
def gelu_forward(out, x):
    # x: (M,) -> out: (M,), x * Phi(x): the exact GELU (torch's approximate='none'), Phi the
    # standard normal CDF (see _normal_cdf: vectorised arithmetic in float32, libm in float64).
    for i in prange(x.size):
        v = x[i]
        out[i] = v * _normal_cdf(v)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True, fastmath={"contract"})
def gelu_backward(dx, dout, x):
    # dout, x: (M,) -> dx: (M,), GELU'(x) = Phi(x) + x * phi(x), phi the normal density.
    for i in prange(x.size):
        v = x[i]
        cdf, pdf = _normal_cdf_and_pdf(v)
        dx[i] = dout[i] * (cdf + v * pdf)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True, fastmath={"contract"})
def sigmoid_forward(out, x):
    # x: (M,) -> out: (M,), 1 / (1 + exp(-x)); exp overflowing to inf gives exactly 0. In
    # float32 exp is _exp_float32 (vector code), in float64 libm's.
    one = x.dtype.type(1)
    for i in prange(x.size):
        out[i] = one / (one + _exp(-x[i]))


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def sigmoid_backward(dx, dout, out):
    # dout, out: (M,) -> dx: (M,), written through the forward output: s' = s * (1 - s).
    one = out.dtype.type(1)
    for i in prange(out.size):
        s = out[i]
        dx[i] = dout[i] * s * (one - s)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True, fastmath={"contract"})
def tanh_forward(out, x):
    # x: (M,) -> out: (M,). Through one exp of -2|x| (never overflows): libm's tanhf ran 6x
    # slower here. Absolute error ~1e-7 in float32, which is what an activation needs. In
    # float32 exp is _exp_float32 (vector code), in float64 libm's.
    one = x.dtype.type(1)
    two = x.dtype.type(2)
    for i in prange(x.size):
        v = x[i]
        e = _exp(-two * abs(v))
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
