"""Fully-connected kernels against the naive loops and central differences."""

import re
import warnings

import numba
import numpy as np
import pytest

from engine.kernels import fc as K
from tests.gradcheck import numerical_grad
from tests.naive import conv as naive

# (N, D, K): batch 1 and more, one input, one output, D over a dx chunk (two chunks)
CASES = [(1, 1, 1), (3, 7, 5), (4, 320, 10), (2, K.CHUNK + 37, 3), (1, 50, 300)]


def run_fc(x, w, b, dout=None):
    out = np.full((x.shape[0], w.shape[0]), np.nan, x.dtype)
    K.fc_forward(out, x, w, b)
    if dout is None:
        return out
    dx = np.full(x.shape, np.nan, x.dtype)
    dw, db = np.zeros_like(w), np.zeros_like(b)
    K.fc_backward_data(dx, dout, w)
    K.fc_backward_weights(dw, db, dout, x)
    return out, dx, dw, db


def random_case(case, rng, dtype=np.float64):
    n, d, k = case
    return tuple(rng.standard_normal(s).astype(dtype) for s in ((n, d), (k, d), (k,), (n, k)))


@pytest.mark.parametrize("case", CASES)
def test_forward_and_backward_match_naive_loops(case, rng):
    x, w, b, dout = random_case(case, rng)
    out, dx, dw, db = run_fc(x, w, b, dout)
    ref_dx, ref_dw, ref_db = naive.fc_backward(dout, x, w)
    np.testing.assert_allclose(out, naive.fc_forward(x, w, b), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, ref_db, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES[1:3])
def test_float32_matches_float64(case, rng):
    arrays = random_case(case, rng)
    ref = run_fc(*arrays)
    got = run_fc(*(a.astype(np.float32) for a in arrays))
    for a, r in zip(got, ref):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4 * np.abs(r).max())


def test_backward_matches_central_differences(rng):
    x, w, b, dout = random_case((3, 6, 4), rng)
    _, dx, dw, db = run_fc(x, w, b, dout)

    def loss():
        return float(np.sum(run_fc(x, w, b) * dout))

    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dw, numerical_grad(loss, w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numerical_grad(loss, b), rtol=1e-6, atol=1e-7)


def test_gradients_accumulate_and_bias_is_optional(rng):
    x, w, b, dout = random_case((2, 5, 3), rng)
    _, _, dw, db = run_fc(x, w, b, dout)
    dw2 = dw.copy()
    K.fc_backward_weights(dw2, np.zeros(0), dout, x)  # no bias: db is empty
    np.testing.assert_allclose(dw2, 2 * dw, rtol=1e-12)


def test_float32_kernels_do_no_float64_arithmetic(rng):
    x, w, b, dout = random_case((2, 5, 3), rng, np.float32)
    calls = [(K.fc_forward, (np.zeros((2, 3), np.float32), x, w, b)),
             (K.fc_backward_data, (np.zeros_like(x), dout, w)),
             (K.fc_backward_weights, (np.zeros_like(w), np.zeros_like(b), dout, x))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kernel, args in calls:
            opts = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
            fresh = numba.njit(**opts)(kernel.py_func)
            fresh(*args)
            ir = "\n".join(fresh.inspect_llvm().values())
            doubles = re.findall(r"\b(?:fadd|fsub|fmul|fdiv|fpext)\b[^\n]*\bdouble\b", ir)
            assert not doubles, f"{kernel.__name__} computes in float64: {doubles[:3]}"
