"""Update rules: ConvNetJS's Trainer set (sgd, momentum, nesterov, adagrad, windowgrad,
adadelta) and Adam, each a pure function of the arrays it is handed.

    rule.init_state(param)                     -> {state name: zeros like param}
    rule.step(param, grad, state, hp, lr, t)   updates param and state in place

`grad` is the gradient the rule follows (batch mean + decay, see `decayed_gradient`); the rule
only reads it. `lr` is this step's learning rate (the schedule's value), `t` the 1-based count
of steps taken with this state, which only Adam's bias correction reads. Arrays are
C-contiguous, of one dtype; the scalars are cast to it, so float32 stays float32.

Each rule is one Numba loop over the elements: a net has a few dozen small parameter arrays,
and the NumPy form (4-8 ufunc calls per array, each ~1 us of call overhead) made the update of
the ConvNetJS demo net 51 us per step, 4% of a batch-4 training step; with the loops it is 29.

Where we differ from ConvNetJS (convnet_trainers.js), on purpose:
- Adam divides by its bias correction, m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t),
  as the paper does (ConvNetJS multiplies), so its first step moves each weight by ~lr.
- Adadelta multiplies its step by lr, as torch does; lr = 1 is Zeiler's (and ConvNetJS's) rule,
  which ignores the learning rate.
- Nesterov keeps the same velocity as momentum (v = mu*v - lr*g, ConvNetJS stores -v), so a
  switch between the two keeps it; the steps are the same as ConvNetJS's.
- The l1 subgradient at w = 0 is 0 (np.sign), not -1.
Momentum and nesterov fold lr into the velocity (ConvNetJS, Sutskever et al.), so a change of
learning rate fades in over a few steps instead of scaling the built-up velocity at once; at a
constant lr this equals torch.optim.SGD(momentum=mu, nesterov=...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numba import njit


@dataclass(frozen=True)
class Rule:
    name: str
    state_names: tuple[str, ...]
    default_eps: float  # used when the hyperparameters leave eps as None
    update: Callable[..., None]
    summary: str

    def init_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.zeros_like(param) for name in self.state_names}

    def step(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray], hp: Any,
             lr: float, t: int) -> None:
        eps = hp.eps if hp.eps is not None else self.default_eps
        self.update(param, grad, state, hp, lr, t, eps)


# --- weight decay ----------------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy")
def decayed_gradient(out, param, grad, l1, l2):
    """out = grad + l2 * param + l1 * sign(param): the gradient of data loss + decay loss.
    l1, l2 are the global decays times this param's multipliers. Returns the decay losses
    (l1 * sum|w|, 0.5 * l2 * sum w^2) of the weights as they are, summed in float64."""
    o, w, g = out.reshape(out.size), param.reshape(param.size), grad.reshape(grad.size)
    l1_, l2_ = w.dtype.type(l1), w.dtype.type(l2)
    abs_sum = 0.0
    sq_sum = 0.0
    for i in range(w.size):
        wi = w[i]
        gi = g[i]
        if l2 != 0.0:  # skipped, not multiplied by 0: 0 * inf would make a NaN
            gi = l2_ * wi + gi
            sq_sum += np.float64(wi) * np.float64(wi)
        if l1 != 0.0:
            gi += l1_ * np.sign(wi)  # sign(0) = 0: no pull on a weight already at 0
            abs_sum += abs(np.float64(wi))
        o[i] = gi
    return l1 * abs_sum, 0.5 * l2 * sq_sum


def decay_losses(param: np.ndarray, l1: float, l2: float) -> tuple[float, float]:
    """(l1 * sum|w|, 0.5 * l2 * sum w^2): the regularisation losses ConvNetJS reports."""
    flat = param.reshape(-1)
    l2_loss = 0.5 * l2 * float(np.dot(flat, flat)) if l2 else 0.0
    l1_loss = l1 * float(np.abs(param).sum()) if l1 else 0.0
    return l1_loss, l2_loss


# --- rules: each (param, g, state, hp, lr, t, eps) -> None, a loop in a kernel -----------------
@njit(cache=True, nogil=True, error_model="numpy")
def _sgd_kernel(param, g, lr):
    # w -= lr * g
    w, g = param.reshape(param.size), g.reshape(g.size)
    lr = w.dtype.type(lr)
    for i in range(w.size):
        w[i] -= lr * g[i]


@njit(cache=True, nogil=True, error_model="numpy")
def _momentum_kernel(param, g, velocity, lr, mu, nesterov):
    # v = mu * v - lr * g;  w += v   or, nesterov's look-ahead form, w += mu * v - lr * g
    w, g, v = param.reshape(param.size), g.reshape(g.size), velocity.reshape(velocity.size)
    lr, mu = w.dtype.type(lr), w.dtype.type(mu)
    for i in range(w.size):
        step = lr * g[i]
        vi = mu * v[i] - step
        v[i] = vi
        if nesterov:
            w[i] = (w[i] - step) + mu * vi
        else:
            w[i] += vi


@njit(cache=True, nogil=True, error_model="numpy")
def _rms_kernel(param, g, mean_sq, mean_sq_delta, lr, ro, eps, mode):
    # mode 0 adagrad:    s += g^2;                      w -= lr * g / sqrt(s + eps)
    # mode 1 windowgrad: s = ro * s + (1 - ro) * g^2;   w -= lr * g / sqrt(s + eps)
    # mode 2 adadelta:   the same s;  d = g * sqrt(x + eps) / sqrt(s + eps);
    #                    x = ro * x + (1 - ro) * d^2;   w -= lr * d
    w, g = param.reshape(param.size), g.reshape(g.size)
    s, x = mean_sq.reshape(mean_sq.size), mean_sq_delta.reshape(mean_sq_delta.size)
    keep = w.dtype.type(1.0 - ro)  # in float64 first, as NumPy would
    lr, ro, eps = w.dtype.type(lr), w.dtype.type(ro), w.dtype.type(eps)
    for i in range(w.size):
        gi = g[i]
        si = s[i] + gi * gi if mode == 0 else ro * s[i] + (gi * gi) * keep
        s[i] = si
        d = gi / np.sqrt(si + eps)
        if mode == 2:
            d *= np.sqrt(x[i] + eps)
            x[i] = ro * x[i] + (d * d) * keep
        w[i] -= lr * d


@njit(cache=True, nogil=True, error_model="numpy")
def _adam_kernel(param, g, first, second, lr, b1, b2, eps, correction1, correction2):
    # m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;  w -= lr * (m / c1) / (sqrt(v / c2) + eps)
    # with c1 = 1 - b1^t, c2 = 1 - b2^t (the paper's bias correction)
    w, g = param.reshape(param.size), g.reshape(g.size)
    m, v = first.reshape(first.size), second.reshape(second.size)
    t = w.dtype.type
    keep1, keep2 = t(1.0 - b1), t(1.0 - b2)
    b1, b2, eps, c2 = t(b1), t(b2), t(eps), t(correction2)
    step = t(lr / correction1)
    for i in range(w.size):
        gi = g[i]
        mi = b1 * m[i] + keep1 * gi
        vi = b2 * v[i] + (gi * gi) * keep2
        m[i] = mi
        v[i] = vi
        w[i] -= step * (mi / (np.sqrt(vi / c2) + eps))


def _sgd(param, g, state, hp, lr, t, eps):
    _sgd_kernel(param, g, lr)


def _momentum(param, g, state, hp, lr, t, eps):
    _momentum_kernel(param, g, state["velocity"], lr, hp.momentum, False)


def _nesterov(param, g, state, hp, lr, t, eps):
    _momentum_kernel(param, g, state["velocity"], lr, hp.momentum, True)


def _adagrad(param, g, state, hp, lr, t, eps):
    s = state["sum_sq_grad"]
    _rms_kernel(param, g, s, s, lr, 0.0, eps, 0)  # adagrad keeps no second average


def _windowgrad(param, g, state, hp, lr, t, eps):
    s = state["mean_sq_grad"]
    _rms_kernel(param, g, s, s, lr, hp.ro, eps, 1)


def _adadelta(param, g, state, hp, lr, t, eps):
    _rms_kernel(param, g, state["mean_sq_grad"], state["mean_sq_delta"], lr, hp.ro, eps, 2)


def _adam(param, g, state, hp, lr, t, eps):
    _adam_kernel(param, g, state["first_moment"], state["second_moment"], lr, hp.beta1,
                 hp.beta2, eps, 1.0 - hp.beta1 ** t, 1.0 - hp.beta2 ** t)


OPTIMIZERS: dict[str, Rule] = {rule.name: rule for rule in (
    Rule("sgd", (), 1e-6, _sgd, "w -= lr*g"),
    Rule("momentum", ("velocity",), 1e-6, _momentum, "v = mu*v - lr*g; w += v"),
    Rule("nesterov", ("velocity",), 1e-6, _nesterov, "v = mu*v - lr*g; w += mu*v - lr*g"),
    Rule("adagrad", ("sum_sq_grad",), 1e-6, _adagrad, "s += g^2; w -= lr*g/sqrt(s+eps)"),
    Rule("windowgrad", ("mean_sq_grad",), 1e-6, _windowgrad,
         "s = ro*s + (1-ro)*g^2; w -= lr*g/sqrt(s+eps)"),
    Rule("adadelta", ("mean_sq_grad", "mean_sq_delta"), 1e-6, _adadelta,
         "s = ro*s + (1-ro)*g^2; d = g*sqrt(x+eps)/sqrt(s+eps); x = ro*x + (1-ro)*d^2; "
         "w -= lr*d"),
    Rule("adam", ("first_moment", "second_moment"), 1e-8, _adam,
         "m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; "
         "w -= lr*(m/(1-b1^t))/(sqrt(v/(1-b2^t))+eps)"),
)}
