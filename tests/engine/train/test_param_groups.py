"""Which parameters the trainer's optimizer leaves alone or steps at another rate: a
whitening conv's bias frozen after "bias_epochs" epochs, a batch norm's gamma fixed at 1 by
"scale": false, its "lr_mul"; kept through a new net and a snapshot."""

import numpy as np
import pytest

from engine.formats.snapshot import dumps, loads, snapshot_to_json
from engine.train.param_groups import fixed_params, lr_multipliers
from engine.train.trainer import Trainer, TrainOptions
from tests.builders import INPUT, learnable_folder, open_folder, tiny_net, tiny_spec

HP = {"method": "nesterov", "learning_rate": 0.05, "batch_size": 8, "l2_decay": 1e-3}
BN = {"type": "batchnorm", "scale": False, "lr_mul": 4, "l2_decay_mul": 1, "momentum": 0.4}
LAYERS = [INPUT, {"type": "conv", "sx": 2, "filters": 24, "init": "whiten", "bias_epochs": 1},
          {"type": "conv", "sx": 4, "stride": 4, "filters": 4, "bias": False,
           "rounding": "floor"},
          BN, {"type": "gelu"},
          {"type": "pool", "sx": 2, "stride": 2, "rounding": "floor"},
          {"type": "scale", "factor": 1 / 9},
          {"type": "softmax", "num_classes": 3, "bias": False}]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("groups")
    return open_folder(learnable_folder(root / "photos"), root / "cache")


def make(dataset, layers=LAYERS):
    return Trainer(tiny_net(layers, seed=3), dataset, dict(HP), TrainOptions(seed=3))


def test_the_groups_of_the_net():
    net = tiny_net(LAYERS, seed=3)
    assert lr_multipliers(net) == {"3.gamma": 4.0, "3.beta": 4.0}
    assert fixed_params(net, 0) == ("3.gamma", "1.w")
    assert fixed_params(net, 1) == ("3.gamma", "1.w", "1.b")
    assert "b" not in net.layers[-2].params          # the softmax's fc has no bias


def test_the_whitening_bias_trains_for_its_epochs_then_stays(dataset):
    trainer = make(dataset)
    bias = trainer.net.layers[1].params["b"]
    gamma = trainer.net.layers[3].params["gamma"]
    beta = trainer.net.layers[3].params["beta"]
    assert trainer.optimizer.lr_muls == {"3.gamma": 4.0, "3.beta": 4.0}
    start = bias.copy()
    while trainer.epoch == 0:
        trainer.step()
    assert not np.array_equal(bias, start)            # trained in epoch 0
    frozen_at, beta_at = bias.copy(), beta.copy()
    for _ in range(4):
        trainer.step()
    assert trainer.optimizer.frozen == {"1.w", "1.b", "3.gamma"}
    np.testing.assert_array_equal(bias, frozen_at)     # then frozen
    assert not np.array_equal(beta, beta_at)           # while the rest trains
    np.testing.assert_array_equal(gamma, np.ones(4))   # "scale": false: always 1


def test_a_snapshot_at_a_later_epoch_keeps_the_bias_frozen(dataset):
    trainer = make(dataset)
    while trainer.epoch == 0:
        trainer.step()
    trainer.step()
    snapshot = loads(dumps(snapshot_to_json(trainer.net, **trainer.snapshot_kwargs())))
    other = make(dataset, [INPUT, {"type": "conv", "sx": 4, "stride": 4, "filters": 4},
                           {"type": "softmax", "num_classes": 3}])
    other.load(snapshot)
    assert other.optimizer.lr_muls == {"3.gamma": 4.0, "3.beta": 4.0}
    bias = other.net.layers[1].params["b"].copy()
    other.step()
    assert other.optimizer.frozen == {"1.w", "1.b", "3.gamma"}
    np.testing.assert_array_equal(other.net.layers[1].params["b"], bias)


def test_a_new_net_brings_its_groups(dataset):
    trainer = make(dataset, [INPUT, {"type": "conv", "sx": 4, "stride": 4, "filters": 4},
                             {"type": "softmax", "num_classes": 3}])
    assert trainer.optimizer.lr_muls == {} and trainer.optimizer.frozen == frozenset()
    trainer.set_net(tiny_spec(LAYERS))
    assert trainer.optimizer.lr_muls == {"3.gamma": 4.0, "3.beta": 4.0}
    assert trainer.optimizer.frozen == {"1.w", "3.gamma"}
    trainer.step()
    np.testing.assert_array_equal(trainer.net.layers[3].params["gamma"], np.ones(4))
