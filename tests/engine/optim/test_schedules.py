import numpy as np
import pytest

from engine.optim import SCHEDULES, Hyperparams, OptimError, lr_at
from tests.naive.optim import lr_schedule


def lrs(steps, **hp):
    h = Hyperparams(**hp)
    return [lr_at(h, s) for s in steps]


def test_registry():
    assert list(SCHEDULES) == ["constant", "step", "cosine", "linear"]


def test_constant():
    assert lrs([0, 1, 10**6], learning_rate=0.3) == [0.3, 0.3, 0.3]


def test_step_drops_by_gamma_every_step_size():
    got = lrs([0, 9, 10, 19, 20, 35], learning_rate=1.0, schedule="step", step_size=10,
              gamma=0.5)
    assert got == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]


def test_cosine_reaches_the_floor_at_total_steps_and_stays():
    got = lrs([0, 50, 100, 101, 10**6], learning_rate=1.0, schedule="cosine",
              total_steps=100, min_lr_factor=0.1)
    assert got == pytest.approx([1.0, 0.55, 0.1, 0.1, 0.1])
    assert lrs([25], learning_rate=1.0, schedule="cosine", total_steps=100) == \
        pytest.approx([0.5 * (1 + np.cos(np.pi / 4))])


def test_warmup_alone_ramps_linearly_from_the_first_step():
    got = lrs([0, 1, 3, 4, 5, 100], learning_rate=1.0, warmup_steps=4)
    assert got == [0.25, 0.5, 1.0, 1.0, 1.0, 1.0]


def test_warmup_from_starts_the_ramp_there_as_airbench94s_triangle():
    # airbench94: 0.2 at step 0, 1 at 23% of the run, then linear to 0.07 at its end
    got = lrs([0, 4, 9, 10, 55, 100], learning_rate=2.0, warmup_steps=10, warmup_from=0.2,
              schedule="linear", total_steps=100, min_lr_factor=0.07)
    assert got == pytest.approx([2.0 * (0.2 + 0.8 * 0.1), 2.0 * (0.2 + 0.8 * 0.5), 2.0, 2.0,
                                 2.0 * (0.07 + 0.93 * 0.5), 2.0 * 0.07])
    # 0, the default, is the plain ramp, to the last bit
    assert lrs([0, 2], learning_rate=0.3, warmup_steps=7, warmup_from=0.0) == \
        [0.3 * 1 / 7, 0.3 * 3 / 7]


def test_warmup_then_step():
    got = lrs([0, 4, 5, 14, 15], learning_rate=2.0, warmup_steps=5, schedule="step",
              step_size=10, gamma=0.1)
    assert got == pytest.approx([0.4, 2.0, 2.0, 2.0, 0.2])


def test_warmup_then_cosine_counts_total_steps_from_the_start():
    got = lrs([9, 10, 60, 110, 200], learning_rate=1.0, warmup_steps=10, schedule="cosine",
              total_steps=110, min_lr_factor=0.2)
    assert got == pytest.approx([1.0, 1.0, 0.6, 0.2, 0.2])


def test_linear_falls_in_a_straight_line_to_the_floor_at_total_steps_and_stays():
    got = lrs([0, 25, 50, 100, 101, 10**6], learning_rate=1.0, schedule="linear",
              total_steps=100, min_lr_factor=0.1)
    assert got == pytest.approx([1.0, 0.775, 0.55, 0.1, 0.1, 0.1])
    assert lrs([0, 1, 2, 3], learning_rate=2.0, schedule="linear", total_steps=4) == \
        pytest.approx([2.0, 1.5, 1.0, 0.5])


def test_warmup_then_linear_as_airbench_shapes_it():
    # up for 3 steps, then down from the peak at step 3 to the floor at step 13
    got = lrs([0, 1, 2, 3, 8, 13, 20], learning_rate=1.0, warmup_steps=3, schedule="linear",
              total_steps=13, min_lr_factor=0.0)
    assert got == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0, 0.5, 0.0, 0.0])


def test_linear_needs_total_steps_beyond_warmup():
    with pytest.raises(OptimError, match=r"greater than warmup_steps \(10\) for the linear "
                                         r"schedule, got 10") as info:
        Hyperparams(schedule="linear", warmup_steps=10, total_steps=10)
    assert info.value.field == "total_steps"


@pytest.mark.parametrize("hp", [
    dict(learning_rate=0.1, schedule="linear", total_steps=150),
    dict(learning_rate=0.1, schedule="linear", total_steps=180, warmup_steps=30,
         min_lr_factor=0.07),
    dict(learning_rate=0.1),
    dict(learning_rate=0.1, warmup_steps=7),
    dict(learning_rate=0.1, schedule="step", step_size=13, gamma=0.3, warmup_steps=3),
    dict(learning_rate=0.1, schedule="cosine", total_steps=150),
    dict(learning_rate=0.1, schedule="cosine", total_steps=150, warmup_steps=20,
         min_lr_factor=0.05),
])
def test_schedules_match_reference_everywhere(hp):
    ref_hp = {k: v for k, v in Hyperparams(**hp).to_dict().items()
              if k in ("schedule", "warmup_steps", "step_size", "gamma", "total_steps",
                       "min_lr_factor")}
    steps = range(0, 250)
    np.testing.assert_allclose(lrs(steps, **hp),
                               [lr_schedule(s, lr=0.1, **ref_hp) for s in steps], rtol=1e-14)


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_decays_never_rise_after_warmup(schedule):
    got = lrs(range(5, 300), learning_rate=1.0, warmup_steps=5, schedule=schedule,
              total_steps=200, min_lr_factor=0.1)
    assert all(a >= b for a, b in zip(got, got[1:]))


def test_numpy_integer_steps_are_fine():
    assert lr_at(Hyperparams(learning_rate=0.5), np.int64(3)) == 0.5


@pytest.mark.parametrize("step", [-1, 1.5, True, "3", None])
def test_bad_steps_are_refused(step):
    with pytest.raises(OptimError, match="step must be an integer >= 0") as info:
        lr_at(Hyperparams(), step)
    assert info.value.field == "step"
