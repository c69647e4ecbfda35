"""Whole-split evaluation, at once and in chunks, and the trainer's frozen-copy test runs."""

import os

import numpy as np
import pytest

from engine.data import Normalization
from engine.data.dataset import Split
from engine.train.evaluation import Evaluation, PeriodicTest, evaluate, predict_tta
from engine.layers.base import Context
from tests.builders import TINY_LAYERS, tiny_net

CLASSES = ("cat", "dog", "frog")
NORM = Normalization((127.5,) * 3, (64.0,) * 3)


def _split(rng, per_class=(5, 7, 0)):
    labels = np.repeat(np.arange(3), per_class)
    images = rng.integers(0, 256, size=(len(labels), 32, 32, 3), dtype=np.uint8)
    return Split("test", images, labels, None, CLASSES, NORM)


@pytest.mark.parametrize("batch_size", [4, 250])
def test_evaluate_counts_a_confusion_matrix_and_per_class_accuracy(rng, batch_size):
    split = _split(rng)
    net = tiny_net(TINY_LAYERS, seed=3)
    x = split.preprocess(split.images)
    probs = net.predict(x, Context()).reshape(len(x), -1).astype(np.float64)
    predicted = probs.argmax(axis=1)
    result = evaluate(net, split, NORM, batch_size=batch_size)
    confusion = np.array(result["confusion"])
    expected = np.zeros((3, 3), dtype=int)
    for true, guess in zip(split.labels, predicted):
        expected[true, guess] += 1
    assert (confusion == expected).all()
    assert result["images"] == 12 and result["classes"] == list(CLASSES)
    assert result["accuracy"] == pytest.approx(np.mean(predicted == split.labels))
    assert result["per_class"]["cat"] == pytest.approx(expected[0, 0] / 5)
    assert result["per_class"]["dog"] == pytest.approx(expected[1, 1] / 7)
    assert result["per_class"]["frog"] is None               # no test images of that class
    true_p = probs[np.arange(12), split.labels]
    assert result["loss"] == pytest.approx(-np.log(true_p).mean(), rel=1e-4)


def test_the_test_loss_includes_label_smoothing_as_the_training_loss_does(rng):
    split = _split(rng)
    layers = [dict(layer) for layer in TINY_LAYERS]
    layers[-1] = {**layers[-1], "label_smoothing": 0.2}
    net = tiny_net(layers, seed=3)
    plain = tiny_net(TINY_LAYERS, seed=3)                 # the same weights, no smoothing
    x = split.preprocess(split.images)
    probs = net.predict(x, Context()).reshape(len(x), -1).astype(np.float64)
    log_p = np.log(probs)
    expected = -(0.8 * log_p[np.arange(12), split.labels] + 0.2 / 3 * log_p.sum(axis=1))
    result = evaluate(net, split, NORM, batch_size=5)
    assert result["loss"] == pytest.approx(expected.mean(), rel=1e-5)
    assert evaluate(plain, split, NORM)["loss"] == pytest.approx(
        -log_p[np.arange(12), split.labels].mean(), rel=1e-5)
    # the same number the training loss gives on that batch (in evaluation mode)
    ctx = Context()
    out, caches, _ = net.forward(x, ctx)
    training_loss, _ = net.loss_layer.loss(out, caches[-1], split.labels, ctx)
    assert result["loss"] == pytest.approx(training_loss, rel=1e-5)


def test_evaluate_limit_and_svm_loss_is_none(rng):
    split = _split(rng)
    layers = [dict(layer) for layer in TINY_LAYERS]
    layers[-1] = {"type": "svm", "num_classes": 3}
    result = evaluate(tiny_net(layers), split, NORM, limit=5, batch_size=2)
    assert result["images"] == 5 and np.array(result["confusion"]).sum() == 5
    assert result["loss"] is None


def test_evaluate_counts_a_diverged_nets_nan_outputs_without_warnings(rng):
    split = _split(rng)
    net = tiny_net(TINY_LAYERS)
    net.named_params()[-1][1][0] = np.nan                  # the last fc's first bias
    result = evaluate(net, split, NORM)
    assert result["images"] == 12 and np.array(result["confusion"]).sum() == 12
    assert result["loss"] is None


def test_an_evaluation_in_chunks_equals_one_at_once(rng):
    split = _split(rng)
    net = tiny_net(TINY_LAYERS, seed=3)
    evaluation = Evaluation(net, split, NORM, batch_size=4)
    assert [evaluation.advance(5) for _ in range(3)] == [False, False, True]
    assert evaluation.position == 12
    chunked, whole = evaluation.result(), evaluate(net, split, NORM, batch_size=4)
    assert chunked["loss"] == pytest.approx(whole["loss"], rel=1e-6)   # other batch edges
    assert {**chunked, "loss": None} == {**whole, "loss": None}


def test_a_periodic_test_evaluates_the_weights_it_started_with(rng):
    split = _split(rng)
    net = tiny_net(TINY_LAYERS, seed=3)
    expected = evaluate(net, split, NORM)
    run = PeriodicTest()
    run.start(net, split, NORM, step=7, examples=56)
    for _, param, _ in net.named_params():       # training goes on meanwhile
        param += 1.0
    run.start(net, split, NORM, step=8, examples=64)   # skipped: one at a time
    assert run.advance(5) is None and run.pending
    result = run.advance(5) or run.advance(5)
    assert not run.pending and result["step"] == 7 and result["examples"] == 56
    assert result["confusion"] == expected["confusion"]
    assert result["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    run.start(net, split, NORM, step=9, examples=72)
    run.cancel()
    assert not run.pending


def test_periodic_tests_reuse_one_frozen_net_and_follow_a_new_one(rng):
    split = _split(rng)
    net = tiny_net(TINY_LAYERS, seed=3)
    run = PeriodicTest()
    for step in range(3):
        run.start(net, split, NORM, step=step, examples=0)
        while run.advance(4) is None:
            pass
        # one frozen net's buffers, however many tests ran
        assert run.workspace.owners() == len(run._frozen.layers) - 1   # the input layer has none
    first = run._frozen
    for _, param, _ in net.named_params():
        param *= 0.5
    run.start(net, split, NORM, step=3, examples=0)
    assert run._frozen is first                   # same spec: the weights are copied in
    for (_, a, _), (_, b, _) in zip(first.named_params(), net.named_params()):
        assert np.array_equal(a, b)
    while run.advance(4) is None:
        pass
    other = tiny_net([*TINY_LAYERS[:3], {"type": "softmax", "num_classes": 3}], seed=1)
    run.start(other, split, NORM, step=4, examples=0)
    assert run._frozen is not first and run._frozen.spec == other.spec
    del first
    while run.advance(4) is None:
        pass
    # the old frozen net's buffers went with it
    assert run.workspace.owners() == len(run._frozen.layers) - 1


def _rss_bytes() -> int:
    import gc
    import os
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _fake_cifar(rng, train=400, test=500):
    """A CIFAR-10-shaped data set in memory (random pixels): realistic buffer sizes."""
    from engine.data.dataset import Dataset, SourceInfo
    classes = tuple(f"class{k}" for k in range(10))
    norm = Normalization((127.5,) * 3, (64.0,) * 3)
    splits = []
    for name, count in (("train", train), ("validation", 100), ("test", test)):
        labels = np.arange(count) % 10
        images = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
        splits.append(Split(name, images, labels, None, classes, norm))
    source = SourceInfo("folder", "memory", "none", None, False)
    return Dataset(source, classes, (32, 32), norm, *splits)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
@pytest.mark.parametrize("tta", ["none", "flip_translate"])
def test_ten_periodic_test_evaluations_do_not_grow_the_process(rng, tta):
    # The server's set-up: the convnetjs preset, the test set 250 images per step, a test
    # every few steps. Each evaluation used to build a new frozen net whose buffers the
    # shared workspace kept (keyed by id(layer)): ~94 MiB more per evaluation, so ten show
    # any such growth many times over.
    from engine.net import Net
    from engine.presets import load_preset
    from engine.train.trainer import Trainer, TrainOptions
    dataset = _fake_cifar(rng)
    trainer = Trainer(Net(load_preset("convnetjs")), dataset,
                      {"method": "momentum", "learning_rate": 0.01, "batch_size": 16},
                      TrainOptions(test_every=2, test_chunk=250, seed=0, tta=tta))

    def run_until_tests(count):
        done = 0
        while done < count:
            done += "test" in trainer.step()

    run_until_tests(1)          # kernels compiled, every buffer made once
    before = _rss_bytes()
    for k in range(10):
        run_until_tests(1)
        grown = _rss_bytes() - before
        assert grown < 50e6, f"RSS grew {grown / 1e6:.0f} MB after {k + 1} more evaluations"
    print(f"RSS growth over 10 evaluations: {(_rss_bytes() - before) / 1e6:.1f} MB")


# --- test-time augmentation -----------------------------------------------------------------

def _by_hand(net, x):
    """The plain passes TTA averages, each copied out of the workspace, in float64 order-free
    form: the image, its mirror, moved down-right (reflecting), its mirror, moved up-left, its
    mirror."""
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    down_right, up_left = padded[:, :, :32, :32], padded[:, :, 2:, 2:]
    assert np.array_equal(down_right[:, :, 1:, 1:], x[:, :, :-1, :-1])
    assert np.array_equal(up_left[:, :, :-1, :-1], x[:, :, 1:, 1:])
    views = [x, x[..., ::-1], down_right, down_right[..., ::-1], up_left, up_left[..., ::-1]]
    ctx = Context()
    return [net.predict(np.ascontiguousarray(v), ctx).reshape(len(x), -1).copy() for v in views]


def test_tta_flip_is_exactly_the_mean_of_the_image_and_its_mirror(rng):
    split = _split(rng)
    net = tiny_net(TINY_LAYERS, seed=3)
    x = split.preprocess(split.images)
    plain, mirrored = _by_hand(net, x)[:2]
    assert np.abs(plain - mirrored).max() > 1e-3        # the net tells left from right
    expected = 0.5 * plain + 0.5 * mirrored
    np.testing.assert_array_equal(predict_tta(net, x, Context(), "flip"), expected)
    result = evaluate(net, split, NORM, batch_size=5, tta="flip")
    predicted = expected.argmax(axis=1)
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (split.labels, predicted), 1)
    assert result["confusion"] == confusion.tolist() and result["tta"] == "flip"
    true_p = expected.astype(np.float64)[np.arange(12), split.labels]
    assert result["loss"] == pytest.approx(-np.log(true_p).mean(), rel=1e-6)
    assert evaluate(net, split, NORM, batch_size=5)["tta"] == "none"


def test_tta_flip_translate_weighs_six_views_a_quarter_and_an_eighth(rng):
    split = _split(rng)
    net = tiny_net(TINY_LAYERS, seed=3)
    x = split.preprocess(split.images)
    views = _by_hand(net, x)
    expected = (0.25 * (views[0].astype(np.float64) + views[1])
                + 0.125 * (views[2].astype(np.float64) + views[3] + views[4] + views[5]))
    got = predict_tta(net, x, Context(), "flip_translate")
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert got.sum(axis=1) == pytest.approx(np.ones(len(x)), abs=1e-5)   # still probabilities
    assert np.abs(got - 0.5 * (views[0] + views[1])).max() > 1e-4   # the moves count
    chunked = Evaluation(net, split, NORM, batch_size=4, tta="flip_translate")
    while not chunked.advance(4):
        pass
    assert chunked.result()["confusion"] == evaluate(net, split, NORM,
                                                     tta="flip_translate")["confusion"]


def test_periodic_tests_with_tta_keep_one_set_of_buffers(rng):
    split = _split(rng)
    net = tiny_net(TINY_LAYERS, seed=3)
    run = PeriodicTest()
    sizes = []
    for step in range(4):
        run.start(net, split, NORM, step=step, examples=0, tta="flip_translate")
        while (result := run.advance(5)) is None:
            pass
        assert result["tta"] == "flip_translate"
        sizes.append((run.workspace.owners(), run.workspace.nbytes()))
    assert len(set(sizes)) == 1, sizes


def test_an_unknown_tta_is_refused(rng):
    net = tiny_net(TINY_LAYERS, seed=3)
    with pytest.raises(ValueError, match="tta must be one of none, flip, flip_translate"):
        Evaluation(net, _split(rng), NORM, tta="mirror")
    with pytest.raises(ValueError, match="tta"):
        predict_tta(net, np.zeros((1, 3, 32, 32), np.float32), Context(), "both")
