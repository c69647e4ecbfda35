"""Whole-split evaluation, at once and in chunks, and the trainer's frozen-copy test runs."""

import numpy as np
import pytest

from engine.data import Normalization
from engine.data.dataset import Split
from engine.evaluation import Evaluation, PeriodicTest, evaluate
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
