import numpy as np
import pytest

from engine.kernels.norms import (
    batchnorm_backward_eval,
    batchnorm_backward_train,
    batchnorm_forward_eval,
    batchnorm_forward_train,
    lrn_backward,
    lrn_forward,
)
from tests.naive import norms as naive
from tests.gradcheck import numerical_grad

EPS = 1e-5
# (N, C, H, W): batch 2 with 1x1 spatial (as after fc), channels 1 and 3, batch 1, odd sizes.
BN_SHAPES = [(2, 1, 1, 1), (2, 3, 1, 1), (1, 1, 3, 3), (3, 3, 4, 5), (5, 2, 2, 3)]


def planes(a):
    n, c, h, w = a.shape
    return a.reshape(n, c, h * w)




def bn_train(x, gamma, beta):
    n, c, h, w = x.shape
    out, x_hat = np.empty_like(x), np.empty_like(x)
    mean, var, inv_std = (np.empty(c, x.dtype) for _ in range(3))
    batchnorm_forward_train(planes(out), planes(x_hat), mean, var, inv_std, planes(x),
                            gamma, beta, EPS)
    return out, x_hat, mean, var, inv_std


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_batchnorm_forward_train_matches_naive(rng, shape, dtype, tol):
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    gamma = rng.standard_normal(c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    out, x_hat, mean, var, inv_std = bn_train(x, gamma, beta)
    ref_out, ref_x_hat, ref_mean, ref_var, ref_inv_std = naive.batchnorm_forward_train(
        x, gamma, beta, EPS)
    np.testing.assert_allclose(out, ref_out, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(x_hat, ref_x_hat, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(mean, ref_mean, rtol=tol, atol=tol)
    np.testing.assert_allclose(var, ref_var, rtol=tol, atol=tol)
    np.testing.assert_allclose(inv_std, ref_inv_std, rtol=tol)


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm_backward_train_matches_numerical_and_naive(rng, shape):
    c = shape[1]
    x = rng.standard_normal(shape) * 2 + 0.5
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    dout = rng.standard_normal(shape)

    def loss():
        return float((bn_train(x, gamma, beta)[0] * dout).sum())

    _, x_hat, _, _, inv_std = bn_train(x, gamma, beta)
    dx = np.empty_like(x)
    dgamma, dbeta = np.full(c, 0.5), np.full(c, -0.25)  # backward must ADD to these
    batchnorm_backward_train(planes(dx), dgamma, dbeta, planes(dout), planes(x_hat),
                             inv_std, gamma)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dgamma - 0.5, numerical_grad(loss, gamma), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dbeta + 0.25, numerical_grad(loss, beta), rtol=1e-6, atol=1e-8)
    ref_dx, ref_dgamma, ref_dbeta = naive.batchnorm_backward_train(dout, x, gamma, EPS)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(dgamma - 0.5, ref_dgamma, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dbeta + 0.25, ref_dbeta, rtol=1e-10, atol=1e-12)


def test_batchnorm_backward_train_float32_close_to_float64(rng):
    shape = (4, 3, 5, 5)
    x = rng.standard_normal(shape)
    gamma, beta, dout = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(shape)
    grads = {}
    for dtype in (np.float32, np.float64):
        args = [a.astype(dtype) for a in (x, gamma, beta, dout)]
        _, x_hat, _, _, inv_std = bn_train(*args[:3])
        dx, dgamma, dbeta = np.empty(shape, dtype), np.zeros(3, dtype), np.zeros(3, dtype)
        batchnorm_backward_train(planes(dx), dgamma, dbeta, planes(args[3]), planes(x_hat),
                                 inv_std, args[1])
        grads[dtype] = dx, dgamma, dbeta
    for g32, g64 in zip(grads[np.float32], grads[np.float64]):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)


def bn_eval(x, running_mean, running_var, gamma, beta):
    out = np.empty_like(x)
    batchnorm_forward_eval(planes(out), planes(x), running_mean, running_var, gamma, beta, EPS)
    return out


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 1, 1), (3, 3, 4, 5)])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_batchnorm_forward_eval_matches_naive(rng, shape, dtype, tol):
    c = shape[1]
    x = rng.standard_normal(shape).astype(dtype)
    stats = [rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype),
             rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)]
    out = bn_eval(x, *stats)
    np.testing.assert_allclose(out, naive.batchnorm_forward_eval(x, *stats, EPS),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 1, 1), (3, 3, 2, 5)])
def test_batchnorm_backward_eval_matches_numerical(rng, shape):
    c = shape[1]
    x = rng.standard_normal(shape)
    running_mean, running_var = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    gamma, beta, dout = rng.standard_normal(c), rng.standard_normal(c), rng.standard_normal(shape)

    def loss():
        return float((bn_eval(x, running_mean, running_var, gamma, beta) * dout).sum())

    dx, dgamma, dbeta = np.empty_like(x), np.ones(c), np.ones(c)
    batchnorm_backward_eval(planes(dx), dgamma, dbeta, planes(dout), planes(x),
                            running_mean, running_var, gamma, EPS)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dgamma - 1, numerical_grad(loss, gamma), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dbeta - 1, numerical_grad(loss, beta), rtol=1e-6, atol=1e-8)
    ref = naive.batchnorm_backward_eval(dout, x, running_mean, running_var, gamma, EPS)
    for got, want in zip((dx, dgamma - 1, dbeta - 1), ref):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


# --- local response normalisation ---------------------------------------------------------

LRN_CASES = [  # (shape, size): windows of 1, 3, 5 channels; fewer channels than the window
    ((2, 3, 2, 3), 1), ((1, 4, 3, 2), 3), ((2, 7, 2, 2), 5), ((2, 2, 3, 3), 5), ((1, 1, 1, 1), 3),
]


def lrn(x, size, k, alpha, beta):
    out, scale = np.empty_like(x), np.empty_like(x)
    lrn_forward(planes(out), planes(scale), planes(x), size, k, alpha, beta)
    return out, scale


@pytest.mark.parametrize("shape,size", LRN_CASES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_lrn_forward_matches_naive(rng, shape, size, dtype, tol):
    # A large alpha so the normalisation visibly matters (ConvNetJS's 1e-4 barely does).
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    out, scale = lrn(x, size, 2.0, 0.5, 0.75)
    ref_out, ref_scale = naive.lrn_forward(x, size, 2.0, 0.5, 0.75)
    np.testing.assert_allclose(out, ref_out, rtol=tol, atol=tol)
    np.testing.assert_allclose(scale, ref_scale, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape,size", LRN_CASES)
def test_lrn_backward_matches_numerical_and_naive(rng, shape, size):
    k, alpha, beta = 1.5, 0.7, 0.75
    x = rng.standard_normal(shape) * 2
    dout = rng.standard_normal(shape)

    def loss():
        return float((lrn(x, size, k, alpha, beta)[0] * dout).sum())

    out, scale = lrn(x, size, k, alpha, beta)
    dx, ratio = np.empty_like(x), np.empty_like(x)
    lrn_backward(planes(dx), planes(ratio), planes(dout), planes(x), planes(out), planes(scale),
                 size, alpha, beta)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dx, naive.lrn_backward(dout, x, size, k, alpha, beta),
                               rtol=1e-10, atol=1e-12)


def test_lrn_float32_stays_close_to_float64(rng):
    shape, size = (2, 6, 4, 4), 5
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    results = {}
    for dtype in (np.float32, np.float64):
        xd, dd = x.astype(dtype), dout.astype(dtype)
        out, scale = lrn(xd, size, 2.0, 1e-4, 0.75)
        dx, ratio = np.empty_like(xd), np.empty_like(xd)
        lrn_backward(planes(dx), planes(ratio), planes(dd), planes(xd), planes(out),
                     planes(scale), size, 1e-4, 0.75)
        results[dtype] = out, dx
    for a32, a64 in zip(results[np.float32], results[np.float64]):
        assert a32.dtype == np.float32
        np.testing.assert_allclose(a32, a64, rtol=1e-5, atol=1e-6)
