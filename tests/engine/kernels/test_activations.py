"""engine/kernels/activations.py against tests/naive/activations.py and float64 central
differences. Elementwise kernels take flat views, as the layers pass them."""

import math

import numpy as np
import pytest

from engine.kernels import activations as kernels
from tests.naive import activations as naive

SHAPES = [(1, 1, 1, 1), (3, 3, 5, 7), (2, 1, 4, 1)]
ALPHA = 0.1


def numerical_grad(forward, x, dout, eps=1e-6):
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


def away_from_zero(rng, shape, dtype=np.float64):
    """Normal values pushed at least 0.05 from 0, where relu and leaky relu have a kink."""
    x = rng.standard_normal(shape)
    return (x + np.where(x >= 0, 0.05, -0.05)).astype(dtype)


def elementwise(kernel, *arrays, scalars=()):
    """Run a flat kernel on 4-D arrays; returns a fresh 4-D output."""
    out = np.full(arrays[0].shape, np.nan, dtype=arrays[0].dtype)
    kernel(out.reshape(-1), *(a.reshape(-1) for a in arrays), *scalars)
    return out


# name -> (forward kernel, backward kernel, backward reads "x" or "out", naive fwd, naive bwd)
OPS = {
    "relu": (kernels.relu_forward, kernels.relu_backward, "out",
             naive.relu_forward, naive.relu_backward),
    "leaky_relu": (kernels.leaky_relu_forward, kernels.leaky_relu_backward, "x",
                   lambda x: naive.leaky_relu_forward(x, ALPHA),
                   lambda x, g: naive.leaky_relu_backward(x, g, ALPHA)),
    "gelu": (kernels.gelu_forward, kernels.gelu_backward, "x",
             naive.gelu_forward, naive.gelu_backward),
    "sigmoid": (kernels.sigmoid_forward, kernels.sigmoid_backward, "out",
                naive.sigmoid_forward, naive.sigmoid_backward),
    "tanh": (kernels.tanh_forward, kernels.tanh_backward, "out",
             naive.tanh_forward, naive.tanh_backward),
}


def scalars_for(name, dtype):
    return (np.dtype(dtype).type(ALPHA),) if name == "leaky_relu" else ()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", OPS)
def test_elementwise_forward_matches_naive(name, shape, dtype, rng):
    forward, _, _, naive_forward, _ = OPS[name]
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    x.reshape(-1)[:3] = [0.0, 100.0, -100.0][: x.size]  # the kink; exp overflows in float32
    out = elementwise(forward, x, scalars=scalars_for(name, dtype))
    expected = naive_forward(x.astype(np.float64))
    tol = 2e-7 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(out, expected, rtol=tol * 10, atol=tol)
    assert out.dtype == dtype


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", OPS)
def test_elementwise_backward(name, shape, rng):
    forward, backward, reads, _, naive_backward = OPS[name]
    scalars = scalars_for(name, np.float64)
    x = away_from_zero(rng, shape)
    dout = rng.standard_normal(shape)
    out = elementwise(forward, x, scalars=scalars)
    dx = elementwise(backward, dout, x if reads == "x" else out, scalars=scalars)
    np.testing.assert_allclose(dx, naive_backward(x, dout), rtol=1e-12, atol=1e-14)
    numeric = numerical_grad(lambda v: elementwise(forward, v, scalars=scalars), x, dout)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


def test_relu_propagates_nan():
    x = np.array([np.nan, -1.0, 2.0], dtype=np.float32)
    out = np.empty_like(x)
    kernels.relu_forward(out, x)
    assert np.isnan(out[0]) and out[1] == 0 and out[2] == 2


def test_tanh_is_accurate_near_zero_and_saturates():
    x = np.array([0.0, -0.0, 1e-4, -1e-4, 0.3, 20.0, -20.0, 100.0, -100.0], dtype=np.float32)
    out = np.empty_like(x)
    kernels.tanh_forward(out, x)
    np.testing.assert_allclose(out, np.tanh(x.astype(np.float64)), rtol=0, atol=1.5e-7)
    assert out[5] == 1 and out[6] == -1


def test_gelu_keeps_its_small_negative_values_in_float32():
    # Where 1 + erf(x / sqrt 2) cancels in float32 (x well below 0: at -6 it is 0 or 2^-24
    # against 2e-9) the output keeps 5 digits (the rounding of x / sqrt 2 costs the rest),
    # and the tails go to exactly 0 and x with no NaN.
    x = np.array([-3.0, -5.0, -6.0, -9.0, -100.0, 0.0, 100.0, 1e-30], dtype=np.float32)
    out = np.empty_like(x)
    kernels.gelu_forward(out, x)
    x64 = x.astype(np.float64)
    exact = 0.5 * x64 * np.array([math.erfc(-v / math.sqrt(2.0)) for v in x64])
    np.testing.assert_allclose(out, exact, rtol=2e-5, atol=1e-37)
    assert out[4] == 0 and out[6] == 100
    dx = np.empty_like(x)
    kernels.gelu_backward(dx, np.ones_like(x), x)
    assert np.isfinite(dx).all() and dx[4] == 0 and dx[6] == 1 and dx[5] == 0.5


# (N, C, H, W, group_size); C = 7 with g = 2 leaves one channel out, as ConvNetJS floors C / g.
MAXOUT_CASES = [(1, 2, 1, 1, 2), (3, 6, 4, 5, 3), (2, 7, 3, 3, 2), (2, 3, 2, 2, 1),
                (1, 4, 1, 1, 4)]


def run_maxout(x, group_size):
    n, c, h, w = x.shape
    out = np.full((n, c // group_size, h, w), np.nan, dtype=x.dtype)
    argmax = np.full(out.shape, -7, dtype=np.int32)
    kernels.maxout_forward(out, argmax, x, group_size)
    return out, argmax


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", MAXOUT_CASES)
def test_maxout_forward_matches_naive(case, dtype, rng):
    x = rng.standard_normal(case[:4]).astype(dtype)
    out, argmax = run_maxout(x, case[4])
    np.testing.assert_array_equal(out, naive.maxout_forward(x, case[4]))
    assert argmax.min() >= 0 and argmax.max() < case[4]


@pytest.mark.parametrize("case", MAXOUT_CASES)
def test_maxout_backward(case, rng):
    shape, group_size = case[:4], case[4]
    x = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01 + 0.001  # no ties
    out, argmax = run_maxout(x, group_size)
    dout = rng.standard_normal(out.shape)
    dx = np.full(shape, np.nan)  # garbage: every channel, the ignored ones too, gets written
    kernels.maxout_backward(dx, dout, argmax, group_size)
    np.testing.assert_array_equal(dx, naive.maxout_backward(x, dout, group_size))
    numeric = numerical_grad(lambda v: run_maxout(v, group_size)[0], x, dout, eps=1e-5)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_dropout_applies_the_mask_both_ways(shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    mask = np.where(rng.random(shape) < 0.5, 0.0, 2.0).astype(dtype)
    out = elementwise(kernels.dropout_forward, x, mask)
    np.testing.assert_array_equal(out, naive.dropout_forward(x, mask))
    dx = elementwise(kernels.dropout_backward, dout, mask)
    np.testing.assert_array_equal(dx, naive.dropout_backward(dout, mask))
    mask64 = mask.astype(np.float64)
    numeric = numerical_grad(lambda v: elementwise(kernels.dropout_forward, v, mask64),
                             x.astype(np.float64), dout.astype(np.float64))
    np.testing.assert_allclose(dx, numeric, rtol=1e-5, atol=1e-6)
