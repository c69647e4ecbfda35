"""The shared thread tuner (engine/threads.py): trials at each count, keeps the fastest, tries
again later, or at once when the kept count slows down."""

import pytest

from engine.threads import SLOW_STEPS, ThreadTuner, machine_threads


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


def test_a_slowdown_after_settling_starts_a_trial_at_once():
    clock = Clock()
    tuner = ThreadTuner((2, 1), period_s=600, trial_s=1.0, min_trial_steps=3, clock=clock)
    run_steps(tuner, clock, {2: 0.05, 1: 0.1}, 60)      # idle: 2 threads kept
    assert tuner.current == 2 and not tuner.trying
    # Another program starts: 2 threads become 10x slower, long before the next period.
    busy = {2: 0.5, 1: 0.1}
    used = run_steps(tuner, clock, busy, SLOW_STEPS + 30)
    assert used[:SLOW_STEPS] == [2] * SLOW_STEPS
    assert tuner.current == 1 and tuner.trials == 2
    assert clock.now < 600                               # well before the period ran out


def test_one_slow_step_is_not_a_slowdown():
    clock = Clock()
    tuner = ThreadTuner((2, 1), period_s=600, trial_s=1.0, min_trial_steps=3, clock=clock)
    run_steps(tuner, clock, {2: 0.05, 1: 0.1}, 60)
    trials = tuner.trials
    for _ in range(10):               # a slow step now and then (a test chunk rode on it)
        run_steps(tuner, clock, {2: 0.5, 1: 0.5}, 1)
        run_steps(tuner, clock, {2: 0.05, 1: 0.1}, 5)
    assert tuner.trials == trials and not tuner.trying


def test_the_first_steps_can_be_left_out_of_the_trial():
    clock = Clock()
    tuner = ThreadTuner((2, 1), trial_s=1.0, min_trial_steps=3, skip_first=1, clock=clock)
    # The first step compiles for 20 s: counted, it would make 2 threads look slow.
    tuner.threads_for_next_step()
    clock.now += 20
    tuner.record(10, 20.0)
    run_steps(tuner, clock, {2: 0.05, 1: 0.1}, 60)
    assert tuner.current == 2 and tuner.rates[2] == pytest.approx(200.0)


def test_for_machine_and_what_it_prints():
    cores = machine_threads()
    tuner = ThreadTuner.for_machine(None)
    assert tuner.candidates == tuple(dict.fromkeys((cores, 1)))
    fixed = ThreadTuner.for_machine(1)
    assert fixed.candidates == (1,) and not fixed.tuning
    assert fixed.summary() == "1 thread (fixed by --threads)" and fixed.label() == "1 thread"
    for bad in (0, cores + 1):
        with pytest.raises(ValueError, match="between 1 and"):
            ThreadTuner.for_machine(bad)
    clock = Clock()
    tuner = ThreadTuner((2, 1), trial_s=1.0, min_trial_steps=3, clock=clock)
    assert tuner.label() == "2 threads (trying)"
    run_steps(tuner, clock, {2: 0.5, 1: 0.1}, 30)
    assert tuner.summary() == "1 thread (measured: 2 threads 20 img/s, 1 thread 100 img/s)"


def test_run_sets_numbas_count_and_times_the_work():
    import numba
    tuner = ThreadTuner((1,))
    before = numba.get_num_threads()
    try:
        assert tuner.run(lambda: numba.get_num_threads(), images=1) == 1
    finally:
        numba.set_num_threads(before)
