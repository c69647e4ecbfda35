"""engine/kernels/activations.py against tests/naive/activations.py and float64 central
differences. Elementwise kernels take flat views, as the layers pass them."""

import math
import platform
import re

import numba
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


def _gelu_reference(x64):
    """float64 GELU and its derivative from math.erf / math.erfc (erfc below 0, where
    1 + erf cancels even in float64 for the tail's relative digits)."""
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x64])
    pdf = np.exp(-0.5 * x64 * x64) / math.sqrt(2.0 * math.pi)
    with np.errstate(invalid="ignore"):
        return x64 * cdf, cdf + x64 * pdf


DENSE_GRID = np.concatenate([
    np.linspace(-20.0, 20.0, 400_001),                      # steps of 1e-4
    np.linspace(-1e-3, 1e-3, 2001),
    [-3.4e38, -1e30, -1e6, -1000.0, -100.0, -13.3, -13.1, -12.0, -9.0, 1000.0, 1e6, 1e30,
     3.4e38, 1e-30, -1e-30, 1e-45, 0.0, -0.0]]).astype(np.float32)


def test_gelu_float32_matches_a_float64_reference_on_a_dense_grid():
    # The float32 kernels compute Phi from their own vectorisable erfc and exp: within a
    # rounding or two of the output everywhere, and the negative tail keeps its digits.
    x = DENSE_GRID
    out, dx = np.empty_like(x), np.empty_like(x)
    kernels.gelu_forward(out, x)
    kernels.gelu_backward(dx, np.ones_like(x), x)
    ref, dref = _gelu_reference(x.astype(np.float64))
    err = np.abs(out - ref)
    assert err.max(initial=0, where=np.abs(x) <= 8) < 5e-7        # |gelu| <= 8 there
    np.testing.assert_allclose(out[x > 8], ref[x > 8], rtol=2.5e-7, atol=0)
    tail = (x < 0) & (np.abs(ref) > 1e-37)
    np.testing.assert_allclose(out[tail], ref[tail], rtol=2e-5, atol=0)
    assert (out[(x < 0) & (np.abs(ref) <= 1e-37)] <= 0).all()
    assert np.abs(out[(x < 0) & (np.abs(ref) <= 1e-37)]).max() <= 1e-37
    np.testing.assert_allclose(dx, dref, rtol=0, atol=5e-7)
    assert np.isfinite(out).all() and np.isfinite(dx).all()


def test_gelu_float32_backward_is_the_derivative_of_its_forward():
    # Central differences of the float32 forward itself, taken in float64 (h = 1e-2: the
    # truncation and float32 rounding errors both stay below 1e-4).
    x = np.linspace(-6.0, 6.0, 1201)
    h = 1e-2
    forward = {}
    for name, points in (("plus", x + h), ("minus", x - h)):
        v = points.astype(np.float32)
        forward[name] = np.empty_like(v)
        kernels.gelu_forward(forward[name], v)
    numeric = (forward["plus"].astype(np.float64) - forward["minus"]) / (
        (x + h).astype(np.float32).astype(np.float64) - (x - h).astype(np.float32))
    dx = np.empty(len(x), np.float32)
    kernels.gelu_backward(dx, np.ones_like(dx), x.astype(np.float32))
    np.testing.assert_allclose(dx, numeric, rtol=0, atol=1e-4)


def test_gelu_propagates_nan_and_matches_torch():
    x = np.array([np.nan, -1.0, 1.0], np.float32)
    out, dx = np.empty_like(x), np.empty_like(x)
    kernels.gelu_forward(out, x)
    kernels.gelu_backward(dx, np.ones_like(x), x)
    assert np.isnan(out[0]) and np.isnan(dx[0]) and np.isfinite(out[1:]).all()
    torch = pytest.importorskip("torch")
    x = DENSE_GRID[np.abs(DENSE_GRID) < 1e30]
    dout = np.random.default_rng(0).standard_normal(len(x)).astype(np.float32)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    torch.nn.functional.gelu(tx).backward(torch.from_numpy(dout))
    out, dx = np.empty_like(x), np.empty_like(x)
    kernels.gelu_forward(out, x)
    kernels.gelu_backward(dx, dout, x)
    expected = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    # torch computes 1 + erf in float32, which cancels below 0: up to ~1e-6 off there
    np.testing.assert_allclose(out, expected, rtol=4e-7, atol=2e-6)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=4e-7, atol=2e-6)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="reads x86 assembly")
@pytest.mark.skipif(bool(numba.config.BOUNDSCHECK), reason="bounds checks stop vectorisation")
@pytest.mark.parametrize("name", ["gelu_forward", "gelu_backward", "sigmoid_forward",
                                  "tanh_forward"])
def test_float32_loops_compile_to_vector_code_without_libm_calls(name):
    # What makes them fast: LLVM vectorises the loop only if no opaque libm call (erfcf,
    # expf) is left in it. Compiled afresh (cached code cannot be inspected), serially.
    from numba import njit, types
    kernel = getattr(kernels, name)
    arrays = 3 if name == "gelu_backward" else 2
    serial = njit((types.float32[::1],) * arrays, error_model="numpy",
                  fastmath={"contract"})(kernel.py_func)
    asm = serial.inspect_asm(serial.signatures[0])
    assert "erfc" not in asm and "expf" not in asm
    packed = re.findall(r"\bv?(?:mul|add|sub|div|fmadd\d*)ps\s+[^\n]*%[xyz]mm", asm)
    assert len(packed) >= 8, "no packed float arithmetic: the loop did not vectorise"


def test_sigmoid_and_tanh_in_float32_with_their_own_exp():
    # float32 sigmoid and tanh use the kernels' vectorisable exp: as close to float64 as
    # libm's expf made them, tails, overflow, infinities and NaN included.
    x = np.concatenate([np.linspace(-100.0, 100.0, 400_001),
                        [-3.4e38, 3.4e38, -1e30, 1e30, 88.7, 88.8, -88.7, -88.8, -87.3, -103.0,
                         -104.0, 1e-30, 0.0, np.inf, -np.inf, np.nan]]).astype(np.float32)
    x64 = x.astype(np.float64)
    out = np.empty_like(x)
    kernels.sigmoid_forward(out, x)
    with np.errstate(over="ignore"):
        expected = 1.0 / (1.0 + np.exp(-x64))
    finite = np.isfinite(x)
    np.testing.assert_allclose(out[finite], expected[finite], rtol=0, atol=1.2e-7)
    tiny = finite & (expected > 1e-37)
    np.testing.assert_allclose(out[tiny], expected[tiny], rtol=3e-7, atol=0)
    assert out[-3] == 1 and out[-2] == 0 and np.isnan(out[-1])
    kernels.tanh_forward(out, x)
    np.testing.assert_allclose(out[finite], np.tanh(x64[finite]), rtol=0, atol=1.5e-7)
    assert out[-3] == 1 and out[-2] == -1 and np.isnan(out[-1])


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
