"""Conv and fc layers: torch as the reference, plus the layer contract."""

import numpy as np
import pytest

from engine.layers.base import LAYER_TYPES, Context
from engine.layers.conv import ConvLayer, FCLayer


def conv_def(in_shape, filters, sy, sx, stride_y=1, stride_x=1, pad_y=0, pad_x=0, bias=True,
             bias_pref=0.0):
    c, h, w = in_shape
    out_h = (h + 2 * pad_y - sy) // stride_y + 1
    out_w = (w + 2 * pad_x - sx) // stride_x + 1
    return {"type": "conv", "sx": sx, "sy": sy, "filters": filters, "stride_x": stride_x,
            "stride_y": stride_y, "pad_x": pad_x, "pad_y": pad_y, "bias": bias,
            "l1_decay_mul": 0.0, "l2_decay_mul": 1.0, "bias_pref": bias_pref,
            "in_shape": tuple(in_shape), "out_shape": (filters, out_h, out_w)}


def fc_def(in_shape, k, bias=True, bias_pref=0.0):
    return {"type": "fc", "num_neurons": k, "bias": bias, "l1_decay_mul": 0.5,
            "l2_decay_mul": 2.0, "bias_pref": bias_pref, "in_shape": tuple(in_shape),
            "out_shape": (k, 1, 1)}


def grads_for(layer):
    return {name: np.zeros_like(p) for name, p in layer.params.items()}


def run(layer, x, dout, ctx=None):
    ctx = ctx or Context(training=True)
    out, cache = layer.forward(x, ctx)
    out = out.copy()
    grads = grads_for(layer)
    dx = layer.backward(dout, cache, grads, ctx)
    return out, dx, grads


CONV_CASES = [  # (N, in_shape, filters, sy, sx, stride_y, stride_x, pad_y, pad_x, bias)
    (2, (3, 8, 8), 4, 3, 3, 1, 1, 1, 1, True),
    (1, (3, 32, 32), 16, 5, 5, 1, 1, 2, 2, True),
    (3, (5, 9, 7), 6, 3, 5, 2, 1, 2, 1, False),
    (2, (4, 9, 9), 5, 3, 3, 2, 2, 1, 1, True),
    (2, (6, 5, 5), 3, 1, 1, 1, 1, 0, 0, False),
    (1, (2, 1, 1), 3, 5, 5, 1, 1, 2, 2, True),
    # Winograd F(4x4, 3x3) (engine/kernels/winograd.py): 3x3 at stride 1, 64+ channels,
    # 32+ tiles of 4x4 outputs in the batch; no more tiles than channels: tile-major
    (8, (64, 7, 7), 64, 3, 3, 1, 1, 1, 1, True),
    (16, (65, 5, 6), 67, 3, 3, 1, 1, 0, 2, False),
    (9, (64, 16, 15), 66, 3, 3, 1, 1, 1, 1, True),
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_matches_torch(case, dtype, rng):
    torch = pytest.importorskip("torch", reason="torch is the reference for the conv layer")
    n, in_shape, f, sy, sx, st_y, st_x, p_y, p_x, bias = case
    layer = ConvLayer(conv_def(in_shape, f, sy, sx, st_y, st_x, p_y, p_x, bias))
    layer.init(rng, dtype)
    if bias:
        layer.params["b"][:] = rng.standard_normal(f)
    x = rng.standard_normal((n,) + in_shape).astype(dtype)
    dout = rng.standard_normal((n,) + layer.out_shape).astype(dtype)
    out, dx, grads = run(layer, x, dout)

    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.params["w"], requires_grad=True)
    tb = torch.tensor(layer.params["b"], requires_grad=True) if bias else None
    tout = torch.nn.functional.conv2d(tx, tw, tb, (st_y, st_x), (p_y, p_x))
    tout.backward(torch.tensor(dout))
    assert out.dtype == dx.dtype == dtype

    def close(got, want):
        # float32 sums of hundreds of products (Winograd's transformed ones larger still)
        # round to ~1e-5 of their scale: an element near zero is judged against the scale
        atol = 1e-10 if dtype == np.float64 else max(1e-4, 1e-5 * float(np.abs(want).max()))
        rtol = 1e-10 if dtype == np.float64 else 1e-4
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)

    close(out, tout.detach().numpy())
    close(dx, tx.grad.numpy())
    close(grads["w"], tw.grad.numpy())
    if bias:
        close(grads["b"], tb.grad.numpy())
    else:
        assert set(grads) == {"w"}


@pytest.mark.parametrize("n, in_shape, filters, stride, pad, winograd", [
    (8, (64, 7, 7), 64, 1, 1, True),      # 8 images x 4 tiles of 4x4 outputs
    (7, (64, 7, 7), 64, 1, 1, False),     # 28 tiles: the fixed costs outweigh the savings
    (8, (64, 3, 3), 128, 1, 2, True),     # 5x5 outputs: 4 tiles an image
    (8, (63, 7, 7), 64, 1, 1, False),     # too few input channels to pay for the transforms
    (8, (64, 7, 7), 32, 1, 1, False),     # too few filters
    (8, (64, 8, 8), 64, 2, 1, False),     # stride 2
])
def test_wide_3x3_stride_1_convs_run_as_winograd(n, in_shape, filters, stride, pad, winograd,
                                                 rng):
    layer = ConvLayer(conv_def(in_shape, filters, 3, 3, stride, stride, pad, pad))
    layer.init(rng)
    assert layer.uses_winograd(n) is winograd
    _, cache = layer.forward(rng.standard_normal((n,) + in_shape).astype(np.float32),
                             Context())
    assert (cache[0] == "winograd") is winograd


def test_a_winograd_batch_runs_in_groups_with_the_results_of_one(monkeypatch, rng):
    # Scratch for a few images at a time (the group bound), the results as if in one go.
    import engine.layers.conv as conv_layer
    # float32, as training runs (a float64 Winograd build would cost the boundscheck run a
    # cold compile of its own); only the sums over images change order between groups
    layer = ConvLayer(conv_def((64, 5, 5), 64, 3, 3, pad_y=1, pad_x=1))
    layer.init(rng, np.float32)
    layer.params["b"][:] = rng.standard_normal(64)
    x = rng.standard_normal((9, 64, 5, 5)).astype(np.float32)
    dout = rng.standard_normal((9, 64, 5, 5)).astype(np.float32)
    assert layer.uses_winograd(9)
    whole = run(layer, x, dout)
    monkeypatch.setattr(conv_layer, "WINOGRAD_GROUP_BYTES", 1)
    assert [(n0, n1) for n0, n1, _ in layer._winograd_groups(9)] == [(n, n + 1) for n in range(9)]
    one = conv_layer.winograd.winograd_geometry(1, 64, 5, 5, 64, 1, 1)
    per_image = 4 * conv_layer.ELEMENTS * one.tiles * (one.c_rows + one.f_rows + one.dc_rows)
    monkeypatch.setattr(conv_layer, "WINOGRAD_GROUP_BYTES", 3 * per_image)
    assert [(n0, n1) for n0, n1, _ in layer._winograd_groups(9)] == [(0, 3), (3, 6), (6, 9)]
    grouped = run(layer, x, dout)
    for a, b in zip(whole[:2] + (whole[2]["w"], whole[2]["b"]),
                    grouped[:2] + (grouped[2]["w"], grouped[2]["b"])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4 * np.abs(a).max())


@pytest.mark.parametrize("bias", [True, False])
def test_fc_matches_torch(bias, rng):
    torch = pytest.importorskip("torch", reason="torch is the reference for the fc layer")
    layer = FCLayer(fc_def((20, 4, 4), 10, bias))
    layer.init(rng, np.float64)
    x = rng.standard_normal((3, 20, 4, 4))
    dout = rng.standard_normal((3, 10, 1, 1))
    out, dx, grads = run(layer, x, dout)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.params["w"], requires_grad=True)
    tb = torch.tensor(layer.params["b"], requires_grad=True) if bias else None
    tout = torch.nn.functional.linear(tx.flatten(1), tw, tb)
    tout.backward(torch.tensor(dout.reshape(3, 10)))
    np.testing.assert_allclose(out.reshape(3, 10), tout.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["w"], tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    if bias:
        np.testing.assert_allclose(grads["b"], tb.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("make", [
    lambda: ConvLayer(conv_def((3, 7, 7), 5, 3, 3, pad_y=1, pad_x=1, bias_pref=0.1)),
    lambda: FCLayer(fc_def((3, 7, 7), 5, bias_pref=0.1)),
])
def test_init_registration_and_decay(make, rng):
    layer = make()
    assert LAYER_TYPES[layer.type] is type(layer)
    layer.init(np.random.default_rng(0), np.float32)
    w, b = layer.params["w"], layer.params["b"]
    assert w.dtype == b.dtype == np.float32 and w.flags.c_contiguous
    fan_in = 3 * 7 * 7 if layer.type == "fc" else 3 * 3 * 3
    assert abs(w.std() - np.sqrt(2 / fan_in)) < 0.15 * np.sqrt(2 / fan_in)
    np.testing.assert_array_equal(b, np.float32(0.1))
    assert layer.decay["b"] == (0.0, 0.0)
    assert layer.decay["w"] == ((0.0, 1.0) if layer.type == "conv" else (0.5, 2.0))


def test_no_bias_means_no_b_param(rng):
    for layer in (ConvLayer(conv_def((2, 4, 4), 3, 3, 3, bias=False)),
                  FCLayer(fc_def((2, 4, 4), 3, bias=False))):
        layer.init(rng)
        assert set(layer.params) == set(layer.decay) == {"w"}


@pytest.mark.parametrize("layer", [
    ConvLayer(conv_def((3, 6, 6), 4, 3, 3, 2, 2, 1, 1)),
    FCLayer(fc_def((3, 6, 6), 4)),
])
def test_non_contiguous_input_gradient_accumulation_and_buffer_reuse(layer, rng):
    layer.init(rng, np.float64)
    big = rng.standard_normal((4, 3, 12, 6))
    x = big[::2, :, ::2, :]  # non-contiguous view
    assert not x.flags.c_contiguous
    dout = rng.standard_normal((2,) + layer.out_shape)
    ctx = Context(training=True)
    out, dx, grads = run(layer, x, dout, ctx)
    out2, dx2, grads2 = run(layer, np.ascontiguousarray(x), dout, ctx)
    np.testing.assert_array_equal(out, out2)
    np.testing.assert_array_equal(dx, dx2)
    # backward adds into grads: a second pass doubles them
    out3, cache = layer.forward(x, ctx)
    layer.backward(dout, cache, grads2, ctx)
    for name in grads:
        np.testing.assert_allclose(grads2[name], 2 * grads[name], rtol=1e-12)
    # the same workspace hands out the same buffers every step
    assert layer.forward(x, ctx)[0] is out3


@pytest.mark.parametrize("channels, filters", [(3, 4), (64, 64)])   # direct, Winograd
def test_a_first_layer_skips_dx_only_when_the_pass_needs_none(channels, filters, rng):
    layer = ConvLayer(conv_def((channels, 6, 6), filters, 3, 3, pad_y=1, pad_x=1))
    layer.init(rng)
    x = rng.standard_normal((8, channels, 6, 6)).astype(np.float32)
    out, cache = layer.forward(x, Context())
    needed = layer.backward(np.ones_like(out), cache, grads_for(layer), Context(input_grad=False))
    assert needed is not None                  # not the net's first weighted layer: dx as ever
    layer.first_weighted = True
    grads = grads_for(layer)
    assert layer.backward(np.ones_like(out), cache, grads, Context(input_grad=False)) is None
    assert np.abs(grads["w"]).sum() > 0
    assert layer.backward(np.ones_like(out), cache, grads_for(layer), Context()) is not None


def test_bad_shapes_and_grads_raise_before_any_kernel(rng):
    layer = ConvLayer(conv_def((3, 6, 6), 4, 3, 3))
    with pytest.raises(RuntimeError, match="init"):
        layer.forward(np.zeros((1, 3, 6, 6), np.float32), Context())
    layer.init(rng)
    ctx = Context()
    for bad in (np.zeros((1, 3, 6, 5), np.float32), np.zeros((3, 6, 6), np.float32),
                np.zeros((0, 3, 6, 6), np.float32), np.zeros((1, 3, 6, 6), np.int32)):
        with pytest.raises(ValueError, match="conv layer"):
            layer.forward(bad, ctx)
    out, cache = layer.forward(np.zeros((2, 3, 6, 6), np.float32), ctx)
    with pytest.raises(ValueError, match="dout"):
        layer.backward(np.zeros((1,) + layer.out_shape, np.float32), cache, grads_for(layer), ctx)
    with pytest.raises(ValueError, match="grads"):
        layer.backward(np.zeros_like(out), cache, {"w": np.zeros((4, 3, 3, 3))}, ctx)
    fc = FCLayer(fc_def((3, 6, 6), 4))
    fc.init(rng)
    out, cache = fc.forward(np.zeros((2, 3, 6, 6), np.float32), ctx)
    with pytest.raises(ValueError, match="grads"):
        fc.backward(np.zeros_like(out), cache, {"w": np.zeros((4, 108), np.float32)}, ctx)
