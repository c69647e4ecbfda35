"""Moving windows, the bounded history, and whole-split evaluation."""

import numpy as np
import pytest

from engine.data import Normalization
from engine.data.dataset import Split
from engine.layers.base import Context
from engine.metrics import History, Window, evaluate
from tests.builders import TINY_LAYERS, tiny_net

CLASSES = ("cat", "dog", "frog")
NORM = Normalization((127.5,) * 3, (64.0,) * 3)


def test_window_is_the_mean_of_the_last_values():
    window = Window(3)
    assert window.mean() is None
    for value in (1.0, 2.0, 3.0, 10.0):
        window.add(value)
    assert window.mean() == pytest.approx(5.0)
    window.clear()
    assert window.mean() is None


def test_history_stays_bounded_keeps_the_first_and_latest_points_and_thins_evenly():
    history = History(max_points=10)
    for step in range(1, 1001):
        history.add({"step": step})
        steps = [p["step"] for p in history.points]
        assert len(steps) <= 10
        assert steps[0] == 1 and steps[-1] == step           # the chart's ends are never stale
        assert steps == sorted(set(steps))
    # Apart from the latest point, the kept points are evenly spaced (one per `stride` offered).
    gaps = np.diff([p["step"] for p in history.points][:-1])
    assert len(set(gaps.tolist())) == 1 and gaps[0] == history.stride
    assert len(history.points) >= 5                           # thinning halves, never empties


def test_history_keeps_test_results_apart_bounded_and_with_the_latest():
    history = History(max_points=10)
    for step in range(1, 101):
        history.add({"step": step})
        if step % 3 == 0:
            history.add_test({"step": step, "test_acc": step / 100})
    steps = [t["step"] for t in history.tests]
    assert len(steps) <= 10 and steps[-1] == 99 and steps == sorted(steps)
    assert history.tests_added == 33
    history.clear()
    assert history.tests == []


def test_history_markers_are_bounded_and_clear_resets_everything():
    history = History(max_points=4)
    for i in range(250):
        history.mark({"step": i, "text": "x"})
        history.add({"step": i})
    assert len(history.markers) == 200 and history.markers[-1]["step"] == 249
    history.clear()
    assert history.points == [] and history.markers == [] and history.stride == 1
    history.add({"step": 7})
    assert history.points == [{"step": 7}]


def test_history_refuses_fewer_than_four_points():
    with pytest.raises(ValueError):
        History(3)


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


def test_history_resize_thins_at_once_and_keeps_the_latest():
    history = History(max_points=100)
    for step in range(50):
        history.add({"step": step})
    history.resize(10)
    steps = [p["step"] for p in history.points]
    assert len(steps) <= 10 and steps[0] == 0 and steps[-1] == 49
    with pytest.raises(ValueError):
        history.resize(2)


def test_evaluate_counts_a_diverged_nets_nan_outputs_without_warnings(rng):
    split = _split(rng)
    net = tiny_net(TINY_LAYERS)
    net.named_params()[-1][1][0] = np.nan                  # the last fc's first bias
    result = evaluate(net, split, NORM)
    assert result["images"] == 12 and np.array(result["confusion"]).sum() == 12
    assert result["loss"] is None
