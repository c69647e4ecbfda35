import numpy as np
import pytest

from engine.layers.base import Context
from engine.layers.losses import RegressionLayer, SoftmaxLayer, SVMLayer
from tests.gradcheck import numerical_grad

TORCH_REASON = "torch is not installed: skipping the comparison with PyTorch"


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason=TORCH_REASON)




def make(kind, k, **extra):
    cls, key = {"softmax": (SoftmaxLayer, "num_classes"), "svm": (SVMLayer, "num_classes"),
                "regression": (RegressionLayer, "num_neurons")}[kind]
    return cls({"type": kind, key: k, **extra, "in_shape": (k, 1, 1), "out_shape": (k, 1, 1)})


def batch(rng, n, k, dtype=np.float64):
    x = (rng.standard_normal((n, k, 1, 1)) * 2).astype(dtype)
    return x, rng.integers(0, k, size=n)


def run(layer, x, y):
    ctx = Context(training=True)
    out, cache = layer.forward(x, ctx)
    loss, dx = layer.loss(out, cache, y, ctx)
    return out, loss, dx


@pytest.mark.parametrize("n,k", [(1, 10), (5, 3), (1, 1)])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_softmax_matches_torch_cross_entropy(torch, rng, n, k, dtype, tol):
    x, y = batch(rng, n, k, dtype)
    probs, loss, dx = run(make("softmax", k), x, y)
    xt = torch.from_numpy(x.reshape(n, k)).requires_grad_()
    loss_t = torch.nn.functional.cross_entropy(xt, torch.from_numpy(y))
    loss_t.backward()
    assert probs.shape == dx.shape == (n, k, 1, 1) and dx.dtype == dtype
    np.testing.assert_allclose(probs.reshape(n, k), torch.softmax(xt, 1).detach().numpy(),
                               rtol=tol * 10, atol=tol)
    assert loss == pytest.approx(loss_t.item(), rel=tol * 10, abs=tol)
    np.testing.assert_allclose(dx.reshape(n, k), xt.grad.numpy(), rtol=tol * 10, atol=tol)


@pytest.mark.parametrize("smoothing", [0.1, 0.0, 0.6])
@pytest.mark.parametrize("n,k", [(1, 10), (5, 3), (8, 2)])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_softmax_with_label_smoothing_matches_torch(torch, rng, smoothing, n, k, dtype, tol):
    x, y = batch(rng, n, k, dtype)
    probs, loss, dx = run(make("softmax", k, label_smoothing=smoothing), x, y)
    xt = torch.from_numpy(x.reshape(n, k)).requires_grad_()
    loss_t = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)(xt, torch.from_numpy(y))
    loss_t.backward()
    np.testing.assert_allclose(probs.reshape(n, k), torch.softmax(xt, 1).detach().numpy(),
                               rtol=tol * 10, atol=tol)
    assert loss == pytest.approx(loss_t.item(), rel=tol * 10, abs=tol)
    np.testing.assert_allclose(dx.reshape(n, k), xt.grad.numpy(), rtol=tol * 10, atol=tol)


def test_label_smoothing_changes_the_loss_not_the_probabilities(rng):
    x, y = batch(rng, 6, 5)
    plain_probs, plain_loss, plain_dx = (a.copy() if isinstance(a, np.ndarray) else a
                                         for a in run(make("softmax", 5), x, y))
    zero = run(make("softmax", 5, label_smoothing=0.0), x, y)
    smooth_probs, smooth_loss, smooth_dx = run(make("softmax", 5, label_smoothing=0.2), x, y)
    assert zero[1] == plain_loss
    np.testing.assert_array_equal(zero[2], plain_dx)
    np.testing.assert_array_equal(smooth_probs, plain_probs)
    assert smooth_loss != plain_loss and not np.array_equal(smooth_dx, plain_dx)


@pytest.mark.parametrize("n,k", [(1, 10), (6, 4), (1, 2)])
def test_svm_matches_torch_multi_margin_loss_times_classes(torch, rng, n, k):
    x, y = batch(rng, n, k)
    scores, loss, dx = run(make("svm", k), x, y)
    xt = torch.from_numpy(x.reshape(n, k)).requires_grad_()
    # torch divides each example's hinge sum by the number of classes; ConvNetJS does not.
    loss_t = torch.nn.functional.multi_margin_loss(xt, torch.from_numpy(y), p=1, margin=1.0) * k
    loss_t.backward()
    np.testing.assert_array_equal(scores, x)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(dx.reshape(n, k), xt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n,k", [(1, 1), (1, 5), (4, 3)])
def test_regression_matches_torch_half_summed_mse_over_batch(torch, rng, n, k):
    x, _ = batch(rng, n, k)
    targets = rng.standard_normal((n, k))
    values, loss, dx = run(make("regression", k), x, targets)
    xt = torch.from_numpy(x.reshape(n, k)).requires_grad_()
    loss_t = 0.5 * torch.nn.functional.mse_loss(xt, torch.from_numpy(targets),
                                                reduction="sum") / n
    loss_t.backward()
    np.testing.assert_array_equal(values, x)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(dx.reshape(n, k), xt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", ["softmax", "svm", "regression"])
def test_loss_gradient_matches_numerical_non_contiguous(rng, kind):
    n, k = 3, 4
    x = np.asfortranarray(rng.standard_normal((n, k, 1, 1)) * 2)
    assert not x.flags.c_contiguous
    y = rng.standard_normal((n, k)) if kind == "regression" else rng.integers(0, k, size=n)
    layer = make(kind, k)

    def loss():
        return run(layer, x, y)[1]

    _, _, dx = run(layer, x, y)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_with_huge_logits_stays_finite(rng, dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype).reshape(2, 3, 1, 1)
    probs, loss, dx = run(make("softmax", 3), x, np.array([1, 0]))
    assert np.isfinite(probs).all() and np.isfinite(dx).all()
    assert loss == pytest.approx((2e4 + 2e4 + np.log(2)) / 2, rel=1e-6)


@pytest.mark.parametrize("kind", ["softmax", "svm"])
@pytest.mark.parametrize("labels,message", [
    (np.array([0, 3]), r"0\.\.2"),
    (np.array([-1, 0]), r"0\.\.2"),
    (np.array([0.0, 1.0]), "integers"),
    (np.array([True, False]), "integers"),
    (np.array([0, 1, 2]), "2 labels"),
    (np.array([[0], [1]]), "2 labels"),
])
def test_bad_labels_are_rejected(rng, kind, labels, message):
    x, _ = batch(rng, 2, 3)
    layer = make(kind, 3)
    out, cache = layer.forward(x, Context())
    with pytest.raises(ValueError, match=message):
        layer.loss(out, cache, labels, Context())


@pytest.mark.parametrize("targets,message", [
    (np.zeros((2, 4)), r"\(2, 3\)"),
    (np.zeros(6), r"\(2, 3\)"),
    (np.array([[0.0, np.nan, 1.0], [0.0, 0.0, 0.0]]), "finite"),
    (np.array([["a", "b", "c"], ["d", "e", "f"]]), "numbers"),
])
def test_bad_regression_targets_are_rejected(rng, targets, message):
    x, _ = batch(rng, 2, 3)
    layer = make("regression", 3)
    out, cache = layer.forward(x, Context())
    with pytest.raises(ValueError, match=message):
        layer.loss(out, cache, targets, Context())


def test_regression_accepts_integer_targets_in_the_scores_dtype(rng):
    x, _ = batch(rng, 2, 2, np.float32)
    _, loss, dx = run(make("regression", 2), x, np.array([[1, 0], [0, 1]]))
    assert dx.dtype == np.float32
    assert loss == pytest.approx(0.5 * ((x.reshape(2, 2) - np.eye(2)) ** 2).sum() / 2, rel=1e-6)


@pytest.mark.parametrize("kind", ["softmax", "svm", "regression"])
def test_loss_layers_check_the_input_shape(kind):
    with pytest.raises(ValueError, match=r"\(N, 3, 1, 1\)"):
        make(kind, 3).forward(np.zeros((2, 4, 1, 1)), Context())
