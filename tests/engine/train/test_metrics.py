"""Moving windows and the bounded history."""

import numpy as np
import pytest

from engine.train.metrics import History, Window


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


def test_history_resize_thins_at_once_and_keeps_the_latest():
    history = History(max_points=100)
    for step in range(50):
        history.add({"step": step})
    history.resize(10)
    steps = [p["step"] for p in history.points]
    assert len(steps) <= 10 and steps[0] == 0 and steps[-1] == 49
    with pytest.raises(ValueError):
        history.resize(2)
