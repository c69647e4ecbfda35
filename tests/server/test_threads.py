"""The worker's thread tuner: trials at each count, keeps the fastest, tries again later."""

import pytest

from server.threads import ThreadTuner


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run_steps(tuner, clock, seconds_per_step, steps):
    """Steps of 10 images; seconds_per_step maps a thread count to its step time."""
    used = []
    for _ in range(steps):
        threads = tuner.threads_for_next_step()
        used.append(threads)
        clock.now += seconds_per_step[threads]
        tuner.record(10, seconds_per_step[threads])
    return used


def test_it_tries_each_count_then_keeps_the_fastest_until_the_next_trial():
    clock = Clock()
    tuner = ThreadTuner((2, 1), period_s=60, trial_s=1.0, min_trial_steps=3, clock=clock)
    busy = {2: 0.5, 1: 0.1}          # another program holds a core: 1 thread is 5x faster
    used = run_steps(tuner, clock, busy, 20)
    assert used[:2] == [2, 2]        # 2 threads for 1 s (2 steps would do, 3 is the minimum)
    assert used[2] == 2 and used[3:13] == [1] * 10 and set(used[13:]) == {1}
    assert tuner.rates == {2: pytest.approx(20.0), 1: pytest.approx(100.0)}
    assert not tuner.trying and tuner.current == 1
    # The machine frees up; the next trial (a minute after settling) finds 2 threads faster.
    idle = {2: 0.05, 1: 0.1}
    clock.now += 60
    run_steps(tuner, clock, idle, 40)
    assert tuner.current == 2 and tuner.rates[2] == pytest.approx(200.0)


def test_a_fixed_count_never_tries_another():
    clock = Clock()
    tuner = ThreadTuner((1,), clock=clock)
    clock.now += 1000
    assert set(run_steps(tuner, clock, {1: 0.1}, 50)) == {1}
    assert tuner.rates == {} and not tuner.trying


def test_bad_candidates_are_refused():
    with pytest.raises(ValueError):
        ThreadTuner(())
    with pytest.raises(ValueError):
        ThreadTuner((0, 1))
