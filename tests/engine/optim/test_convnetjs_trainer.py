"""Trainer options read from ConvNetJS (from_convnetjs) train as ConvNetJS's own Trainer does:
from the same weights and the same images, a few updates land on the same weights. Options left
out take ConvNetJS's defaults (its eps is 1e-8, ours 1e-6: with ours, adadelta's first steps
move the weights about ten times further)."""

import numpy as np
import pytest

from engine.formats.convnetjs import export_convnetjs, import_convnetjs
from engine.data import preprocess
from engine.data.normalize import CONVNETJS_INPUT
from engine.layers.base import Context
from engine.net import Net
from engine.optim import Optimizer, from_convnetjs
from engine.spec.net_spec import parse_spec
from tests.naive import convnetjs_node

LAYERS = [{"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 3},
          {"type": "conv", "sx": 3, "filters": 4, "stride": 1, "pad": 1, "activation": "relu"},
          {"type": "pool", "sx": 2, "stride": 2},
          {"type": "softmax", "num_classes": 3}]
BATCH, UPDATES = 4, 3


def _train_ours(net, options, images, labels):
    optimizer = Optimizer(net.named_params(), from_convnetjs(options))
    grads = net.new_grads()
    ctx = Context(training=True)
    x = preprocess(images, CONVNETJS_INPUT).astype(np.float64)
    for start in range(0, len(images), BATCH):
        Net.zero_grads(grads)
        net.loss_and_grads(x[start:start + BATCH], labels[start:start + BATCH], grads, ctx)
        optimizer.step(net.named_grads(grads))


@pytest.mark.parametrize("method", ["adadelta", "adagrad", "windowgrad", "sgd", "nesterov"])
def test_updates_from_convnetjs_options_match_convnetjs(method):
    rng = np.random.default_rng(11)
    net = Net(parse_spec(LAYERS), rng=rng, dtype=np.float64)
    images = rng.integers(0, 256, size=(BATCH * UPDATES, 8, 8, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, size=BATCH * UPDATES)
    before = {name: arr.copy() for name, arr, _ in net.named_params()}
    options = {"method": method, "batch_size": BATCH, "l2_decay": 0.01}  # the rest: defaults
    theirs = import_convnetjs(convnetjs_node.train(export_convnetjs(net), options, images,
                                                   labels)).params
    _train_ours(net, options, images, labels)
    for name, arr, _ in net.named_params():
        ours_moved, theirs_moved = arr - before[name], theirs[name] - before[name]
        scale = np.abs(theirs_moved).max()
        assert scale > 1e-6, name                 # the weights did move
        # theirs went through float32 (import): ~1e-7 relative to the weights themselves
        np.testing.assert_allclose(ours_moved, theirs_moved, rtol=0,
                                   atol=1e-3 * scale + 1e-6 * np.abs(arr).max(), err_msg=name)
