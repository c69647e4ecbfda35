import numpy as np
import pytest

from engine.layers.base import Context, Workspace
from engine.layers.norms import BatchNormLayer, LRNLayer
from tests.gradcheck import numerical_grad

TORCH_REASON = "torch is not installed: skipping the comparison with PyTorch"


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason=TORCH_REASON)




def batchnorm(shape, dtype, rng, eps=1e-5, momentum=0.1):
    layer = BatchNormLayer({"type": "batchnorm", "eps": eps, "momentum": momentum,
                            "in_shape": shape, "out_shape": shape})
    layer.init(rng, dtype)
    return layer


def lrn(shape, n, k=2.0, alpha=1e-4, beta=0.75):
    return LRNLayer({"type": "lrn", "k": k, "n": n, "alpha": alpha, "beta": beta,
                     "in_shape": shape, "out_shape": shape})


def zero_grads(layer):
    return {name: np.zeros_like(p) for name, p in layer.params.items()}


def non_contiguous(a):
    """The same values as a, in a strided (N, C, H, W) view."""
    b = np.empty(a.shape[:1] + a.shape[2:] + a.shape[1:2], a.dtype)  # (N, H, W, C)
    b[...] = a.transpose(0, 2, 3, 1)
    view = b.transpose(0, 3, 1, 2)
    assert not view.flags.c_contiguous or a.shape[1] == 1
    return view


# --- batch norm ---------------------------------------------------------------------------

BN_SHAPES = [(2, 1, 1, 1), (2, 3, 1, 1), (3, 3, 4, 5), (1, 2, 3, 3)]


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 3e-5)])
def test_batchnorm_matches_torch_train_then_eval(torch, rng, shape, dtype, tol):
    n, c, h, w = shape
    layer = batchnorm((c, h, w), dtype, rng, eps=1e-3, momentum=0.3)
    layer.params["gamma"][:] = rng.uniform(0.5, 2, c)
    layer.params["beta"][:] = rng.standard_normal(c)
    ref = torch.nn.BatchNorm2d(c, eps=1e-3, momentum=0.3).to(torch.float64 if dtype == np.float64
                                                                else torch.float32)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(layer.params["gamma"]))
        ref.bias.copy_(torch.from_numpy(layer.params["beta"]))
    ctx = Context(training=True)
    ref.train()
    for step in range(3):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(dtype)
        dout = rng.standard_normal(shape).astype(dtype)
        grads = zero_grads(layer)
        out, cache = layer.forward(x, ctx)
        dx = layer.backward(dout, cache, grads, ctx)
        xt = torch.from_numpy(x).requires_grad_()
        ref.zero_grad()
        out_t = ref(xt)
        out_t.backward(torch.from_numpy(dout))
        np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol * 10)
        np.testing.assert_allclose(grads["gamma"], ref.weight.grad.numpy(), rtol=tol, atol=tol * 10)
        np.testing.assert_allclose(grads["beta"], ref.bias.grad.numpy(), rtol=tol, atol=tol * 10)
        np.testing.assert_allclose(layer.buffers["running_mean"], ref.running_mean.numpy(),
                                   rtol=tol, atol=tol)
        np.testing.assert_allclose(layer.buffers["running_var"], ref.running_var.numpy(),
                                   rtol=tol, atol=tol)

    ref.eval()
    ctx = Context(training=False)
    x = rng.standard_normal(shape).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    grads = zero_grads(layer)
    out, cache = layer.forward(x, ctx)
    dx = layer.backward(dout, cache, grads, ctx)
    xt = torch.from_numpy(x).requires_grad_()
    ref.zero_grad()
    out_t = ref(xt)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(grads["gamma"], ref.weight.grad.numpy(), rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(grads["beta"], ref.bias.grad.numpy(), rtol=tol, atol=tol * 10)


def test_batchnorm_init_and_decay(rng):
    layer = batchnorm((3, 2, 2), np.float32, rng)
    np.testing.assert_array_equal(layer.params["gamma"], np.ones(3))
    np.testing.assert_array_equal(layer.params["beta"], np.zeros(3))
    np.testing.assert_array_equal(layer.buffers["running_mean"], np.zeros(3))
    np.testing.assert_array_equal(layer.buffers["running_var"], np.ones(3))
    assert layer.decay == {"gamma": (0.0, 0.0), "beta": (0.0, 0.0)}
    assert all(a.dtype == np.float32 for a in [*layer.params.values(), *layer.buffers.values()])


def test_batchnorm_running_stats_change_in_place_and_only_in_training(rng):
    layer = batchnorm((3, 2, 2), np.float32, rng)
    running_mean, running_var = layer.buffers["running_mean"], layer.buffers["running_var"]
    x = rng.standard_normal((4, 3, 2, 2)).astype(np.float32) + 2
    layer.forward(x, Context(training=False))
    np.testing.assert_array_equal(running_mean, np.zeros(3))
    layer.forward(x, Context(training=True))
    assert layer.buffers["running_mean"] is running_mean
    assert layer.buffers["running_var"] is running_var
    np.testing.assert_allclose(running_mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(running_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-5)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients_match_numerical_non_contiguous(rng, training):
    shape = (3, 3, 2, 2)
    layer = batchnorm(shape[1:], np.float64, rng)
    layer.params["gamma"][:] = rng.standard_normal(3)
    layer.params["beta"][:] = rng.standard_normal(3)
    layer.buffers["running_mean"][:] = rng.standard_normal(3)
    layer.buffers["running_var"][:] = rng.uniform(0.5, 2, 3)
    x = non_contiguous(rng.standard_normal(shape))
    dout = non_contiguous(rng.standard_normal(shape))
    momentum = layer.momentum
    layer.momentum = 0.0  # keep the running statistics fixed while differencing

    def loss():
        return float((layer.forward(x, Context(training=training))[0] * dout).sum())

    ctx = Context(training=training)
    grads = zero_grads(layer)
    out, cache = layer.forward(x, ctx)
    dx = layer.backward(dout, cache, grads, ctx)
    np.testing.assert_allclose(out, layer.forward(np.ascontiguousarray(x), ctx)[0])
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-8)
    for name in ("gamma", "beta"):
        np.testing.assert_allclose(grads[name], numerical_grad(loss, layer.params[name]),
                                   rtol=1e-6, atol=1e-8)
    layer.momentum = momentum


def test_batchnorm_backward_adds_into_grads(rng):
    layer = batchnorm((2, 3, 3), np.float64, rng)
    x, dout = rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((2, 2, 3, 3))
    ctx = Context(training=True)
    grads = zero_grads(layer)
    out, cache = layer.forward(x, ctx)
    layer.backward(dout, cache, grads, ctx)
    once = {k: v.copy() for k, v in grads.items()}
    layer.backward(dout, cache, grads, ctx)
    for name in once:
        np.testing.assert_allclose(grads[name], 2 * once[name])


def test_batchnorm_refuses_one_value_per_channel_in_training_only(rng):
    layer = batchnorm((4, 1, 1), np.float32, rng)
    x = rng.standard_normal((1, 4, 1, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="more than one value per channel"):
        layer.forward(x, Context(training=True))
    out, _ = layer.forward(x, Context(training=False))
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-5), rtol=1e-6)


def test_batchnorm_rejects_wrong_shape_or_dtype(rng):
    layer = batchnorm((3, 2, 2), np.float32, rng)
    with pytest.raises(ValueError, match=r"\(N, 3, 2, 2\)"):
        layer.forward(np.zeros((2, 4, 2, 2), np.float32), Context(training=True))
    with pytest.raises(ValueError, match="float32"):
        layer.forward(np.zeros((2, 3, 2, 2), np.float64), Context(training=True))


def test_batchnorm_workspaces_are_independent(rng):
    layer = batchnorm((2, 2, 2), np.float32, rng)
    a = rng.standard_normal((2, 2, 2, 2)).astype(np.float32)
    b = rng.standard_normal((2, 2, 2, 2)).astype(np.float32)
    out_a, _ = layer.forward(a, Context(workspace=Workspace()))
    kept = out_a.copy()
    layer.forward(b, Context(workspace=Workspace()))
    np.testing.assert_array_equal(out_a, kept)


# --- local response normalisation ---------------------------------------------------------

LRN_CASES = [((2, 3, 2, 3), 1), ((1, 4, 3, 2), 3), ((2, 7, 2, 2), 5), ((2, 2, 3, 3), 5),
             ((1, 1, 1, 1), 3)]


@pytest.mark.parametrize("shape,n", LRN_CASES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_lrn_matches_torch(torch, rng, shape, n, dtype, tol):
    k, alpha, beta = 1.5, 0.6, 0.75
    layer = lrn(shape[1:], n, k, alpha, beta)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    ctx = Context(training=True)
    out, cache = layer.forward(x, ctx)
    dx = layer.backward(dout, cache, {}, ctx)
    xt = torch.from_numpy(x).requires_grad_()
    out_t = torch.nn.LocalResponseNorm(n, alpha=alpha, beta=beta, k=k)(xt)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol)


def test_lrn_gradient_matches_numerical_non_contiguous(rng):
    shape = (2, 4, 2, 3)
    layer = lrn(shape[1:], 3, k=1.0, alpha=0.8, beta=0.75)
    x = non_contiguous(rng.standard_normal(shape))
    dout = non_contiguous(rng.standard_normal(shape))
    ctx = Context()

    def loss():
        return float((layer.forward(x, ctx)[0] * dout).sum())

    out, cache = layer.forward(x, ctx)
    dx = layer.backward(dout, cache, {}, ctx)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-8)


def test_lrn_has_no_params_and_checks_shape(rng):
    layer = lrn((3, 2, 2), 5)
    layer.init(rng, np.float32)
    assert layer.params == {} and layer.buffers == {}
    with pytest.raises(ValueError, match=r"\(N, 3, 2, 2\)"):
        layer.forward(np.zeros((1, 3, 2, 3), np.float32), Context())


# --- batch norm options (airbench94's): fixed scale, learning-rate and decay multipliers -----

def test_batchnorm_options_default_to_a_learned_scale_without_decay(rng):
    layer = batchnorm((3, 2, 2), np.float64, rng)
    assert layer.fixed == frozenset() and layer.lr_mul == {}
    assert layer.decay == {"gamma": (0.0, 0.0), "beta": (0.0, 0.0)}


def test_batchnorm_without_scale_keeps_gamma_one_and_computes_the_same(rng):
    shape = (3, 2, 2)
    d = {"type": "batchnorm", "eps": 1e-12, "momentum": 0.4, "scale": False, "lr_mul": 64.0,
         "l2_decay_mul": 1.0, "in_shape": shape, "out_shape": shape}
    layer = BatchNormLayer(d)
    layer.init(rng, np.float64)
    plain = batchnorm(shape, np.float64, rng, eps=1e-12, momentum=0.4)
    assert layer.fixed == frozenset({"gamma"})
    assert layer.lr_mul == {"gamma": 64.0, "beta": 64.0}
    assert layer.decay == {"gamma": (0.0, 1.0), "beta": (0.0, 1.0)}
    np.testing.assert_array_equal(layer.params["gamma"], np.ones(3))
    x = rng.standard_normal((5,) + shape)
    out, _ = layer.forward(x, Context(training=True, workspace=Workspace()))
    ref, _ = plain.forward(x, Context(training=True, workspace=Workspace()))
    np.testing.assert_array_equal(out, ref)
    # the NumPy reference: (x - mean) / sqrt(var + 1e-12) per channel, no scale
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-12), atol=1e-12)
