"""The whole Net: gradient checks through every layer at once, a golden training trajectory,
learning on one batch, spec round trips and determinism."""

import numba
import numpy as np
import pytest

from engine.layers.base import Context
from engine.net import Net
from engine.optim import Optimizer
from engine.presets import PRESETS, TRAINABLE, load_preset
from engine.spec.net_spec import parse_spec
from tests.gradcheck import numerical_grad, rel_error

CONV_POOL_FC = [
    {"type": "input", "out_sx": 6, "out_sy": 5, "out_depth": 2},
    {"type": "conv", "sx": 3, "filters": 3, "pad": 1, "activation": "relu"},
    {"type": "pool", "sx": 2, "stride": 2, "rounding": "floor"},
    {"type": "fc", "num_neurons": 5, "activation": "tanh"},
    {"type": "softmax", "num_classes": 4},
]
RESIDUAL_BN_GAP = [
    {"type": "input", "out_sx": 5, "out_sy": 5, "out_depth": 3},
    {"type": "conv", "sx": 3, "filters": 4, "pad": 1, "bias": False},
    {"type": "batchnorm"},
    {"type": "relu"},
    {"type": "residual", "layers": [  # 5x5x4 -> 3x3x6: a projection shortcut (1x1 conv + bn)
        {"type": "conv", "sx": 3, "filters": 6, "pad": 1, "stride": 2, "bias": False},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "conv", "sx": 3, "filters": 6, "pad": 1, "bias": False},
        {"type": "batchnorm"}]},
    {"type": "relu"},
    {"type": "global_avg_pool"},
    {"type": "softmax", "num_classes": 3},
]
CONCAT = [
    {"type": "input", "out_sx": 4, "out_sy": 4, "out_depth": 2},
    {"type": "concat", "branches": [
        [{"type": "conv", "sx": 1, "filters": 2}],
        [{"type": "conv", "sx": 3, "filters": 3, "pad": 1, "activation": "relu"}],
        [{"type": "pool", "sx": 3, "stride": 1, "pad": 1}, {"type": "conv", "sx": 1,
                                                           "filters": 1}]]},
    {"type": "conv", "sx": 2, "filters": 3, "stride": 2},
    {"type": "svm", "num_classes": 3},
]


@pytest.fixture
def one_thread():
    """For tests that run hundreds of tiny passes: while other processes load the CPU, every
    parallel region can wait a scheduler time slice for a preempted worker thread (measured:
    a gradient check 0.4 s with one thread, 8 s with two). One thread computes the same bits
    (test_one_or_two_threads_compute_the_same_bits)."""
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(previous)


def check_gradients(layers, batch, rng, per_param=4):
    spec = parse_spec(layers)
    net = Net(spec, rng=np.random.default_rng(7), dtype=np.float64)
    for name, arr, _ in net.named_params():  # batchnorm's gamma/beta away from 1/0
        if name.endswith(("gamma", "beta")):
            arr[:] = rng.uniform(0.5, 1.5, arr.shape)
    x = rng.standard_normal((batch,) + spec.input_shape)
    y = rng.integers(0, spec.num_outputs, batch)
    ctx = Context(training=True)

    def loss():
        out, caches, _ = net.forward(x, ctx)
        return net.loss_layer.loss(out, caches[-1], y, ctx)[0]

    grads = net.new_grads()
    out, caches, _ = net.forward(x, ctx)
    _, dx, _ = net.backward(out, caches, y, grads, ctx)
    numeric = numerical_grad(loss, x)
    # Scaled by the largest element: central differences carry ~1e-10 absolute error, which
    # is a large relative error on the tiny elements.
    assert np.abs(dx - numeric).max() <= 1e-6 * np.abs(numeric).max()
    assert rel_error(dx, numeric) < 1e-3
    for name, param, grad, _ in net.named_grads(grads):
        flat, gflat = param.reshape(-1), grad.reshape(-1)
        scale = max(float(np.abs(gflat).max()), 1e-3)
        for i in rng.choice(flat.size, min(per_param, flat.size), replace=False):
            numeric = numerical_grad(loss, flat[i:i + 1])[0]
            assert abs(numeric - gflat[i]) <= 1e-6 * scale, (name, i, numeric, gflat[i])
    return net


@pytest.mark.parametrize("layers", [CONV_POOL_FC, RESIDUAL_BN_GAP, CONCAT],
                         ids=["conv_pool_fc", "residual_bn_gap", "concat"])
def test_gradients_match_central_differences(layers, rng, one_thread):
    check_gradients(layers, 3, rng)


def test_projection_shortcut_is_in_the_gradient_check(rng, one_thread):
    net = check_gradients(RESIDUAL_BN_GAP, 2, rng, per_param=1)
    names = [n for n, _, _ in net.named_params()]
    assert "4.shortcut.0.w" in names and "4.shortcut.1.gamma" in names


DROPOUT_FIRST = [{"type": "input", "out_sx": 5, "out_sy": 5, "out_depth": 2},
                 {"type": "dropout", "drop_prob": 0.0},
                 {"type": "residual", "layers": [{"type": "conv", "sx": 3, "filters": 2,
                                                  "pad": 1}]},
                 {"type": "conv", "sx": 3, "filters": 3, "pad": 1},
                 {"type": "softmax", "num_classes": 3}]


@pytest.mark.parametrize("layers", [CONV_POOL_FC, RESIDUAL_BN_GAP, CONCAT, DROPOUT_FIRST],
                         ids=["conv_first", "conv_bn", "concat_first", "residual_first"])
def test_a_pass_without_input_grad_gives_the_same_weight_gradients(layers, rng):
    spec = parse_spec(layers)
    net = Net(spec, rng=np.random.default_rng(3))
    x = rng.standard_normal((2,) + spec.input_shape).astype(np.float32)
    y = rng.integers(0, spec.num_outputs, 2)
    results = []
    for input_grad in (True, False):
        ctx = Context(training=True, input_grad=input_grad)
        grads = net.new_grads()
        out, caches, _ = net.forward(x, ctx)
        loss, dx, _ = net.backward(out, caches, y, grads, ctx)
        results.append((loss, dx, grads))
    (loss, dx, grads), (loss2, dx2, grads2) = results
    assert dx is not None and loss2 == loss
    # Only a net that starts with a conv or fc may skip dx; the others compute it anyway.
    assert (dx2 is None) == (layers[1]["type"] == "conv")
    for g, g2 in zip(grads, grads2):
        for name in g:
            np.testing.assert_array_equal(g2[name], g[name])


def trajectory(spec, steps=10, batch=8, seed=42, **hyper):
    """Losses of `steps` momentum-SGD steps on seeded random batches (float32)."""
    net = Net(spec, rng=np.random.default_rng(0))
    opt = Optimizer(net.named_params(), method="momentum",
                    **({"learning_rate": 0.001, "momentum": 0.9} | hyper))
    rng = np.random.default_rng(seed)
    grads, ctx = net.new_grads(), Context(training=True, rng=np.random.default_rng(seed))
    losses = []
    for _ in range(steps):
        x = rng.standard_normal((batch,) + spec.input_shape).astype(np.float32)
        y = rng.integers(0, spec.num_outputs, batch)
        net.zero_grads(grads)
        loss, _ = net.loss_and_grads(x, y, grads, ctx)
        opt.step(net.named_grads(grads))
        losses.append(loss)
    return losses, net


# Produced by this engine once (float32, 2 threads). A change here means the numerics changed:
# make sure that was intended (e.g. a different summation order) before updating the numbers.
# (float64 runs agree with these to ~2e-7, so summation order alone stays well inside 1e-5.)
GOLDEN_CONVNETJS = [
    2.4463448, 2.4581584, 2.4613680, 2.3119288, 2.7715214,
    2.2373846, 2.3980902, 3.0962353, 2.2470278, 2.4466527,
]


def test_golden_trajectory_of_the_convnetjs_preset(one_thread):
    losses, _ = trajectory(load_preset("convnetjs"))
    np.testing.assert_allclose(losses, GOLDEN_CONVNETJS, rtol=1e-5)


@pytest.mark.parametrize("name", TRAINABLE)
def test_a_fresh_net_starts_at_the_chance_loss(name, rng, one_thread):
    # The lecture's sanity check: before training, softmax over 10 classes gives ln(10).
    spec = load_preset(name)
    net = Net(spec, rng=np.random.default_rng(0))
    x = rng.standard_normal((64,) + spec.input_shape).astype(np.float32)
    out = net.predict(x, Context(training=True))
    y = rng.integers(0, 10, 64)
    loss = -np.log(out.reshape(64, 10)[np.arange(64), y]).mean()
    assert abs(loss - np.log(10)) < 0.2          # with He init on the classifier: 4-8


def test_training_on_one_batch_raises_its_class_probabilities(one_thread):
    spec = load_preset("convnetjs")
    net = Net(spec, rng=np.random.default_rng(0))
    opt = Optimizer(net.named_params(), method="momentum", learning_rate=0.01, momentum=0.9)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8,) + spec.input_shape).astype(np.float32)
    y = rng.integers(0, 10, 8)
    grads, ctx = net.new_grads(), Context(training=True)

    def label_probs():
        return net.predict(x)[np.arange(8), y, 0, 0].copy()

    before = label_probs()
    for _ in range(30):
        net.zero_grads(grads)
        net.loss_and_grads(x, y, grads, ctx)
        opt.step(net.named_grads(grads))
    after = label_probs()
    assert after.mean() > 0.9 > 0.3 > before.mean()
    assert (after > before).all()


@pytest.mark.parametrize("name", PRESETS)
def test_spec_round_trip(name):
    spec = load_preset(name, budget=None)
    again = parse_spec(spec.to_json(), budget=None)
    assert again == spec
    assert parse_spec(spec.to_document(), budget=None) == spec
    if name in TRAINABLE:  # the case studies are too big to allocate here
        ours = [(n, a.shape) for n, a, _ in Net(spec).named_params()]
        theirs = [(n, a.shape) for n, a, _ in Net(again).named_params()]
        assert ours == theirs
        assert [n for n, _ in Net(spec).named_buffers()] == \
            [n for n, _ in Net(again).named_buffers()]


DROPOUT_NET = [
    {"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 3},
    {"type": "conv", "sx": 3, "filters": 6, "pad": 1, "activation": "relu", "drop_prob": 0.3},
    {"type": "pool", "sx": 2},
    {"type": "fc", "num_neurons": 10, "activation": "relu", "drop_prob": 0.5},
    {"type": "softmax", "num_classes": 3},
]


@pytest.mark.parametrize("layers", [None, DROPOUT_NET], ids=["convnetjs", "dropout"])
def test_same_seed_same_trajectory(layers, one_thread):
    spec = load_preset("convnetjs") if layers is None else parse_spec(layers)
    first, net1 = trajectory(spec, steps=5)
    second, net2 = trajectory(spec, steps=5)
    assert first == second
    for (name, a, _), (_, b, _) in zip(net1.named_params(), net2.named_params()):
        assert np.array_equal(a, b), name
    other, _ = trajectory(spec, steps=5, seed=43)
    assert other != first


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
@pytest.mark.parametrize("preset", ["convnetjs", "cifar_resnet"])
def test_one_or_two_threads_compute_the_same_bits(preset):
    """Parallel loops only split work each thread owns, so the thread count changes nothing."""
    spec = load_preset(preset)
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(2)
        two, net2 = trajectory(spec, steps=2, batch=4)
        numba.set_num_threads(1)
        one, net1 = trajectory(spec, steps=2, batch=4)
    finally:
        numba.set_num_threads(previous)
    assert one == two
    for (name, a, _), (_, b, _) in zip(net1.named_params(), net2.named_params()):
        assert np.array_equal(a, b), name


@pytest.mark.parametrize("labels, message", [
    ([0, 1, 10], r"labels must lie in 0\.\.3, got values from 0 to 10"),
    ([0, 1], r"expected 3 labels"),
    ([0.0, 1.0, 2.0], "labels must be integers"),
])
def test_bad_labels_are_refused_before_any_gradient_is_touched(labels, message, rng):
    net = Net(parse_spec(CONV_POOL_FC), rng=np.random.default_rng(0))
    grads, ctx = net.new_grads(), Context(training=True)
    x = rng.standard_normal((3, 2, 5, 6)).astype(np.float32)
    with pytest.raises(ValueError, match=message):
        net.loss_and_grads(x, np.array(labels), grads, ctx)
    assert all(not g.any() for layer_grads in grads for g in layer_grads.values())


def test_conv_and_relu_run_fused_with_the_same_bits_as_layer_by_layer(rng):
    # The convnetjs preset: three conv + relu pairs that Net runs as one pass each.
    spec = load_preset("convnetjs")
    fused, plain = (Net(spec, rng=np.random.default_rng(0)) for _ in range(2))
    assert fused.fused_relu == {1, 4, 7}
    plain.fused_relu = frozenset()
    x = rng.standard_normal((3,) + spec.input_shape).astype(np.float32)
    y = np.array([1, 5, 9])
    results = []
    for net in (fused, plain):
        grads, ctx = net.new_grads(), Context(training=True, timings=[])
        out, caches, outputs = net.forward(x, ctx)
        loss, dx, _ = net.backward(out, caches, y, grads, ctx)
        results.append(([o.copy() for o in outputs], loss, dx.copy(), grads, ctx.timings))
    (outs_f, loss_f, dx_f, grads_f, times_f), (outs_p, loss_p, dx_p, grads_p, _) = results
    for a, b in zip(outs_f, outs_p):
        np.testing.assert_array_equal(a, b)
    assert loss_f == loss_p
    np.testing.assert_array_equal(dx_f, dx_p)
    for gf, gp in zip(grads_f, grads_p):
        for name in gf:
            np.testing.assert_array_equal(gf[name], gp[name])
    # every layer still has a time, forward and backward; a fused relu's counts in its conv
    assert sorted({(p, i) for p, i, _ in times_f}) == sorted(
        {(p, i) for p in ("forward", "backward") for i in range(len(fused.layers))})
    assert all(s == 0.0 for p, i, s in times_f if i in (2, 5, 8))


def test_keeping_every_layer_gradient_gives_the_relu_gradients_too(rng):
    # keep_grads asks for dL/d(each layer's output): the backward then runs layer by layer.
    spec = load_preset("convnetjs")
    net = Net(spec, rng=np.random.default_rng(0))
    x = rng.standard_normal((2,) + spec.input_shape).astype(np.float32)
    grads, ctx = net.new_grads(), Context(training=True)
    out, caches, outputs = net.forward(x, ctx)
    _, _, kept = net.backward(out, caches, np.array([0, 1]), grads, ctx, keep_grads=True)
    relu_grad, conv_grad = kept[2], kept[1]
    np.testing.assert_array_equal(conv_grad, np.where(outputs[2] > 0, relu_grad, 0))


def _compiled_signatures() -> int:
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    import engine.kernels
    import engine.optim.rules
    modules = [importlib.import_module(f"engine.kernels.{m.name}")
               for m in pkgutil.iter_modules(engine.kernels.__path__)] + [engine.optim.rules]
    return sum(len(v.signatures) for m in modules for v in vars(m).values()
               if isinstance(v, CPUDispatcher))


def test_new_shapes_and_batch_sizes_compile_no_new_kernels(rng):
    # Kernels take shapes as values (a plain tuple of ints), so a server that sees many nets
    # and batch sizes keeps one compiled version per kernel and dtype, not one per shape.
    def train(spec, batch):
        net = Net(spec)
        optimizer, grads = Optimizer(net.named_params(), method="momentum"), net.new_grads()
        x = rng.standard_normal((batch,) + spec.input_shape).astype(np.float32)
        y = np.arange(batch) % spec.num_outputs
        net.loss_and_grads(x, y, grads, Context(training=True, input_grad=False))
        optimizer.step(net.named_grads(grads))
        net.predict(x[:1])

    spec = load_preset("convnetjs")
    train(spec, 4)
    before = _compiled_signatures()
    train(spec, 9)
    layers = [dict(layer) for layer in spec.to_json()]
    layers[0].update(out_sx=24, out_sy=24)
    for layer in layers:
        if layer["type"] == "conv":
            layer["filters"] -= 8
    train(parse_spec(layers), 5)
    assert _compiled_signatures() == before


def test_backward_from_the_loss_gradient_is_backward(rng):
    # Net.backward is the loss layer, then backward_from: one loop for training, frames and
    # saliency maps (which start from a one-hot of a class's score).
    spec = parse_spec(CONV_POOL_FC)
    net = Net(spec, rng=np.random.default_rng(2), dtype=np.float64)
    x = rng.standard_normal((2,) + spec.input_shape)
    y = np.array([1, 3])
    ctx = Context(training=True)
    grads, grads_from = net.new_grads(), net.new_grads()
    out, caches, _ = net.forward(x, ctx)
    _, dx, kept = net.backward(out, caches, y, grads, ctx, keep_grads=True)
    _, dscores = net.loss_layer.loss(out, caches[-1], y, ctx)
    dx_from, kept_from = net.backward_from(dscores, caches, grads_from, ctx, keep_grads=True)
    np.testing.assert_array_equal(dx, dx_from)
    for a, b in zip(kept, kept_from):
        assert (a is None and b is None) or np.array_equal(a, b)
    for g, h in zip(grads, grads_from):
        assert all(np.array_equal(g[k], h[k]) for k in g)
    with pytest.raises(ValueError, match=r"must have shape \(N, 4, 1, 1\)"):
        net.backward_from(np.zeros((2, 5, 1, 1)), caches, grads_from, ctx)
