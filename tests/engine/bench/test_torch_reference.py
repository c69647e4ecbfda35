"""Whole nets against their PyTorch twins (engine/bench/torch_reference.py): the scores, the loss,
the input gradient and EVERY parameter gradient, by name, in float32 and float64."""

import numpy as np
import pytest

from engine.layers.base import Context
from engine.net import Net
from engine.presets import load_preset
from engine.spec.net_spec import parse_spec

torch = pytest.importorskip("torch", reason="torch is not installed: skipping the comparison "
                                            "of whole nets with PyTorch")

from engine.bench.torch_reference import (  # noqa: E402  (needs torch)
    engine_grads,
    named_torch_params,
    set_dropout_rng,
    spec_loss,
    torch_grads,
    torch_loss,
    torch_net_from_spec,
    torch_state,
)

TOLERANCES = {np.float32: 1e-4, np.float64: 1e-9}


def assert_close(ours, theirs, dtype, what, floor=0.0):
    """Relative to the array's scale (gradients have elements near zero), or to `floor` for
    arrays that are zero up to rounding (a conv bias in front of batchnorm)."""
    rtol = TOLERANCES[dtype]
    theirs = np.asarray(theirs)
    scale = max(float(np.abs(theirs).max()), floor, 1e-30)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale, err_msg=what)


def targets(spec, n, rng):
    if spec.loss_type == "regression":
        return rng.standard_normal((n, spec.num_outputs))
    return rng.integers(0, spec.num_outputs, n)


def compare(spec, dtype, *, batch=3, training=True, seed=0, steps=1):
    """One (or more) forward/backward passes of our Net and its torch twin on the same batch;
    every output, loss and gradient must agree. Returns (net, tnet) for further checks."""
    rng = np.random.default_rng(seed)
    net = Net(spec, rng=np.random.default_rng(seed + 1), dtype=dtype)
    # Non-trivial batchnorm parameters and statistics, so eval mode tests something.
    for name, arr, _ in net.named_params():
        if name.endswith("gamma") or name.endswith("beta"):
            arr[:] = rng.uniform(0.5, 1.5, arr.shape)
    for name, arr in net.named_buffers():
        arr[:] = rng.uniform(0.5, 1.5, arr.shape)
    tnet = torch_net_from_spec(spec, net)
    tnet.train(training)
    ctx = Context(training=training, rng=np.random.default_rng(seed + 2))
    set_dropout_rng(tnet, np.random.default_rng(seed + 2))
    for _ in range(steps):
        x = rng.standard_normal((batch,) + spec.input_shape).astype(dtype)
        y = targets(spec, batch, rng)
        grads = net.new_grads()
        out, caches, outputs = net.forward(x, ctx)
        loss, dx, _ = net.backward(out, caches, y, grads, ctx)

        xt = torch.from_numpy(x.copy()).requires_grad_()
        scores = tnet(xt)
        tloss = spec_loss(scores, y, spec)    # its label smoothing included
        tloss.backward()
        assert_close(outputs[-2], scores.detach().numpy(), dtype, "scores")
        if spec.loss_type == "softmax":
            probs = torch.softmax(scores.detach().flatten(1), 1).numpy()
            assert_close(out.reshape(batch, -1), probs, dtype, "probabilities")
        assert abs(loss - tloss.item()) <= TOLERANCES[dtype] * max(1.0, abs(loss))
        assert_close(dx, xt.grad.numpy(), dtype, "input gradient")
        ours, theirs = engine_grads(net, grads), torch_grads(tnet)
        assert list(ours) == list(theirs) == [n for n, _, _ in net.named_params()]
        largest = max(float(np.abs(g).max()) for g in theirs.values())
        for name in ours:
            assert_close(ours[name], theirs[name], dtype, f"gradient of {name}", largest)
        for p in tnet.parameters():
            p.grad = None
    state = torch_state(tnet)
    for name, arr in net.named_buffers():
        assert_close(arr, state[name], dtype, f"buffer {name}")
    return net, tnet


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("preset", ["convnetjs", "cifar_small", "cifar_resnet"])
def test_trainable_presets_match_torch(preset, dtype):
    # Train mode: cifar_resnet's batchnorms use batch statistics and update running ones.
    compare(load_preset(preset), dtype, batch=4, steps=2 if preset == "cifar_resnet" else 1)


def test_cifar_resnet_eval_mode_matches_torch():
    compare(load_preset("cifar_resnet"), np.float64, batch=2, training=False)


def test_param_names_follow_the_engine():
    spec = load_preset("cifar_resnet")
    net = Net(spec)
    tnet = torch_net_from_spec(spec, net)
    names = list(named_torch_params(tnet))
    assert names == [n for n, _, _ in net.named_params()]
    assert "4.layers.0.w" in names and "8.shortcut.1.gamma" in names


INPUT = {"type": "input", "out_sx": 7, "out_sy": 6, "out_depth": 3}

# Small nets that between them use every layer type and option of the schema.
SMALL_SPECS = {
    "conv_options": [
        INPUT,
        {"type": "conv", "sx": 3, "sy": 2, "filters": 4, "stride_x": 2, "stride_y": 1,
         "pad_x": 1, "pad_y": 0, "activation": "relu"},
        {"type": "conv", "sx": 2, "filters": 5, "stride": 2, "rounding": "floor", "bias": False},
        {"type": "leaky_relu", "alpha": 0.1},
        {"type": "fc", "num_neurons": 6, "bias": False, "activation": "tanh"},
        {"type": "softmax", "num_classes": 3},
    ],
    "pools_and_activations": [
        INPUT,
        {"type": "conv", "sx": 3, "filters": 4, "pad": 1, "activation": "sigmoid"},
        {"type": "pool", "sx": 3, "stride": 2, "pad": 1, "mode": "avg", "rounding": "floor"},
        {"type": "pool", "sx": 2, "sy": 3, "stride": 1, "pad_x": 1, "pad_y": 1},
        {"type": "maxout", "group_size": 2},
        {"type": "lrn", "n": 3, "k": 1.5, "alpha": 0.3, "beta": 0.6},
        {"type": "svm", "num_classes": 4},
    ],
    "dropout_and_regression": [
        INPUT,
        {"type": "conv", "sx": 3, "filters": 6, "activation": "maxout", "group_size": 3,
         "drop_prob": 0.3},
        {"type": "fc", "num_neurons": 8, "activation": "relu", "drop_prob": 0.5},
        {"type": "regression", "num_neurons": 2},
    ],
    "gelu": [  # the speedrun's conv -> batchnorm -> gelu, gelu as conv/fc sugar and in a block
        INPUT,
        {"type": "conv", "sx": 3, "filters": 4, "pad": 1, "bias": False},
        {"type": "batchnorm"},
        {"type": "gelu"},
        {"type": "residual", "layers": [{"type": "conv", "sx": 3, "filters": 4, "pad": 1,
                                         "activation": "gelu"}]},
        {"type": "pool", "sx": 2, "stride": 2, "rounding": "floor"},
        {"type": "fc", "num_neurons": 6, "activation": "gelu"},
        {"type": "scale", "factor": 0.25},       # airbench94's head: scaled scores
        {"type": "softmax", "num_classes": 3, "label_smoothing": 0.1},
    ],
    "blocks": [
        INPUT,
        {"type": "concat", "branches": [
            [{"type": "conv", "sx": 1, "filters": 2}],
            [{"type": "conv", "sx": 3, "filters": 3, "pad": 1}, {"type": "batchnorm",
                                                                "momentum": 0.3, "eps": 1e-3}],
            [{"type": "pool", "sx": 3, "stride": 1, "pad": 1}]]},
        {"type": "residual", "layers": [
            {"type": "conv", "sx": 3, "filters": 8, "pad": 1, "bias": False},
            {"type": "batchnorm"}, {"type": "relu"}]},
        {"type": "residual", "layers": [{"type": "relu"}, {"type": "conv", "sx": 3, "pad": 1,
                                                             "filters": 8}]},
        {"type": "global_avg_pool"},
        {"type": "softmax", "num_classes": 5},
    ],
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(SMALL_SPECS))
def test_every_layer_type_matches_torch(name, dtype):
    compare(parse_spec(SMALL_SPECS[name]), dtype, batch=3, steps=2)


@pytest.mark.parametrize("name", ["blocks", "dropout_and_regression", "gelu"])
def test_eval_mode_matches_torch(name):
    compare(parse_spec(SMALL_SPECS[name]), np.float64, batch=2, training=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_label_smoothing_matches_torch_cross_entropy_loss(dtype):
    layers = [dict(d) for d in load_preset("convnetjs").to_json()]
    layers[-1]["label_smoothing"] = 0.1
    spec = parse_spec(layers)
    assert spec.layers[-1]["label_smoothing"] == 0.1
    compare(spec, dtype, batch=4, steps=2)
    # and the twin's loss is torch's own CrossEntropyLoss(label_smoothing=0.1)
    scores = torch.randn(4, 10, 1, 1, dtype=torch.float64)
    y = np.array([0, 3, 9, 3])
    expected = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(scores.flatten(1),
                                                              torch.from_numpy(y))
    assert spec_loss(scores, y, spec).item() == pytest.approx(expected.item(), rel=1e-15)
    assert spec_loss(scores, y, spec).item() != pytest.approx(
        torch_loss(scores, y, "softmax").item(), rel=1e-6)


def test_every_schema_layer_type_is_covered():
    from engine.spec.layers import LAYER_KEYS

    def types(defs):
        for d in defs:
            yield d["type"]
            for chain in d.get("branches", []) + [d.get("layers", []), d.get("shortcut", [])]:
                yield from types(chain)

    seen = {t for spec in SMALL_SPECS.values() for t in types(parse_spec(spec).layers)}
    assert seen == set(LAYER_KEYS)


def test_torch_module_trains_like_ours_with_momentum():
    """Three momentum-SGD steps on both sides end at the same weights (float64)."""
    from engine.optim import Optimizer
    spec = parse_spec(SMALL_SPECS["blocks"])
    net = Net(spec, dtype=np.float64)
    tnet = torch_net_from_spec(spec, net)
    opt = Optimizer(net.named_params(), method="momentum", learning_rate=0.05, momentum=0.9)
    topt = torch.optim.SGD(tnet.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(3)
    grads, ctx = net.new_grads(), Context(training=True)
    for _ in range(3):
        x = rng.standard_normal((4,) + spec.input_shape)
        y = rng.integers(0, 5, 4)
        net.zero_grads(grads)
        net.loss_and_grads(x, y, grads, ctx)
        opt.step(net.named_grads(grads))
        topt.zero_grad()
        torch_loss(tnet(torch.from_numpy(x)), y, "softmax").backward()
        topt.step()
    state = torch_state(tnet)
    largest = max(float(np.abs(arr).max()) for _, arr, _ in net.named_params())
    for name, arr, _ in net.named_params():
        # A conv bias in front of batchnorm has a zero gradient up to rounding.
        assert_close(arr, state[name], np.float64, name, largest)
