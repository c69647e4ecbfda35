"""Checkpoints: when runs take them, what thinning keeps within the memory bound, and that a
checkpoint puts back exactly the weights it copied."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from engine.train.checkpoints import FIRST_STEPS, SPACING, Checkpoints


class FakeNet:
    spec = "spec"

    def __init__(self, size: int = 250) -> None:
        self.w = np.zeros(size, np.float32)
        self.mean = np.zeros(3, np.float32)

    def named_params(self):
        return [("0.w", self.w, (1.0, 1.0))]

    def named_buffers(self):
        return [("1.running_mean", self.mean)]


def trainer_at(net: FakeNet, step: int) -> SimpleNamespace:
    net.w[:] = step
    net.mean[:] = -step
    return SimpleNamespace(net=net, step_count=step, examples_seen=4 * step,
                           wall_seconds=0.5 * step, optimizer=SimpleNamespace(t=step),
                           schedule_start=0)


def train(checkpoints: Checkpoints, run: str, net: FakeNet, steps: int, test_every=0):
    for step in range(steps + 1):
        tested = bool(test_every) and step > 0 and step % test_every == 0
        if tested or checkpoints.due(run, step):
            checkpoints.take(run, trainer_at(net, step), tested)


def test_every_early_step_then_every_five_percent():
    checkpoints = Checkpoints()
    train(checkpoints, "r1", FakeNet(), 1000)
    kept = [c.step for c in checkpoints.list("r1")]
    assert kept[:FIRST_STEPS + 1] == list(range(FIRST_STEPS + 1))
    for a, b in zip(kept[FIRST_STEPS:], kept[FIRST_STEPS + 1:]):
        assert b == max(a + 1, math.ceil(a * SPACING))
    assert len(kept) < 100


def test_thinning_keeps_the_first_and_latest_and_spreads_the_rest_over_log_steps():
    net = FakeNet()
    one = 4 * (net.w.size + net.mean.size)
    checkpoints = Checkpoints(max_bytes=20 * one)
    train(checkpoints, "r1", net, 20000)
    kept = [c.step for c in checkpoints.list("r1")]
    assert len(kept) == 20 and checkpoints.nbytes == 20 * one == checkpoints.count * one
    assert kept[0] == 0 and kept[-1] >= 20000 / SPACING
    gaps = np.diff(np.log(np.array(kept[1:]) + 1.0))
    assert gaps.max() < 3 * gaps.mean()        # no stretch of the run left without any
    assert checkpoints.thinned > 0


def test_a_tests_checkpoint_outlasts_its_plain_neighbours():
    net = FakeNet()
    one = 4 * (net.w.size + net.mean.size)
    checkpoints = Checkpoints(max_bytes=30 * one)
    train(checkpoints, "r1", net, 3000, test_every=1000)
    tested = [c.step for c in checkpoints.list("r1") if c.tested]
    assert tested == [1000, 2000, 3000]


def test_runs_share_one_bound_and_each_keeps_its_ends():
    net = FakeNet()
    one = 4 * (net.w.size + net.mean.size)
    checkpoints = Checkpoints(max_bytes=12 * one)
    train(checkpoints, "r1", net, 500)
    train(checkpoints, "r2", net, 500)
    assert checkpoints.nbytes <= 12 * one
    for run in ("r1", "r2"):
        kept = checkpoints.list(run)
        assert kept[0].step == 0 and kept[-1].step >= 500 / SPACING
    checkpoints.clear("r1")
    assert checkpoints.list("r1") == [] and checkpoints.nbytes == len(
        checkpoints.list("r2")) * one


def test_a_checkpoint_puts_back_what_it_copied_and_knows_its_net():
    net = FakeNet()
    checkpoints = Checkpoints()
    train(checkpoints, "r1", net, 30)
    at_7 = checkpoints.nearest("r1", 7)
    assert at_7.step == 7 and at_7.examples == 28 and at_7.seconds == 3.5
    assert at_7.schedule_t == 7
    at_7.load_into(net)
    assert np.all(net.w == 7) and np.all(net.mean == -7)
    other = FakeNet()
    other.spec = "another"
    with pytest.raises(ValueError, match="another net"):
        at_7.load_into(other)


def test_nearest_breaks_ties_to_the_earlier_and_a_test_is_attached_where_it_started():
    checkpoints = Checkpoints()
    train(checkpoints, "r1", FakeNet(), 14)          # ... 10, 11, 12, 13, 14
    checkpoints.take("r1", trainer_at(FakeNet(), 16))
    assert checkpoints.nearest("r1", 15).step == 14
    assert checkpoints.add_test("r1", 12, {"accuracy": 0.5})
    assert checkpoints.find("r1", 12).describe()["test_acc"] == 0.5
    assert not checkpoints.add_test("r1", 15, {"accuracy": 0.5})
    assert checkpoints.nearest("r9", 3) is None


def test_a_run_brought_back_to_an_earlier_step_starts_its_list_over():
    checkpoints = Checkpoints()
    net = FakeNet()
    train(checkpoints, "r1", net, 20)
    checkpoints.take("r1", trainer_at(net, 0))       # a reset
    assert [c.step for c in checkpoints.list("r1")] == [0]
    assert checkpoints.count == 1
