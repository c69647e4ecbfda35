"""Lookahead by hand: the pull-back's arithmetic, its cubic ramp, when it is due; and frozen
parameters in the Optimizer (the whitening conv's weights)."""

import numpy as np
import pytest

from engine.optim import Hyperparams, Lookahead, Optimizer, lookahead_decay


def test_a_pull_back_averages_into_the_slow_copy_and_copies_it_back():
    w = np.array([1.0, -2.0, 4.0], dtype=np.float32)
    b = np.array([[10.0]], dtype=np.float32)
    look = Lookahead([w, b])                  # slow = (1, -2, 4), (10)
    w[:] = [3.0, 0.0, 4.0]                    # five "updates" later
    b[:] = 20.0
    look.pull_back(0.75)
    # slow = 0.75 * slow + 0.25 * w
    np.testing.assert_array_equal(w, np.float32([1.5, -1.5, 4.0]))
    np.testing.assert_array_equal(b, np.float32([[12.5]]))
    np.testing.assert_array_equal(look.slow[0], w)
    assert w.dtype == np.float32 and look.slow[0] is not w
    w[:] = [2.5, -1.5, 0.0]
    look.pull_back(0.5)
    np.testing.assert_array_equal(w, np.float32([2.0, -1.5, 2.0]))


def test_decay_zero_keeps_the_fast_weights_and_one_the_slow():
    w = np.array([1.0, 2.0])
    look = Lookahead([w])
    w[:] = [5.0, 6.0]
    look.pull_back(0.0)
    np.testing.assert_array_equal(w, [5.0, 6.0])
    w[:] = [7.0, 8.0]
    look.pull_back(1.0)                       # back to the last pull-back's weights
    np.testing.assert_array_equal(w, [5.0, 6.0])


def test_finish_pulls_back_once_more_unless_one_was_just_made():
    hp = Hyperparams(lookahead=0.5, lookahead_every=4, total_steps=6)
    w = np.array([2.0])
    look = Lookahead([w])
    w[:] = 4.0
    look.finish(hp, 3)                        # decay 0.5 * (3 / 6)^3 = 1 / 16
    np.testing.assert_allclose(w, [2.0 / 16 + 4.0 * 15 / 16])
    w[:] = 8.0
    look.finish(hp, 4)                        # t = 4: the update just pulled back
    np.testing.assert_array_equal(w, [8.0])
    look.finish(hp, 0)                        # no update yet
    np.testing.assert_array_equal(w, [8.0])


def test_restart_takes_the_weights_as_they_are():
    w = np.array([1.0, 2.0])
    look = Lookahead([w])
    w[:] = [3.0, 4.0]
    look.restart()
    w[:] = [5.0, 6.0]
    look.pull_back(0.5)
    np.testing.assert_array_equal(w, [4.0, 5.0])


@pytest.mark.parametrize("decay", [-0.1, 1.5, float("nan")])
def test_bad_decays_are_refused(decay):
    with pytest.raises(ValueError, match="decay must be in"):
        Lookahead([np.zeros(2)]).pull_back(decay)


def test_the_decay_ramps_up_cubically_over_the_schedule():
    hp = Hyperparams(lookahead=0.8, total_steps=100)
    assert lookahead_decay(hp, 0) == 0.0
    assert lookahead_decay(hp, 50) == pytest.approx(0.8 * 0.125)
    assert lookahead_decay(hp, 100) == pytest.approx(0.8)
    assert lookahead_decay(hp, 10**6) == pytest.approx(0.8)
    assert lookahead_decay(Hyperparams(total_steps=100), 100) == 0.0   # off


def test_a_pull_back_is_due_every_lookahead_every_updates_while_on():
    look = Lookahead([np.zeros(1)])
    hp = Hyperparams(lookahead=0.5, lookahead_every=5)
    assert [t for t in range(0, 21) if look.due(hp, t)] == [5, 10, 15, 20]
    assert not any(look.due(hp.replace(lookahead=0.0), t) for t in range(21))


# --- frozen parameters ------------------------------------------------------------------------
def params():
    return [("0.w", np.ones(3, np.float32), (0.0, 1.0)), ("0.b", np.ones(2, np.float32),
                                                          (0.0, 0.0))]


def test_frozen_parameters_are_never_stepped_nor_decayed():
    named = params()
    opt = Optimizer(named, method="momentum", learning_rate=0.1, l2_decay=0.5,
                    frozen=["0.w"])
    grads = [(name, arr, np.full_like(arr, 2.0), decay) for name, arr, decay in named]
    reg = opt.step(grads)
    np.testing.assert_array_equal(named[0][1], np.ones(3))            # frozen
    np.testing.assert_allclose(named[1][1], 1.0 - 0.1 * 2.0)           # stepped
    assert reg == 0.0                         # the only decayed parameter is frozen
    assert opt.reg_loss((n, a, d) for n, a, d in named) == 0.0
    thawed = Optimizer(params(), method="momentum", learning_rate=0.1, l2_decay=0.5)
    assert thawed.reg_loss(params()) == pytest.approx(0.5 * 0.5 * 3)


def test_frozen_names_must_be_parameters():
    with pytest.raises(ValueError, match=r"frozen parameters \['1.w'\] are not among"):
        Optimizer(params(), frozen=["1.w"])
