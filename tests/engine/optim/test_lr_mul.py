"""Per-parameter learning-rate multipliers (Optimizer(lr_muls=...)) and set_frozen, by hand."""

import math

import numpy as np
import pytest

from engine.optim import Optimizer


def params(l2_mul=1.0):
    return [("0.w", np.array([1.0, -2.0]), (0.0, l2_mul)),
            ("0.b", np.array([0.5]), (0.0, l2_mul))]


def grads_of(named, g=0.5):
    return [(name, arr, np.full_like(arr, g), decay) for name, arr, decay in named]


def test_sgd_moves_the_data_gradient_m_times_as_far_and_decays_as_before():
    named = params()
    opt = Optimizer(named, method="sgd", learning_rate=0.1, l2_decay=0.2,
                    lr_muls={"0.b": 4.0})
    reg = opt.step(grads_of(named))
    # 0.w: w -= 0.1 * (0.5 + 0.2 * w);  0.b: w -= 0.1 * 4 * 0.5 + 0.1 * 0.2 * w
    np.testing.assert_allclose(named[0][1], [1.0 - 0.1 * (0.5 + 0.2), -2.0 - 0.1 * (0.5 - 0.4)])
    np.testing.assert_allclose(named[1][1], [0.5 - 0.2 - 0.01])
    # the decay's loss as configured: 0.5 * 0.2 * sum w^2 over both, before the step
    assert reg == pytest.approx(0.5 * 0.2 * (1 + 4 + 0.25))


def test_nesterov_with_a_multiplier_is_nesterov_at_m_times_the_rate_with_decay_over_m():
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(4)]
    a, b = [("p", w0.copy(), (0.0, 1.0))], [("p", w0.copy(), (0.0, 1.0 / 8))]
    fast = Optimizer(a, method="nesterov", momentum=0.85, learning_rate=0.05, l2_decay=0.3,
                     lr_muls={"p": 8.0})
    plain = Optimizer(b, method="nesterov", momentum=0.85, learning_rate=0.4, l2_decay=0.3)
    for g in grads:
        fast.step([("p", a[0][1], g, (0.0, 1.0))])
        plain.step([("p", b[0][1], g, (0.0, 1.0 / 8))])
    np.testing.assert_allclose(a[0][1], b[0][1], rtol=1e-12)


@pytest.mark.parametrize("muls, text", [
    ({"1.w": 2.0}, r"multipliers for \['1.w'\], which are not among"),
    ({"0.w": 0.0}, "must be a finite number > 0, got 0.0"),
    ({"0.w": -1.0}, "must be a finite number > 0"),
    ({"0.w": math.inf}, "must be a finite number > 0"),
    ({"0.w": math.nan}, "must be a finite number > 0"),
    ({"0.w": True}, "must be a finite number > 0, got True"),
    ({"0.w": "2"}, "must be a finite number > 0"),
])
def test_bad_multipliers_are_refused(muls, text):
    with pytest.raises(ValueError, match=text):
        Optimizer(params(), lr_muls=muls)


def test_set_frozen_stops_and_resumes_steps_and_checks_names():
    named = params()
    opt = Optimizer(named, method="sgd", learning_rate=0.1)
    opt.set_frozen(["0.b"])
    opt.step(grads_of(named))
    assert named[1][1][0] == 0.5 and named[0][1][0] == pytest.approx(0.95)
    opt.set_frozen([])
    opt.step(grads_of(named))
    assert named[1][1][0] == pytest.approx(0.45)
    with pytest.raises(ValueError, match=r"frozen parameters \['2.w'\] are not among"):
        opt.set_frozen(["2.w"])
    assert opt.frozen == frozenset()          # a refused change changes nothing
