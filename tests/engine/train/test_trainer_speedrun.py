"""The trainer with the speedrun's pieces: lookahead (numbers by hand against a run without
it), the whitening conv (set from the data, frozen, set again by a reset and a new net, kept
by a snapshot)."""

import numpy as np
import pytest

from engine.formats.snapshot import dumps, loads, snapshot_to_json
from engine.train.trainer import Trainer, TrainOptions
from engine.train.whitening import whitened_layer
from tests.builders import BN_LAYERS, INPUT, learnable_folder, open_folder, tiny_net, tiny_spec

HP = {"method": "momentum", "learning_rate": 0.05, "batch_size": 8, "total_steps": 5}
WHITEN_LAYERS = [INPUT, {"type": "conv", "sx": 2, "filters": 24, "init": "whiten"},
                 {"type": "conv", "sx": 4, "stride": 4, "filters": 4, "activation": "gelu",
                  "rounding": "floor"},
                 {"type": "pool", "sx": 2, "stride": 2, "rounding": "floor"},
                 {"type": "softmax", "num_classes": 3}]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("speedrun")
    return open_folder(learnable_folder(root / "photos"), root / "cache")


def make(dataset, hp, layers=BN_LAYERS):
    return Trainer(tiny_net(layers, seed=5), dataset, dict(hp), TrainOptions(seed=5))


def state(trainer):
    return ({n: a.copy() for n, a, _ in trainer.net.named_params()}
            | {n: a.copy() for n, a in trainer.net.named_buffers()})


def test_lookahead_pulls_back_to_the_slow_weights_every_five_steps(dataset):
    plain = make(dataset, HP)
    look = make(dataset, {**HP, "lookahead": 0.6, "lookahead_every": 5})
    start = state(look)
    assert start.keys() == state(plain).keys() and any("running" in k or "mean" in k
                                                       for k in start if k.startswith("2."))
    for _ in range(4):
        plain.step()
        look.step()
    fast4 = state(plain)
    assert all(np.array_equal(fast4[k], state(look)[k]) for k in fast4)   # no pull-back yet
    plain.step()
    look.step()
    fast = state(plain)
    # t = 5 = total_steps: the ramp is at its full decay, 0.6 * (5 / 5)^3
    for k in fast:
        np.testing.assert_allclose(state(look)[k], 0.6 * start[k] + 0.4 * fast[k],
                                   rtol=1e-6, atol=1e-7, err_msg=k)
    changed = [k for k in fast if not np.array_equal(fast[k], start[k])]
    assert any(k.endswith(".w") for k in changed) and len(changed) >= 3


def test_the_ramp_weighs_early_pull_backs_lightly(dataset):
    plain = make(dataset, {**HP, "total_steps": 10})
    look = make(dataset, {**HP, "total_steps": 10, "lookahead": 0.8})
    start = state(look)
    for _ in range(5):
        plain.step()
        look.step()
    fast, got = state(plain), state(look)
    decay = 0.8 * 0.5 ** 3                      # t = 5 of 10
    for k in fast:
        np.testing.assert_allclose(got[k], decay * start[k] + (1 - decay) * fast[k],
                                   rtol=1e-6, atol=1e-7, err_msg=k)


def test_the_slow_copy_exists_only_while_lookahead_is_on(dataset):
    trainer = make(dataset, HP)
    assert trainer._lookahead is None
    trainer.step()
    trainer.apply({"lookahead": 0.5, "lookahead_every": 2})
    assert trainer.settings()["lookahead"] == 0.5
    slow = trainer._lookahead.slow
    assert all(np.array_equal(s, a) for s, a in zip(slow, state(trainer).values()))
    trainer.apply({"lookahead": 0.0})
    trainer.step()
    assert trainer._lookahead is None


def test_finish_lookahead_averages_in_the_updates_since_the_last_pull_back(dataset):
    trainer = make(dataset, {**HP, "lookahead": 0.5})
    for _ in range(7):                          # pull-back at 5, two updates since
        trainer.step()
    slow = [s.copy() for s in trainer._lookahead.slow]
    fast = list(state(trainer).values())
    assert not all(np.array_equal(s, a) for s, a in zip(slow, fast))
    trainer.finish_lookahead()                  # t = 7 > total_steps: the full decay, 0.5
    for s, f, now in zip(slow, fast, state(trainer).values()):
        np.testing.assert_allclose(now, 0.5 * s + 0.5 * f, rtol=1e-6, atol=1e-7)
    make(dataset, HP).finish_lookahead()        # off: nothing to do


def test_the_whitening_conv_is_set_from_the_data_and_frozen(dataset):
    untouched = tiny_net(WHITEN_LAYERS, seed=5).layers[1].params["w"].copy()
    trainer = make(dataset, HP, WHITEN_LAYERS)
    assert whitened_layer(trainer.net.spec) == 1
    w = trainer.net.layers[1].params["w"]
    whitened = w.copy()
    assert not np.allclose(whitened, untouched)
    np.testing.assert_array_equal(whitened[12:], -whitened[:12])
    assert trainer.optimizer.frozen == {"1.w"}
    b = trainer.net.layers[1].params["b"].copy()
    for _ in range(3):
        trainer.step()
    np.testing.assert_array_equal(w, whitened)                        # frozen
    assert not np.array_equal(trainer.net.layers[1].params["b"], b)   # the bias trains
    trainer.reset()
    np.testing.assert_array_equal(trainer.net.layers[1].params["w"], whitened)
    assert trainer.optimizer.frozen == {"1.w"}


def test_a_new_net_is_whitened_and_a_snapshot_keeps_its_weights(dataset):
    trainer = make(dataset, HP)
    assert trainer.optimizer.frozen == frozenset()
    trainer.set_net(tiny_spec(WHITEN_LAYERS))
    whitened = trainer.net.layers[1].params["w"].copy()
    np.testing.assert_array_equal(whitened[12:], -whitened[:12])
    trainer.step()
    snapshot = loads(dumps(snapshot_to_json(trainer.net, **trainer.snapshot_kwargs())))
    other = make(dataset, {**HP, "lookahead": 0.3})
    other.load(snapshot)
    np.testing.assert_array_equal(other.net.layers[1].params["w"], whitened)
    assert other.optimizer.frozen == {"1.w"}
    assert other.optimizer.hp.lookahead == 0.0       # the snapshot's settings


def test_a_presets_hyperparameters_and_options_come_in_with_its_net(dataset):
    from engine.presets import training_options
    trainer = make(dataset, HP)
    trainer.set_net(tiny_spec(WHITEN_LAYERS),
                    settings={"lookahead": 0.5, "lookahead_every": 3, "tta": "flip",
                              **training_options("cifar_speedrun")})
    settings = trainer.settings()
    assert (settings["lookahead"], settings["flip"], settings["shift_fill"], settings["tta"]) \
        == (0.5, "alternate", "reflect", "flip")
    assert trainer._lookahead is not None
    for _ in range(3):
        trainer.step()


def test_a_divergence_restarts_the_slow_copy_from_the_kept_weights(dataset, monkeypatch):
    trainer = make(dataset, {**HP, "lookahead": 0.5, "lookahead_every": 2})
    for _ in range(6):
        trainer.step()
    real_loss = trainer.net.loss_layer.loss

    def exploded(*args):
        loss, dx = real_loss(*args)
        return loss * 1e4, dx                       # finite, but 10,000 times the level

    monkeypatch.setattr(trainer.net.loss_layer, "loss", exploded)
    assert "diverged" in trainer.step()
    kept = list(state(trainer).values())
    assert all(np.array_equal(s, a) for s, a in zip(trainer._lookahead.slow, kept))
