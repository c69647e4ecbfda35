import numpy as np
import pytest

from engine.kernels.losses import regression_loss, softmax_cross_entropy, softmax_forward, svm_loss
from tests.naive import losses as naive
from tests.gradcheck import numerical_grad




def softmax(x):
    probs = np.empty_like(x)
    softmax_forward(probs, x)
    return probs


def cross_entropy(x, y, smoothing=0.0):
    dx, losses = np.empty_like(x), np.empty(x.shape[0], x.dtype)
    softmax_cross_entropy(dx, losses, x, softmax(x), y, x.dtype.type(smoothing))
    return losses, dx


def svm(x, y):
    dx, losses = np.empty_like(x), np.empty(x.shape[0], x.dtype)
    svm_loss(dx, losses, x, y)
    return losses, dx


def regression(x, y):
    dx, losses = np.empty_like(x), np.empty(x.shape[0], x.dtype)
    regression_loss(dx, losses, x, y)
    return losses, dx


SHAPES = [(1, 1), (1, 10), (4, 3), (7, 10)]


def scores_and_labels(rng, shape, dtype=np.float64):
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    y = rng.integers(0, shape[1], size=shape[0]).astype(np.int64)
    return x, y


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_softmax_forward_matches_naive(rng, shape, dtype, tol):
    x, _ = scores_and_labels(rng, shape, dtype)
    probs = softmax(x)
    np.testing.assert_allclose(probs, naive.softmax(x), rtol=tol * 10, atol=tol)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=tol * 10)


@pytest.mark.parametrize("loss_name", ["cross_entropy", "svm", "regression"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_losses_match_naive(rng, loss_name, shape, dtype, tol):
    x, y = scores_and_labels(rng, shape, dtype)
    if loss_name == "regression":
        y = rng.standard_normal(shape).astype(dtype)
    kernel = {"cross_entropy": cross_entropy, "svm": svm, "regression": regression}[loss_name]
    reference = {"cross_entropy": naive.softmax_cross_entropy, "svm": naive.svm,
                 "regression": naive.regression}[loss_name]
    losses, dx = kernel(x, y)
    ref_losses, ref_dx = reference(x.astype(np.float64), y)
    assert losses.dtype == dtype and dx.dtype == dtype
    np.testing.assert_allclose(losses, ref_losses, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, ref_dx, rtol=tol, atol=tol)


@pytest.mark.parametrize("loss_name", ["cross_entropy", "svm", "regression"])
@pytest.mark.parametrize("shape", SHAPES)
def test_loss_gradients_match_numerical(rng, loss_name, shape):
    x, y = scores_and_labels(rng, shape)
    if loss_name == "regression":
        y = rng.standard_normal(shape)
    kernel = {"cross_entropy": cross_entropy, "svm": svm, "regression": regression}[loss_name]

    def mean_loss():
        return float(kernel(x, y)[0].mean())

    # The hinge has kinks: central differences need every margin away from 0.
    if loss_name == "svm":
        margins = x - x[np.arange(shape[0]), y][:, None] + 1
        assert np.abs(margins).min() > 1e-4
    _, dx = kernel(x, y)
    np.testing.assert_allclose(dx, numerical_grad(mean_loss, x), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_huge_logits_stay_finite(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, 1e4 - 1, -3.0]], dtype)
    y = np.array([1, 0, 2], np.int64)
    probs = softmax(x)
    losses, dx = cross_entropy(x, y)
    assert np.isfinite(probs).all() and np.isfinite(losses).all() and np.isfinite(dx).all()
    np.testing.assert_allclose(probs[0], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(probs[1], [0, 0.5, 0.5], atol=1e-12)
    # -log p[y] is exact even where p[y] underflows to 0.
    np.testing.assert_allclose(losses, [2e4, 2e4 + np.log(2), 1e4 + 3 + np.log1p(np.exp(-1.0))],
                               rtol=1e-6)


def test_svm_margin_is_one_and_ties_cost_the_margin():
    x = np.array([[2.0, 1.5, 0.9, 2.0]])
    losses, dx = svm(x, np.array([0], np.int64))
    # class 1: 1.5 - 2 + 1 = 0.5; class 2: 0.9 - 2 + 1 < 0; class 3 (a tie): 1
    np.testing.assert_allclose(losses, [1.5])
    np.testing.assert_allclose(dx, [[-2.0, 1.0, 0.0, 1.0]])


# --- label smoothing: target (1 - eps) * onehot + eps / K, as torch's CrossEntropyLoss ----------

SMOOTHINGS = [0.1, 0.5, 0.9]


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_smoothed_cross_entropy_matches_naive(rng, smoothing, shape, dtype, tol):
    x, y = scores_and_labels(rng, shape, dtype)
    losses, dx = cross_entropy(x, y, smoothing)
    ref_losses, ref_dx = naive.softmax_cross_entropy(x.astype(np.float64), y, smoothing)
    assert losses.dtype == dtype and dx.dtype == dtype
    np.testing.assert_allclose(losses, ref_losses, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, ref_dx, rtol=tol, atol=tol)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("shape", SHAPES)
def test_smoothed_cross_entropy_gradient_matches_numerical(rng, smoothing, shape):
    x, y = scores_and_labels(rng, shape)

    def mean_loss():
        return float(cross_entropy(x, y, smoothing)[0].mean())

    _, dx = cross_entropy(x, y, smoothing)
    np.testing.assert_allclose(dx, numerical_grad(mean_loss, x), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_smoothing_gives_exactly_the_unsmoothed_values(rng, dtype):
    x, y = scores_and_labels(rng, (7, 10), dtype)
    losses, dx = cross_entropy(x, y, 0.0)
    # what the kernel computed before label smoothing existed, operation for operation
    top = x.max(axis=1)
    total = np.exp(x - top[:, None]).sum(axis=1, dtype=dtype)
    probs = softmax(x)
    old_dx = probs * dtype(1.0 / len(y))
    old_dx[np.arange(len(y)), y] -= dtype(1.0 / len(y))
    np.testing.assert_array_equal(dx, old_dx)
    np.testing.assert_allclose(losses, np.log(total) + top - x[np.arange(len(y)), y],
                               rtol=2e-7 if dtype == np.float32 else 1e-15)
    ref_losses, _ = naive.softmax_cross_entropy(x.astype(np.float64), y)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_smoothed_cross_entropy_with_huge_logits_stays_finite(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype)
    y = np.array([1, 0], np.int64)
    losses, dx = cross_entropy(x, y, 0.1)
    assert np.isfinite(losses).all() and np.isfinite(dx).all()
    # row 0: lse = 1e4; 0.9 * 2e4 + 0.1 / 3 * (0 + 2e4 + 1e4)
    np.testing.assert_allclose(losses[0], 0.9 * 2e4 + 0.1 / 3 * 3e4, rtol=1e-6)
    np.testing.assert_allclose(dx.sum(axis=1), 0, atol=1e-6)
