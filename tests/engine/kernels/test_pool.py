"""engine/kernels/pool.py against tests/naive/pool.py and float64 central differences."""

import numpy as np
import pytest

from engine.kernels import pool as kernels
from tests.naive import pool as naive

# (N, C, H, W, sy, sx, stride_y, stride_x, pad_y, pad_x)
CASES = [
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 0),  # 1-pixel input
    (1, 1, 1, 1, 3, 3, 1, 1, 1, 1),  # 1-pixel input, window = padded input
    (3, 3, 4, 6, 2, 2, 2, 2, 0, 0),  # the usual 2x2 stride 2 (its own loop)
    (2, 2, 5, 7, 2, 2, 2, 2, 0, 0),  # 2x2 stride 2, odd sizes: the last row and column unused
    (1, 2, 5, 5, 2, 2, 2, 2, 1, 1),  # 2x2 stride 2 padded: the clipped loop
    (2, 3, 7, 7, 3, 3, 2, 2, 1, 1),  # overlapping windows, padded
    (1, 3, 6, 5, 3, 2, 1, 1, 0, 0),  # non-square window, stride 1
    (3, 1, 5, 6, 2, 3, 1, 2, 1, 1),  # non-square window, mixed strides
    (2, 3, 4, 4, 4, 4, 1, 1, 0, 0),  # window = input
    (1, 2, 3, 3, 5, 5, 1, 1, 1, 1),  # window = padded input
    (2, 2, 6, 6, 4, 4, 2, 2, 2, 2),  # pad 2
    (1, 2, 4, 4, 2, 2, 2, 2, 2, 2),  # pad = window: the corner windows are empty
]
IDS = ["x".join(map(str, c)) for c in CASES]


def distinct_values(rng, shape, dtype):
    """Random values at least 0.01 apart: no ties, so max pooling is differentiable."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) * 0.01 - size * 0.005
            + rng.uniform(0, 0.002, shape)).astype(dtype)


def out_shape(case):
    n, c, h, w, sy, sx, sty, stx, py, px = case
    return n, c, naive.out_size(h, sy, sty, py), naive.out_size(w, sx, stx, px)


def numerical_grad(forward, x, dout, eps):
    """d sum(forward(x) * dout) / dx by central differences, x float64."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        plus = np.sum(forward(x) * dout)
        x[i] = saved - eps
        minus = np.sum(forward(x) * dout)
        x[i] = saved
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def run_max(x, window):
    out = np.full(out_shape(x.shape + window), np.nan, dtype=x.dtype)
    argmax = np.full(out.shape, 12345, dtype=np.int32)
    kernels.max_pool_forward(out, argmax, x, *window)
    return out, argmax


def run_avg(x, window):
    out = np.full(out_shape(x.shape + window), np.nan, dtype=x.dtype)
    kernels.avg_pool_forward(out, x, *window)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_pool_forward_matches_naive(case, dtype, rng):
    x = rng.standard_normal(case[:4]).astype(dtype)
    out, argmax = run_max(x, case[4:])
    np.testing.assert_array_equal(out, naive.max_pool_forward(x, *case[4:]))
    assert out.dtype == dtype
    assert argmax.min() >= -1 and argmax.max() < case[2] * case[3]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_pool_backward(case, rng):
    x = distinct_values(rng, case[:4], np.float64)
    _, argmax = run_max(x, case[4:])
    dout = rng.standard_normal(argmax.shape)
    dx = np.full(x.shape, np.nan)  # garbage: the kernel must overwrite all of dx
    kernels.max_pool_backward(dx, dout, argmax)
    np.testing.assert_allclose(dx, naive.max_pool_backward(x, dout, *case[4:]), atol=1e-12)
    numeric = numerical_grad(lambda v: run_max(v, case[4:])[0], x, dout, eps=1e-5)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


def test_max_pool_ties_go_to_the_first_maximum():
    x = np.ones((1, 1, 2, 2), dtype=np.float32)
    out, argmax = run_max(x, (2, 2, 2, 2, 0, 0))
    dx = np.empty_like(x)
    kernels.max_pool_backward(dx, np.ones_like(out), argmax)
    np.testing.assert_array_equal(dx[0, 0], [[1, 0], [0, 0]])


def test_max_pool_propagates_nan():
    # A diverged net must not look healthy after pooling: NaN wins wherever it is.
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    out, _ = run_max(x, (2, 2, 2, 2, 0, 0))
    assert np.isnan(out[0, 0, 0, 0]) and np.isfinite(out[0, 0, 1:]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_avg_pool_forward_matches_naive(case, dtype, rng):
    x = rng.standard_normal(case[:4]).astype(dtype)
    out = run_avg(x, case[4:])
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(out, naive.avg_pool_forward(x, *case[4:]), rtol=tol, atol=tol)
    assert out.dtype == dtype


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_avg_pool_backward(case, rng):
    x = rng.standard_normal(case[:4])
    dout = rng.standard_normal(out_shape(case))
    dx = np.full(x.shape, np.nan)
    kernels.avg_pool_backward(dx, dout, *case[4:])
    np.testing.assert_allclose(dx, naive.avg_pool_backward(x, dout, *case[4:]), atol=1e-12)
    numeric = numerical_grad(lambda v: run_avg(v, case[4:]), x, dout, eps=1e-5)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 3, 5, 7), (2, 1, 8, 8)])
def test_global_avg_pool_forward_matches_naive(shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    out = np.full(shape[:2] + (1, 1), np.nan, dtype=dtype)
    kernels.global_avg_pool_forward(out, x)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(out, naive.global_avg_pool_forward(x), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 3, 5, 7), (2, 1, 8, 8)])
def test_global_avg_pool_backward(shape, rng):
    x = rng.standard_normal(shape)
    dout = rng.standard_normal(shape[:2] + (1, 1))
    dx = np.full(shape, np.nan)
    kernels.global_avg_pool_backward(dx, dout)
    np.testing.assert_allclose(dx, naive.global_avg_pool_backward(x, dout), atol=1e-14)

    def forward(v):
        out = np.empty(shape[:2] + (1, 1))
        kernels.global_avg_pool_forward(out, v)
        return out

    np.testing.assert_allclose(dx, numerical_grad(forward, x, dout, eps=1e-5),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("window", [(2, 2, 2, 2, 0, 0), (3, 3, 2, 2, 0, 0)], ids=["2x2", "3x3"])
def test_max_pool_over_the_row_pass_size_takes_the_clipped_loop_with_the_same_results(window,
                                                                                    rng):
    # The kernel picks its loop by window and input size (kernels.ROW_PASS_MAX_BYTES): 2x2
    # stride 2 takes its own loop at any size, 3x3 the row pass when small, else the clipped
    # loop. All must agree, on relu'd data (ties at 0) with a NaN.
    big = np.maximum(rng.standard_normal((2, 36, 64, 64)), 0).astype(np.float32)
    assert big.nbytes > kernels.ROW_PASS_MAX_BYTES
    big[0, 1, 5, 7] = np.nan
    out, argmax = run_max(big, window)
    small_out, small_argmax = run_max(big[:1, :2].copy(), window)
    np.testing.assert_array_equal(out[:1, :2], small_out)
    np.testing.assert_array_equal(argmax[:1, :2], small_argmax)
    np.testing.assert_array_equal(out, naive.max_pool_forward(big, *window))
    dx = np.empty_like(big)
    kernels.max_pool_backward(dx, np.ones_like(out), argmax)
    np.testing.assert_array_equal(dx[1:], naive.max_pool_backward(big[1:], np.ones_like(out[1:]),
                                                                  *window))
