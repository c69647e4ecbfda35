"""The benchmark's NumPy contender (engine/bench/numpy_net.py) trains what our Net trains: the
same loss, label smoothing included, and the same gradients, in float64."""

import numpy as np
import pytest

from engine.bench.numpy_net import NumpyNet
from engine.layers.base import Context
from engine.net import Net
from engine.presets import load_preset
from engine.spec.net_spec import parse_spec


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_numpy_net_loss_and_gradients_match_ours(smoothing):
    layers = [dict(d) for d in load_preset("convnetjs").to_json()]
    layers[-1]["label_smoothing"] = smoothing
    net = Net(parse_spec(layers), dtype=np.float64, rng=np.random.default_rng(0))
    reference = NumpyNet(net)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((3, 3, 32, 32)), rng.integers(0, 10, 3)
    grads = net.new_grads()
    loss, _ = net.loss_and_grads(x, y, grads, Context(training=True))
    assert reference.loss_and_grads(x, y) == pytest.approx(loss, rel=1e-12)
    for name, _, grad, _ in net.named_grads(grads):
        np.testing.assert_allclose(reference.grads[name], grad, rtol=1e-9,
                                   atol=1e-12 * np.abs(grad).max(), err_msg=name)
