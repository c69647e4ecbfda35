"""Each update rule against tests/naive/optim.py (the formulas, ConvNetJS's for the Trainer set,
the paper's for Adam), with state carried over several steps; plus the decay helpers."""

import numpy as np
import pytest

from engine.optim import OPTIMIZERS, Hyperparams, decay_losses, decayed_gradient
from tests.naive import optim as naive

# our state name -> (reference state name, sign): ConvNetJS's nesterov stores -velocity
STATE_MAP = {
    "sgd": {},
    "momentum": {"velocity": ("gsum", 1.0)},
    "nesterov": {"velocity": ("gsum", -1.0)},
    "adagrad": {"sum_sq_grad": ("gsum", 1.0)},
    "windowgrad": {"mean_sq_grad": ("gsum", 1.0)},
    "adadelta": {"mean_sq_grad": ("gsum", 1.0), "mean_sq_delta": ("xsum", 1.0)},
    "adam": {"first_moment": ("m", 1.0), "second_moment": ("v", 1.0)},
}
HP = dict(momentum=0.8, ro=0.9, beta1=0.85, beta2=0.99)


def test_registry_is_the_convnetjs_set_plus_adam():
    assert list(OPTIMIZERS) == ["sgd", "momentum", "nesterov", "adagrad", "windowgrad",
                                "adadelta", "adam"]
    assert set(STATE_MAP) == set(OPTIMIZERS)
    for name, rule in OPTIMIZERS.items():
        assert rule.name == name
        assert tuple(STATE_MAP[name]) == rule.state_names


def run_rule(method, dtype, rng, steps=5, shape=(3, 4, 2)):
    """Our rule and the reference side by side; lr changes every step."""
    hp = Hyperparams(method=method, **HP)
    ref_hp = dict(hp.to_dict(), eps=hp.effective_eps)
    rule = OPTIMIZERS[method]
    w0 = rng.standard_normal(shape)
    w, ref_w = w0.astype(dtype), w0.copy()
    state, ref_state = rule.init_state(w), {}
    for t in range(1, steps + 1):
        g = rng.standard_normal(shape)
        lr = 0.1 / t
        rule.step(w, g.astype(dtype), state, hp, lr, t)
        ref_w, ref_state = naive.RULES[method](ref_w, g, ref_state, ref_hp, lr, t)
    return w, state, ref_w, ref_state


@pytest.mark.parametrize("method", list(OPTIMIZERS))
def test_rule_matches_formulas_float64(method, rng):
    w, state, ref_w, ref_state = run_rule(method, np.float64, rng)
    np.testing.assert_allclose(w, ref_w, rtol=1e-12, atol=1e-14)
    assert set(state) == set(STATE_MAP[method])
    for ours, (theirs, sign) in STATE_MAP[method].items():
        np.testing.assert_allclose(state[ours], sign * ref_state[theirs], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method", list(OPTIMIZERS))
def test_rule_stays_float32(method, rng):
    w, state, ref_w, _ = run_rule(method, np.float32, rng)
    assert w.dtype == np.float32
    assert all(arr.dtype == np.float32 for arr in state.values())
    np.testing.assert_allclose(w, ref_w, rtol=1e-5, atol=1e-6)


def test_adam_divides_by_bias_correction(rng):
    # First step: m_hat = g, v_hat = g^2, so every weight moves by lr * g/(|g| + eps) ~ lr.
    # (ConvNetJS multiplies by 1 - beta^t: 0.01 g / sqrt(1e-6 g^2), a first step of 10 lr.)
    lr = 1e-3
    g = rng.choice([-1.0, 1.0], size=50) * 10.0 ** rng.uniform(-4, 3, size=50)
    w = np.zeros(50)
    state = OPTIMIZERS["adam"].init_state(w)
    OPTIMIZERS["adam"].step(w, g.copy(), state, Hyperparams(method="adam"), lr, 1)
    np.testing.assert_allclose(w, -lr * np.sign(g), rtol=1e-3)
    # A constant gradient keeps moving each weight by lr at every step.
    for t in range(2, 12):
        before = w.copy()
        OPTIMIZERS["adam"].step(w, g.copy(), state, Hyperparams(method="adam"), lr, t)
        np.testing.assert_allclose(w - before, -lr * np.sign(g), rtol=1e-3)


def test_eps_none_uses_rule_default_and_explicit_eps_wins():
    assert Hyperparams(method="adam").effective_eps == 1e-8
    assert Hyperparams(method="adadelta").effective_eps == 1e-6
    assert Hyperparams(method="adam", eps=1e-3).effective_eps == 1e-3
    # adagrad with a huge eps barely moves: proof the explicit eps reached the rule
    w = np.zeros(1)
    OPTIMIZERS["adagrad"].step(w, np.ones(1), {"sum_sq_grad": np.zeros(1)},
                               Hyperparams(method="adagrad", eps=99.0), 1.0, 1)
    np.testing.assert_allclose(w, [-0.1])


def test_adadelta_learning_rate_scales_the_step(rng):
    g = rng.standard_normal(5)
    moves = []
    for lr in (1.0, 0.5):
        w = np.zeros(5)
        OPTIMIZERS["adadelta"].step(w, g.copy(), OPTIMIZERS["adadelta"].init_state(w),
                                    Hyperparams(method="adadelta"), lr, 1)
        moves.append(w)
    np.testing.assert_allclose(moves[1], 0.5 * moves[0])


# --- decay ------------------------------------------------------------------------------------
def test_decayed_gradient_matches_formula(rng):
    w = rng.standard_normal((4, 3))
    w[0, 0] = 0.0
    g = rng.standard_normal((4, 3))
    out = np.empty_like(w)
    for l1, l2 in ((0.0, 0.0), (0.01, 0.0), (0.0, 0.1), (0.01, 0.1)):
        losses = decayed_gradient(out, w, g, l1, l2)
        np.testing.assert_allclose(out, naive.decayed_grad(w, g, l1, l2), rtol=1e-14)
        # it also returns the decay losses of the weights, as decay_losses does
        assert losses == pytest.approx(decay_losses(w, l1, l2), rel=1e-13, abs=0)
    # the l1 subgradient at exactly 0 is 0 (ConvNetJS uses -1)
    decayed_gradient(out, w, g, 1.0, 0.0)
    assert out[0, 0] == g[0, 0]


def test_decay_of_an_infinite_weight_is_not_a_nan_when_it_is_off():
    # 0 * inf is NaN: a decay that is off must be skipped, not multiplied by 0.
    w = np.array([np.inf, 1.0], np.float32)
    out = np.empty_like(w)
    decayed_gradient(out, w, np.ones(2, np.float32), 0.0, 0.0)
    np.testing.assert_array_equal(out, [1.0, 1.0])


def test_decay_losses(rng):
    w = rng.standard_normal((5, 2)).astype(np.float32)
    l1_loss, l2_loss = decay_losses(w, 0.01, 0.1)
    w64 = w.astype(np.float64)
    assert l1_loss == pytest.approx(0.01 * np.abs(w64).sum(), rel=1e-6)
    assert l2_loss == pytest.approx(0.05 * (w64 ** 2).sum(), rel=1e-6)
    assert decay_losses(w, 0.0, 0.0) == (0.0, 0.0)
    assert isinstance(l1_loss, float) and isinstance(l2_loss, float)
