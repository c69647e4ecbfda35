"""The training loop: figures per step, changes between steps, divergence, determinism."""

import numpy as np
import pytest

from engine.formats.snapshot import dumps, loads, snapshot_to_json
from engine.train.trainer import Trainer, TrainBudget, TrainError, TrainOptions
from tests.builders import (BN_LAYERS, INPUT, TINY_LAYERS, learnable_folder, open_folder,
                            tiny_net, tiny_spec)

# Two linear layers and no activation: at lr 10 the weights feed each other's gradients and
# the loss overflows within a few steps (relu nets just die at lr 10).
LINEAR_LAYERS = [INPUT, {"type": "conv", "sx": 4, "filters": 4, "stride": 4},
                 {"type": "fc", "num_neurons": 8}, {"type": "softmax", "num_classes": 3}]
ADAM = {"method": "adam", "learning_rate": 0.01, "batch_size": 8}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    # 27 train + 3 validation images per class (every 10th held out), 10 test per class.
    return open_folder(learnable_folder(root / "photos"), root / "cache")


def make_trainer(dataset, layers=TINY_LAYERS, hp=ADAM, **options):
    options.setdefault("seed", 5)
    return Trainer(tiny_net(layers, seed=options["seed"]), dataset, dict(hp),
                   TrainOptions(**options))


def weights(trainer):
    return {name: arr.copy() for name, arr, _ in trainer.net.named_params()}


def buffers(trainer):
    return {name: arr.copy() for name, arr in trainer.net.named_buffers()}


def same_arrays(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_steps_report_losses_accuracies_speed_and_per_layer_times(dataset):
    trainer = make_trainer(dataset, hp={**ADAM, "l2_decay": 1e-3}, validate_every=2)
    results = [trainer.step() for _ in range(4)]
    assert [r["step"] for r in results] == [1, 2, 3, 4]
    assert all(r["loss"] > 0 and r["reg_loss"] > 0 and 0 <= r["train_acc"] <= 1 for r in results)
    assert "val_acc" in results[1] and "val_acc" not in results[0]
    m = trainer.metrics()
    assert m["step"] == 4 and m["examples"] == 32 and m["batch_size"] == 8
    assert m["epoch"] == pytest.approx(32 / len(dataset.train), abs=1e-3)
    assert m["loss"] == pytest.approx(np.mean([r["loss"] for r in results]))
    assert m["reg_loss"] == pytest.approx(np.mean([r["reg_loss"] for r in results]))
    assert m["val_acc"] is not None and m["time"] > 0 and m["images_per_s"] > 0
    assert m["forward_ms_per_image"] > 0 and m["backward_ms_per_image"] > 0
    assert len(m["layer_ms"]) == len(trainer.net.layers)
    assert m["layer_ms"][2] is None  # the conv's relu: it runs inside the conv's pass
    assert all(t[0] >= 0 and t[1] >= 0 for i, t in enumerate(m["layer_ms"]) if i != 2)
    assert m["layer_ms"][1][0] > 0 and m["layer_ms"][1][1] > 0
    assert [p["step"] for p in trainer.history.points] == [1, 2, 3, 4]


def test_it_learns_the_tiny_set_and_evaluates_the_whole_test_set_each_epoch(dataset):
    trainer = make_trainer(dataset)
    steps_per_epoch = -(-len(dataset.train) // 8)
    tests = []
    for _ in range(6 * steps_per_epoch):
        result = trainer.step()
        if "test" in result:
            tests.append(result)
    # One whole-test-set evaluation per epoch, on the step whose batch ends it.
    assert [r["step"] for r in tests] == [-(-k * len(dataset.train) // 8) for k in range(1, 7)]
    last = trainer.last_test
    assert last["images"] == len(dataset.test) == 30
    assert np.array(last["confusion"]).shape == (3, 3) and set(last["per_class"]) == {
        "cat", "dog", "frog"}
    assert last["accuracy"] >= 0.9 and trainer.metrics()["test_acc"] == last["accuracy"]
    # The history keeps every test result apart from the (thinned) points.
    assert [(t["step"], t["test_acc"]) for t in trainer.history.tests] == [
        (r["step"], r["test"]["accuracy"]) for r in tests]
    assert trainer.history.tests_added == 6


def test_test_every_evaluates_on_a_fixed_period(dataset):
    trainer = make_trainer(dataset, test_every=3)
    steps = [trainer.step() for _ in range(7)]
    assert [r["step"] for r in steps if "test" in r] == [3, 6]


def test_a_chunked_test_evaluates_the_weights_of_the_step_it_began_on(dataset):
    # test_chunk spreads the test set over the next steps (the server's worker), on a frozen
    # copy: the result is exactly what a whole evaluation at the starting step gives.
    whole = make_trainer(dataset, test_every=3)
    chunked = make_trainer(dataset, test_every=3, test_chunk=8)
    expected = [r["test"] for r in (whole.step() for _ in range(3)) if "test" in r]
    results = [chunked.step() for _ in range(8)]
    tests = [(r["step"], r["test"]) for r in results if "test" in r]
    # 30 test images in chunks of 8 (whole batches of 250 are cut to the chunk): 4 steps, the
    # first of them the step that started it. The next test fell due at step 6 while this one
    # ran and was skipped; the one due at step 9 has not run yet.
    assert [step for step, _ in tests] == [6]
    assert tests[0][1] == expected[0] and tests[0][1]["step"] == 3
    assert chunked.last_test == tests[0][1]
    assert chunked.metrics()["test_acc"] == expected[0]["accuracy"]


def test_images_per_s_is_images_over_seconds_in_the_window(dataset, monkeypatch):
    trainer = make_trainer(dataset, window=2)
    trainer.step()
    trainer._windows["images"].values.extend([8, 8])
    trainer._windows["seconds"].values.extend([0.1, 0.7])   # 16 images in 0.8 s
    assert trainer.metrics()["images_per_s"] == pytest.approx(20.0)


def test_same_seed_same_trajectory_different_seed_different(dataset):
    def losses(seed):
        trainer = make_trainer(dataset, BN_LAYERS, seed=seed)   # dropout + augmentation
        return [trainer.step()["loss"] for _ in range(12)]
    first = losses(3)
    assert losses(3) == first                                    # bit for bit
    assert losses(4) != first


def test_pause_and_resume(dataset):
    trainer = make_trainer(dataset)
    trainer.step()
    trainer.pause()
    assert trainer.paused and trainer.step_count == 1
    trainer.resume()
    assert not trainer.paused and trainer.diverged is None


def test_apply_changes_between_steps(dataset):
    trainer = make_trainer(dataset)
    trainer.step()
    settings = trainer.apply({"learning_rate": 0.05, "batch_size": 5, "flip": False,
                              "shift": 0, "method": "momentum"})
    assert settings["learning_rate"] == 0.05 and settings["method"] == "momentum"
    assert settings["batch_size"] == 5 and settings["flip"] is False
    assert trainer.optimizer.lr == 0.05 and not trainer.batches.augment.active
    assert trainer.step()["batch_size"] == 5
    assert trainer.history.markers[-1]["step"] == 1
    # A switch to a decaying schedule starts it at this step (test_trainer_schedule.py).
    trainer.apply({"schedule": "step", "step_size": 1, "gamma": 0.5})
    assert trainer.optimizer.lr == 0.05 and trainer.schedule_start == 2
    trainer.step()
    assert trainer.optimizer.lr == pytest.approx(0.05 * 0.5)


@pytest.mark.parametrize("changes, field", [
    ({"learning_rate": 0.5, "momentum": 1.5}, "momentum"),
    ({"learning_rate": 0.5, "shift": 99}, "shift"),
    ({"learning_rate": 0.5, "flip": "yes"}, "flip"),
    ({"learning_rate": 0.5, "warp_speed": 9}, "warp_speed"),
    ({"batch_size": 0}, "batch_size"),
    ({"test_chunk": -1}, "test_chunk"),
])
def test_a_refused_change_changes_nothing(dataset, changes, field):
    trainer = make_trainer(dataset)
    trainer.step()
    before = trainer.settings()
    with pytest.raises(TrainError) as info:
        trainer.apply(changes)
    assert info.value.field == field
    assert trainer.settings() == before and trainer.history.markers == []
    with pytest.raises(TrainError):
        trainer.apply({})


def test_window_and_history_size_changes_take_effect(dataset):
    trainer = make_trainer(dataset)
    for _ in range(5):
        trainer.step()
    trainer.apply({"window": 2, "history_points": 4})
    losses = [trainer.step()["loss"] for _ in range(3)]
    assert trainer.metrics()["loss"] == pytest.approx(np.mean(losses[-2:]))
    assert len(trainer.history.points) <= 4 and trainer.history.points[-1]["step"] == 8


def test_validation_accuracy_averages_the_last_ten_validation_batches(dataset):
    # Not `window` of them: at one batch per 50 steps that would lag by 2,500 steps.
    trainer = make_trainer(dataset, validate_every=1, validation_batch=2, window=50)
    accuracies = [trainer.step()["val_acc"] for _ in range(14)]
    assert trainer.metrics()["val_acc"] == pytest.approx(np.mean(accuracies[-10:]))


def test_set_net_swaps_in_a_fresh_net_and_refuses_one_that_does_not_fit(dataset):
    trainer = make_trainer(dataset)
    trainer.step()
    trainer.set_net(tiny_spec(BN_LAYERS))
    assert [layer.type for layer in trainer.net.layers][2] == "batchnorm"
    assert trainer.step()["step"] == 2
    net = trainer.net
    saved = weights(trainer)
    for layers, classes, field in ((TINY_LAYERS, 4, "num_classes"),
                                   ([{**INPUT, "out_sx": 16, "out_sy": 16}] + TINY_LAYERS[1:], 3,
                                    "input")):
        with pytest.raises(TrainError) as info:
            trainer.set_net(tiny_spec(layers, classes))
        assert info.value.field == field
    regression = tiny_spec(TINY_LAYERS[:-1] + [{"type": "regression", "num_neurons": 3}])
    with pytest.raises(TrainError, match="regression"):
        trainer.set_net(regression)
    assert trainer.net is net and same_arrays(weights(trainer), saved)


def test_reset_replays_the_same_run(dataset):
    trainer = make_trainer(dataset, BN_LAYERS)
    first = [trainer.step()["loss"] for _ in range(6)]
    trainer.apply({"learning_rate": 0.02})
    trainer.reset()
    assert trainer.step_count == 0 and trainer.history.points == []
    trainer.apply({"learning_rate": 0.01})
    assert [trainer.step()["loss"] for _ in range(6)] == first


def test_lr_10_diverges_pauses_and_keeps_the_last_healthy_weights(dataset):
    trainer = make_trainer(dataset, LINEAR_LAYERS, hp={"method": "sgd", "learning_rate": 0.01,
                                                        "batch_size": 8})
    history = {0: weights(trainer)}               # the weights after each step
    for _ in range(25):
        trainer.step()
        history[trainer.step_count] = weights(trainer)
    trainer.apply({"learning_rate": 10.0})
    for _ in range(60):
        step = trainer.step_count
        result = trainer.step()
        if "diverged" in result:
            break
        history[trainer.step_count] = weights(trainer)
    else:
        pytest.fail("lr 10 did not diverge in 60 steps")
    event = trainer.diverged
    assert event["step"] == step + 1 and f"step {step + 1}" in event["message"]
    assert result["diverged"] == event and trainer.paused and trainer.step_count == step
    # The weights of a step whose loss was healthy (a checkpoint from the lr 0.01 run here),
    # not the last finite ones, which lr 10 had already blown up.
    kept = event["kept_step"]
    assert 10 <= kept <= 25 and f"weights of step {kept}" in event["message"]
    assert same_arrays(weights(trainer), history[kept])
    assert all(np.isfinite(a).all() for a in history[kept].values())
    assert trainer.history.markers[-1]["text"] == f"diverged at step {step + 1}"
    assert trainer.metrics()["diverged"] == event
    # A snapshot of the paused run is valid JSON (no NaN) and loads.
    loads(dumps(snapshot_to_json(trainer.net, **trainer.snapshot_kwargs())))
    trainer.apply({"learning_rate": 0.001})          # lowering the rate clears the event
    assert trainer.diverged is None
    trainer.resume()
    assert "diverged" not in trainer.step()


def test_a_loss_that_explodes_is_divergence_before_it_reaches_nan(dataset, monkeypatch):
    trainer = make_trainer(dataset, hp={**ADAM, "learning_rate": 0.001})
    for _ in range(12):
        trainer.step()
    before = weights(trainer)
    real_loss = trainer.net.loss_layer.loss

    def exploded(*args):
        loss, dx = real_loss(*args)
        return loss * 1e4, dx                       # finite, but 10,000 times the level

    monkeypatch.setattr(trainer.net.loss_layer, "loss", exploded)
    result = trainer.step()
    assert "the loss exploded" in result["diverged"]["message"] and trainer.paused
    assert trainer.step_count == 12 and result["diverged"]["kept_step"] in (0, 10)
    assert all(np.isfinite(a).all() for a in weights(trainer).values())
    monkeypatch.undo()
    trainer.resume()
    assert "diverged" not in trainer.step()
    assert before.keys() == weights(trainer).keys()


def test_an_inf_gradient_diverges_on_that_step_and_changes_nothing(dataset, monkeypatch):
    # Its loss was healthy: the weights it started from are kept (only the step is undone).
    trainer = make_trainer(dataset, hp={**ADAM, "l2_decay": 1e-3})
    for _ in range(12):
        trainer.step()
    real_backward = trainer.net.backward

    def poisoned(out, caches, y, grads, ctx, **kwargs):
        result = real_backward(out, caches, y, grads, ctx, **kwargs)
        grads[-2]["w"][0, 0] = np.inf                   # the fc before the softmax
        return result

    monkeypatch.setattr(trainer.net, "backward", poisoned)
    before, state = weights(trainer), trainer.optimizer.state_dict()
    result = trainer.step()
    assert result["diverged"]["step"] == 13 and "a gradient" in result["diverged"]["message"]
    assert trainer.paused and trainer.step_count == 12 and result["diverged"]["kept_step"] == 12
    assert same_arrays(weights(trainer), before)
    after = trainer.optimizer.state_dict()
    assert after["t"] == state["t"] and all(
        same_arrays(after["state"][k], state["state"][k]) for k in state["state"])
    monkeypatch.undo()
    trainer.resume()
    assert "diverged" not in trainer.step() and trainer.step_count == 13


def test_a_non_finite_batch_norm_statistic_is_rolled_back_too(dataset, monkeypatch):
    trainer = make_trainer(dataset, BN_LAYERS)
    kept = {0: (weights(trainer), buffers(trainer))}
    trainer.step()
    real_forward = trainer.net.forward

    def poisoned(x, ctx):
        x = x.copy()
        x[0, 0, 0, 0] = np.inf
        return real_forward(x, ctx)

    monkeypatch.setattr(trainer.net, "forward", poisoned)
    result = trainer.step()
    # No healthy loss came from the weights after step 1: the checkpoint (step 0) is kept,
    # batch-norm statistics and all.
    assert result["diverged"]["kept_step"] == 0
    assert same_arrays(weights(trainer), kept[0][0]) and same_arrays(buffers(trainer), kept[0][1])
    assert all(np.isfinite(a).all() for a in buffers(trainer).values())


def test_load_replaces_the_run_and_a_bad_snapshot_changes_nothing(dataset):
    source = make_trainer(dataset, hp={**ADAM, "batch_size": 6})
    for _ in range(4):
        source.step()
    snapshot = loads(dumps(snapshot_to_json(source.net, **source.snapshot_kwargs())))
    target = make_trainer(dataset, seed=9)
    target.load(snapshot)
    assert same_arrays(weights(target), weights(source))
    assert target.step_count == 4 and target.examples_seen == 24
    assert target.optimizer.t == 4 and target.optimizer.hp == source.optimizer.hp
    assert target.normalization == source.normalization
    assert target.step()["batch_size"] == 6

    net, saved = target.net, weights(target)
    wrong_classes = loads(dumps(snapshot_to_json(tiny_net(classes=4))))
    with pytest.raises(TrainError, match="classes"):
        target.load(wrong_classes)
    bad_state = loads(dumps(snapshot_to_json(source.net, **source.snapshot_kwargs())))
    first = next(iter(bad_state.optimizer["state"]))
    bad_state.optimizer["state"][first] = {k: np.zeros(3, np.float32)
                                           for k in bad_state.optimizer["state"][first]}
    with pytest.raises(TrainError, match="optimizer"):
        target.load(bad_state)
    assert target.net is net and same_arrays(weights(target), saved) and target.step_count == 5


def test_a_loaded_snapshot_brings_its_recorded_test_result(dataset):
    source = make_trainer(dataset)
    source.step()
    source.evaluate_test()
    snapshot = loads(dumps(snapshot_to_json(source.net, **source.snapshot_kwargs())))
    target = make_trainer(dataset, seed=9)
    target.load(snapshot)
    assert target.last_test["accuracy"] == source.last_test["accuracy"]
    assert target.metrics()["test_acc"] == source.last_test["accuracy"]
    assert [t["test_acc"] for t in target.history.tests] == [source.last_test["accuracy"]]
    snapshot.metrics["test"] = {"accuracy": "high"}           # not evaluate()'s shape
    target.load(snapshot)
    assert target.last_test is None


def _largest_weight(trainer) -> float:
    return max(float(np.abs(a).max()) for _, a, _ in trainer.net.named_params())


def test_lr_10_on_the_convnetjs_net_keeps_weights_of_healthy_size(dataset):
    # The "last finite weights" used to be those the exploding step started from: |w| up to
    # 3e14, and classify then gave NaN probabilities.
    from engine.net import Net
    from engine.presets import preset_document
    from engine.spec.net_spec import parse_spec
    doc = preset_document("convnetjs")
    doc["layers"][-1]["num_classes"] = 3
    # On the data set's mean/std (ConvNetJS's own pixel/255 - 0.5, this net's default, is
    # 4x smaller and does not blow up within 100 steps at lr 10 on these solid colours).
    trainer = Trainer(Net(parse_spec(doc)), dataset,
                      {"method": "momentum", "learning_rate": 0.01, "batch_size": 16},
                      TrainOptions(seed=5), normalization=dataset.normalization)
    largest = {0: _largest_weight(trainer)}
    for _ in range(30):
        trainer.step()
        largest[trainer.step_count] = _largest_weight(trainer)
    healthy = max(largest.values())
    trainer.apply({"learning_rate": 10.0})
    for _ in range(100):
        if "diverged" in trainer.step():
            break
    else:
        pytest.fail("lr 10 did not diverge in 100 steps")
    assert all(np.isfinite(a).all() for _, a, _ in trainer.net.named_params())
    assert _largest_weight(trainer) <= 10 * healthy
    if "kept_step" in trainer.diverged:
        assert _largest_weight(trainer) == largest[trainer.diverged["kept_step"]]
    x = dataset.test.preprocess(dataset.test.images)
    probs = trainer.net.predict(x)
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.reshape(len(x), -1).sum(axis=1), 1, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["convnetjs", "cifar_small", "cifar_resnet"])
def test_divergence_never_fires_on_a_normal_run(preset, tmp_path_factory):
    # The shipped presets' first 200 steps at their default settings on CIFAR-10: the
    # explosion check (LossWatch) must stay silent, with room to spare.
    from engine.data import open_source
    from engine.net import Net
    from engine.presets import load_preset, training_defaults
    from engine.train.rollback import LossWatch
    dataset = open_source(cache_dir=tmp_path_factory.getbasetemp() / "bundled-cache")
    trainer = Trainer(Net(load_preset(preset)), dataset, training_defaults(preset),
                      TrainOptions(seed=0))
    worst = 0.0
    for _ in range(200):
        level = trainer._loss_watch.level
        result = trainer.step()
        assert "diverged" not in result, result
        if level:
            worst = max(worst, result["loss"] / level)
    assert worst < LossWatch.EXPLODED / 100
    assert trainer._rollback.checkpoint[2] >= 150      # checkpoints kept coming
    print(f"{preset}: largest loss / recent level over 200 steps: {worst:.2f}")


def _run_state(trainer):
    return (weights(trainer), buffers(trainer), trainer.step_count, trainer.examples_seen,
            trainer.normalization, trainer.optimizer.t, trainer.settings(), trainer.net.spec)


def _same_run(a, b):
    return same_arrays(a[0], b[0]) and same_arrays(a[1], b[1]) and a[2:] == b[2:]


@pytest.mark.parametrize("part, change, field", [
    ("meta", {"epoch": 10**400}, "meta.epoch"),
    ("meta", {"examples_seen": 2**80}, "meta.examples_seen"),
    ("preprocess", {"mean": [0.0] * 3, "std": [1e-300] * 3}, "preprocess.std"),
    ("preprocess", {"mean": [1e308] * 3, "std": [60.0] * 3}, "preprocess.mean"),
    ("step", 10**400, "step"),
    ("params", "1e39", "params.1.w"),
    ("optimizer", "1e39", "optimizer.state.1.w.first_moment"),
    ("optimizer", "t", "optimizer.t"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_load_checks_everything_before_it_changes_anything(dataset, part, change, field):
    # A Snapshot object (made by code, not read from a file) is checked by load itself: a
    # meta epoch of 10**400 used to raise after the weights and the step were replaced.
    source = make_trainer(dataset)
    for _ in range(3):
        source.step()
    snapshot = loads(dumps(snapshot_to_json(source.net, **source.snapshot_kwargs())))
    if part in ("meta", "preprocess"):
        setattr(snapshot, part, {**getattr(snapshot, part), **change})
    elif part == "step":
        snapshot.step = change
    elif part == "params":
        snapshot.params["1.w"] = np.full(snapshot.params["1.w"].shape, 1e39)
    elif change == "1e39":
        slot = snapshot.optimizer["state"]["1.w"]
        slot["first_moment"] = np.full(slot["first_moment"].shape, 1e39)
    else:
        snapshot.optimizer["t"] = 10**400
    target = make_trainer(dataset, seed=9)
    target.step()
    before = _run_state(target)
    with pytest.raises(TrainError) as info:
        target.load(snapshot)
    assert info.value.field == field, str(info.value)
    assert _same_run(_run_state(target), before)
    assert "diverged" not in target.step()


def _big_conv_spec(classes=3):
    # Two 512-filter 3x3 convs at 32x32: 4.9 GFLOP per image, within the spec budget.
    return tiny_spec([INPUT, {"type": "conv", "sx": 3, "filters": 512, "pad": 1,
                              "activation": "relu"},
                      {"type": "conv", "sx": 3, "filters": 512, "pad": 1, "activation": "relu"},
                      {"type": "softmax", "num_classes": classes}])


def test_the_training_budget_refuses_batches_and_nets_that_do_not_fit(dataset):
    from engine.net import Net
    trainer = make_trainer(dataset, hp={**ADAM, "batch_size": 8})
    trainer.step()
    before = _run_state(trainer)
    with pytest.raises(TrainError) as info:
        trainer.set_net(_big_conv_spec())
    message = str(info.value)
    assert info.value.field == "net" and "GFLOP per training step" in message
    assert "the largest batch that fits is 4" in message
    assert _same_run(_run_state(trainer), before)
    with pytest.raises(TrainError) as info:
        trainer.set_net(_big_conv_spec(), settings={"batch_size": 64, "learning_rate": 0.5})
    assert info.value.field == "net" and "batch 64 needs about 934 GFLOP" in str(info.value)
    assert _same_run(_run_state(trainer), before)
    with pytest.raises(TrainError) as info:         # the constructor checks it too
        Trainer(Net(_big_conv_spec()), dataset, {**ADAM, "batch_size": 64})
    assert info.value.field == "net"
    # The batch size of a big enough net: refused with what would fit.
    trainer.set_net(_big_conv_spec(), settings={"batch_size": 2})
    with pytest.raises(TrainError) as info:
        trainer.apply({"batch_size": 1024})
    assert info.value.field == "batch_size"
    message = str(info.value)
    assert "batch 1024 needs about 33.6 GB for training" in message and "fits is 4" in message
    assert trainer.settings()["batch_size"] == 2
    # A snapshot whose optimizer state asks for a batch too large for this net is refused.
    saved = loads(dumps(snapshot_to_json(trainer.net, **trainer.snapshot_kwargs())))
    saved.optimizer["hyperparams"]["batch_size"] = 512
    with pytest.raises(TrainError) as info:
        trainer.load(saved)
    assert info.value.field == "net"
    # Its own budget: a server that allows more.
    roomy = Trainer(Net(_big_conv_spec()), dataset, {**ADAM, "batch_size": 64},
                    budget=TrainBudget(max_bytes=10**10, max_step_flops=10**12))
    assert roomy.optimizer.hp.batch_size == 64


@pytest.mark.parametrize("preset, batch", [("convnetjs", 256), ("cifar_small", 256),
                                           ("cifar_resnet", 300)])
def test_the_training_budget_admits_the_shipped_presets(preset, batch):
    from engine.presets import load_preset
    from engine.train.options import DEFAULT_TRAIN_BUDGET, check_budget
    cost = check_budget(load_preset(preset), batch, DEFAULT_TRAIN_BUDGET, "batch_size")
    assert cost.largest_batch(DEFAULT_TRAIN_BUDGET) >= batch


def test_net_changes_method_switches_and_loads_do_not_grow_the_process(dataset):
    # Everything a lecture does to a run, many times: new nets, optimizer switches (their
    # state), snapshot loads, resets, periodic tests. What the run holds is replaced each
    # time, never added to (buffers, optimizer state, rollback copies, checkpoints, history).
    from tests.engine.train.test_evaluation import _rss_bytes
    trainer = make_trainer(dataset, hp={**ADAM, "batch_size": 16}, test_every=2, test_chunk=8)
    specs = [tiny_spec(TINY_LAYERS), tiny_spec(BN_LAYERS)]

    def lecture_minute(k):
        trainer.set_net(specs[k % 2], settings={"method": ("adam", "momentum", "adadelta")[k % 3]})
        for _ in range(3):
            trainer.step()
        trainer.apply({"method": "nesterov", "batch_size": 8 + k % 3})
        trainer.step()
        saved = loads(dumps(snapshot_to_json(trainer.net, **trainer.snapshot_kwargs())))
        trainer.load(saved)
        trainer.step()
        if k % 5 == 0:
            trainer.reset()

    for k in range(6):
        lecture_minute(k)                   # every kernel compiled, every buffer made once
    before = _rss_bytes()
    for k in range(6, 26):
        lecture_minute(k)
    grown = _rss_bytes() - before
    assert grown < 20e6, f"RSS grew {grown / 1e6:.1f} MB over 20 rounds"
    assert len(trainer.history.markers) <= 200
