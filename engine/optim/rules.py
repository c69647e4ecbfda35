"""Update rules: ConvNetJS's Trainer set (sgd, momentum, nesterov, adagrad, windowgrad,
adadelta) and Adam, each a pure function of the arrays it is handed.

    rule.init_state(param)                          -> {state name: zeros like param}
    rule.step(param, grad, state, hp, lr, t, tmp)   updates param and state in place

`grad` is the gradient the rule follows (batch mean + decay, see `decayed_gradient`); the rule
uses it as scratch and leaves garbage in it, as it does in `tmp` (same shape, optional). `lr` is
this step's learning rate (the schedule's value), `t` the 1-based count of steps taken with this
state, which only Adam's bias correction reads. Everything runs in the param's dtype with `out=`
so a step allocates nothing.

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
             lr: float, t: int, tmp: np.ndarray | None = None) -> None:
        eps = hp.eps if hp.eps is not None else self.default_eps
        self.update(param, grad, state, hp, lr, t, eps, tmp if tmp is not None
                    else np.empty_like(param))


# --- weight decay ----------------------------------------------------------------------------
def decayed_gradient(out: np.ndarray, param: np.ndarray, grad: np.ndarray, l1: float, l2: float,
                     tmp: np.ndarray) -> np.ndarray:
    """out = grad + l2 * param + l1 * sign(param): the gradient of data loss + decay loss.
    l1, l2 are the global decays times this param's multipliers. tmp is scratch."""
    if l2:
        np.multiply(param, l2, out=out)
        out += grad
    else:
        np.copyto(out, grad)
    if l1:
        np.sign(param, out=tmp)
        tmp *= l1
        out += tmp
    return out


def decay_losses(param: np.ndarray, l1: float, l2: float, tmp: np.ndarray | None = None
                 ) -> tuple[float, float]:
    """(l1 * sum|w|, 0.5 * l2 * sum w^2): the regularisation losses ConvNetJS reports."""
    flat = param.reshape(-1)
    l2_loss = 0.5 * l2 * float(np.dot(flat, flat)) if l2 else 0.0
    l1_loss = 0.0
    if l1:
        tmp = tmp if tmp is not None else np.empty_like(param)
        l1_loss = l1 * float(np.abs(param, out=tmp).sum())
    return l1_loss, l2_loss


# --- rules: each (param, g, state, hp, lr, t, eps, tmp) -> None ------------------------------
def _sgd(param, g, state, hp, lr, t, eps, tmp):
    # w -= lr * g
    g *= lr
    param -= g


def _momentum(param, g, state, hp, lr, t, eps, tmp):
    # v = mu * v - lr * g;  w += v
    v = state["velocity"]
    g *= lr
    v *= hp.momentum
    v -= g
    param += v


def _nesterov(param, g, state, hp, lr, t, eps, tmp):
    # v = mu * v - lr * g;  w += mu * v - lr * g   (the look-ahead form)
    v = state["velocity"]
    g *= lr
    v *= hp.momentum
    v -= g
    param -= g
    np.multiply(v, hp.momentum, out=tmp)
    param += tmp


def _adagrad(param, g, state, hp, lr, t, eps, tmp):
    # s += g^2;  w -= lr * g / sqrt(s + eps)
    s = state["sum_sq_grad"]
    np.multiply(g, g, out=tmp)
    s += tmp
    _divide_by_rms(g, s, eps, tmp)
    g *= lr
    param -= g


def _windowgrad(param, g, state, hp, lr, t, eps, tmp):
    # s = ro * s + (1 - ro) * g^2;  w -= lr * g / sqrt(s + eps)   (RMSProp, eps inside)
    s = state["mean_sq_grad"]
    _decay_average_sq(s, g, hp.ro, tmp)
    _divide_by_rms(g, s, eps, tmp)
    g *= lr
    param -= g


def _adadelta(param, g, state, hp, lr, t, eps, tmp):
    # s = ro*s + (1-ro)*g^2;  d = g * sqrt(x + eps) / sqrt(s + eps);  x = ro*x + (1-ro)*d^2;
    # w -= lr * d   (x lags s by one step, as in Zeiler's paper)
    s, x = state["mean_sq_grad"], state["mean_sq_delta"]
    _decay_average_sq(s, g, hp.ro, tmp)
    _divide_by_rms(g, s, eps, tmp)
    np.add(x, eps, out=tmp)
    np.sqrt(tmp, out=tmp)
    g *= tmp
    _decay_average_sq(x, g, hp.ro, tmp)
    g *= lr
    param -= g


def _adam(param, g, state, hp, lr, t, eps, tmp):
    # m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
    # w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    m, v = state["first_moment"], state["second_moment"]
    b1, b2 = hp.beta1, hp.beta2
    _decay_average_sq(v, g, b2, tmp)
    g *= 1.0 - b1
    m *= b1
    m += g
    np.divide(v, 1.0 - b2 ** t, out=tmp)
    np.sqrt(tmp, out=tmp)
    tmp += eps
    np.divide(m, tmp, out=tmp)
    tmp *= lr / (1.0 - b1 ** t)
    param -= tmp


def _decay_average_sq(avg, g, ro, tmp):
    # avg = ro * avg + (1 - ro) * g^2
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - ro
    avg *= ro
    avg += tmp


def _divide_by_rms(g, sq, eps, tmp):
    # g /= sqrt(sq + eps)
    np.add(sq, eps, out=tmp)
    np.sqrt(tmp, out=tmp)
    g /= tmp


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
