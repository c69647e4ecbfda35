"""PoolLayer and GlobalAvgPoolLayer: against PyTorch, float64 central differences, and the
layer contract (workspace buffers, non-contiguous inputs, validation)."""

import numpy as np
import pytest

from engine.layers.base import LAYER_TYPES, Context
from engine.layers.pool import GlobalAvgPoolLayer, PoolLayer
from tests.naive.pool import out_size

TORCH_REASON = "torch is not installed: skipping the comparison with PyTorch"


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason=TORCH_REASON)


def pool(in_shape, sy, sx, stride_y, stride_x, pad_y, pad_x, mode):
    c, h, w = in_shape
    out_shape = (c, out_size(h, sy, stride_y, pad_y), out_size(w, sx, stride_x, pad_x))
    return PoolLayer({"type": "pool", "sx": sx, "sy": sy, "stride_x": stride_x,
                      "stride_y": stride_y, "pad_x": pad_x, "pad_y": pad_y, "mode": mode,
                      "in_shape": in_shape, "out_shape": out_shape})


def global_avg_pool(in_shape):
    return GlobalAvgPoolLayer({"type": "global_avg_pool", "in_shape": in_shape,
                               "out_shape": (in_shape[0], 1, 1)})


def distinct_values(rng, shape, dtype):
    """Random values at least 0.01 apart: no ties, so max pooling is differentiable."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) * 0.01 - size * 0.005).astype(dtype)


def forward_backward(layer, x, dout, ctx=None):
    ctx = ctx or Context(training=True)
    out, cache = layer.forward(x, ctx)
    out = out.copy()  # workspace buffers are reused by the next call
    return out, layer.backward(dout, cache, {}, ctx).copy()


def numerical_grad(layer, x, dout, eps=1e-6):
    ctx = Context()
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        plus = np.sum(layer.forward(x, ctx)[0] * dout)
        x[i] = saved - eps
        minus = np.sum(layer.forward(x, ctx)[0] * dout)
        x[i] = saved
        grad[i] = (plus - minus) / (2 * eps)
    return grad


# (N, C, H, W, sy, sx, stride_y, stride_x, pad_y, pad_x), pads within torch's pad <= window / 2
TORCH_CASES = [
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 0),
    (4, 3, 8, 8, 2, 2, 2, 2, 0, 0),
    (2, 3, 7, 7, 3, 3, 2, 2, 1, 1),
    (1, 3, 6, 5, 3, 2, 1, 1, 1, 1),
    (3, 1, 5, 6, 2, 3, 1, 2, 1, 1),
    (2, 2, 6, 6, 4, 4, 2, 2, 2, 2),
    (1, 2, 3, 3, 3, 3, 1, 1, 1, 1),
    (1, 2, 5, 5, 5, 5, 1, 1, 0, 0),
]


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("case", TORCH_CASES, ids=["x".join(map(str, c)) for c in TORCH_CASES])
def test_pool_matches_torch(case, mode, dtype, tol, rng, torch):
    n, c, h, w, sy, sx, sty, stx, py, px = case
    layer = pool((c, h, w), sy, sx, sty, stx, py, px, mode)
    x = distinct_values(rng, (n, c, h, w), dtype)
    dout = rng.standard_normal((n,) + layer.out_shape).astype(dtype)
    out, dx = forward_backward(layer, x, dout)

    tx = torch.tensor(x, requires_grad=True)
    if mode == "max":
        t_out = torch.nn.functional.max_pool2d(tx, (sy, sx), (sty, stx), (py, px))
    else:
        t_out = torch.nn.functional.avg_pool2d(tx, (sy, sx), (sty, stx), (py, px),
                                               count_include_pad=False)
    t_out.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)
    assert out.dtype == dtype and dx.dtype == dtype


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("case", [(2, 3, 7, 7, 3, 3, 2, 2, 1, 1), (1, 2, 4, 4, 2, 2, 2, 2, 2, 2),
                                  (1, 1, 1, 1, 3, 3, 1, 1, 1, 1)])
def test_pool_gradient_by_central_differences(case, mode, rng):
    n, c, h, w, sy, sx, sty, stx, py, px = case  # includes pads torch refuses (empty windows)
    layer = pool((c, h, w), sy, sx, sty, stx, py, px, mode)
    x = distinct_values(rng, (n, c, h, w), np.float64)
    dout = rng.standard_normal((n,) + layer.out_shape)
    _, dx = forward_backward(layer, x, dout)
    np.testing.assert_allclose(dx, numerical_grad(layer, x, dout), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool_accepts_non_contiguous_input_and_dout(mode, rng):
    layer = pool((3, 6, 6), 3, 3, 2, 2, 1, 1, mode)
    x = distinct_values(rng, (2, 6, 6, 3), np.float32).transpose(0, 3, 1, 2)  # NHWC storage
    dout = rng.standard_normal((2, 3, 3, 3)).astype(np.float32).transpose(0, 3, 1, 2)
    assert not x.flags.c_contiguous and not dout.flags.c_contiguous
    out, dx = forward_backward(layer, x, dout)
    ref_out, ref_dx = forward_backward(layer, np.ascontiguousarray(x), np.ascontiguousarray(dout))
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(dx, ref_dx)


def test_pool_reuses_workspace_buffers_and_leaves_dout_alone(rng):
    layer = pool((2, 4, 4), 2, 2, 2, 2, 0, 0, "max")
    ctx = Context(training=True)
    x = rng.standard_normal((3, 2, 4, 4)).astype(np.float32)
    out1, cache = layer.forward(x, ctx)
    dout = rng.standard_normal(out1.shape).astype(np.float32)
    dout_before = dout.copy()
    dx1 = layer.backward(dout, cache, {}, ctx)
    out2, cache = layer.forward(x, ctx)
    dx2 = layer.backward(dout, cache, {}, ctx)
    assert out2 is out1 and dx2 is dx1
    np.testing.assert_array_equal(dout, dout_before)
    out3, _ = layer.forward(x[:1], ctx)  # a new batch size gets its own buffer shape
    assert out3.shape == (1, 2, 2, 2)


def test_pool_backward_casts_dout_to_the_forward_dtype(rng):
    layer = pool((1, 4, 4), 2, 2, 2, 2, 0, 0, "avg")
    ctx = Context()
    _, cache = layer.forward(rng.standard_normal((1, 1, 4, 4)).astype(np.float32), ctx)
    dx = layer.backward(np.ones((1, 1, 2, 2)), cache, {}, ctx)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, np.full((1, 1, 4, 4), 0.25, np.float32))


@pytest.mark.parametrize("layer", [pool((3, 4, 4), 2, 2, 2, 2, 0, 0, "max"),
                                   global_avg_pool((3, 4, 4))])
def test_pool_layers_reject_bad_input(layer):
    ctx = Context()
    with pytest.raises(ValueError, match="shape"):
        layer.forward(np.zeros((2, 3, 4, 5), np.float32), ctx)
    with pytest.raises(ValueError, match="shape"):
        layer.forward(np.zeros((3, 4, 4), np.float32), ctx)
    with pytest.raises(ValueError, match="float32 or float64"):
        layer.forward(np.zeros((2, 3, 4, 4), np.int32), ctx)
    _, cache = layer.forward(np.zeros((2, 3, 4, 4), np.float32), ctx)
    with pytest.raises(ValueError):
        layer.backward(np.zeros((2, 3, 4, 4), np.float32), cache, {}, ctx)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-14)])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 3, 5, 7), (2, 4, 8, 8)])
def test_global_avg_pool_matches_torch(shape, dtype, tol, rng, torch):
    layer = global_avg_pool(shape[1:])
    x = rng.standard_normal(shape).astype(dtype)
    dout = rng.standard_normal(shape[:2] + (1, 1)).astype(dtype)
    out, dx = forward_backward(layer, x, dout)
    tx = torch.tensor(x, requires_grad=True)
    t_out = torch.nn.functional.adaptive_avg_pool2d(tx, 1)
    t_out.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)


def test_global_avg_pool_gradient_and_non_contiguous_input(rng):
    layer = global_avg_pool((3, 4, 5))
    x = rng.standard_normal((2, 4, 5, 3)).transpose(0, 3, 1, 2)
    dout = rng.standard_normal((2, 3, 1, 1))
    out, dx = forward_backward(layer, x, dout)
    np.testing.assert_allclose(out[..., 0, 0], x.mean(axis=(2, 3)), rtol=1e-14)
    np.testing.assert_allclose(dx, numerical_grad(layer, np.ascontiguousarray(x), dout),
                               rtol=1e-6, atol=1e-8)


def test_pool_layers_are_registered():
    assert LAYER_TYPES["pool"] is PoolLayer
    assert LAYER_TYPES["global_avg_pool"] is GlobalAvgPoolLayer
