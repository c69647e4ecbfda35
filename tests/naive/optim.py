"""Reference update rules written straight from the formulas, in float64, one fresh array per
line (no in-place tricks). Momentum and nesterov follow ConvNetJS's convnet_trainers.js
literally, including its sign convention for nesterov's accumulator (gsum); adam follows the
paper (Kingma & Ba, Algorithm 1), dividing by the bias correction.

Each function: (w, g, state, hp, lr, t) -> (new w, new state); g already includes decay.
"""

import math

import numpy as np


def decayed_grad(w, g, l1, l2):
    return g + l2 * w + l1 * np.sign(w)


def decay_loss(w, l1, l2):
    return l1 * np.sum(np.abs(w)) + 0.5 * l2 * np.sum(w * w)


def sgd(w, g, state, hp, lr, t):
    return w - lr * g, {}


def momentum(w, g, state, hp, lr, t):
    gsum = state.get("gsum", np.zeros_like(w))
    dx = hp["momentum"] * gsum - lr * g
    return w + dx, {"gsum": dx}


def nesterov(w, g, state, hp, lr, t):
    gsum_old = state.get("gsum", np.zeros_like(w))
    gsum = gsum_old * hp["momentum"] + lr * g
    dx = hp["momentum"] * gsum_old - (1.0 + hp["momentum"]) * gsum
    return w + dx, {"gsum": gsum}


def adagrad(w, g, state, hp, lr, t):
    gsum = state.get("gsum", np.zeros_like(w)) + g * g
    return w - lr / np.sqrt(gsum + hp["eps"]) * g, {"gsum": gsum}


def windowgrad(w, g, state, hp, lr, t):
    ro = hp["ro"]
    gsum = ro * state.get("gsum", np.zeros_like(w)) + (1 - ro) * g * g
    return w - lr / np.sqrt(gsum + hp["eps"]) * g, {"gsum": gsum}


def adadelta(w, g, state, hp, lr, t):
    ro, eps = hp["ro"], hp["eps"]
    gsum = ro * state.get("gsum", np.zeros_like(w)) + (1 - ro) * g * g
    xsum_old = state.get("xsum", np.zeros_like(w))
    dx = -np.sqrt((xsum_old + eps) / (gsum + eps)) * g
    xsum = ro * xsum_old + (1 - ro) * dx * dx
    return w + lr * dx, {"gsum": gsum, "xsum": xsum}


def adam(w, g, state, hp, lr, t):
    b1, b2, eps = hp["beta1"], hp["beta2"], hp["eps"]
    m = b1 * state.get("m", np.zeros_like(w)) + (1 - b1) * g
    v = b2 * state.get("v", np.zeros_like(w)) + (1 - b2) * g * g
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), {"m": m, "v": v}


RULES = {"sgd": sgd, "momentum": momentum, "nesterov": nesterov, "adagrad": adagrad,
         "windowgrad": windowgrad, "adadelta": adadelta, "adam": adam}


def lr_schedule(step, *, lr, schedule="constant", warmup_steps=0, step_size=1, gamma=0.1,
                total_steps=1, min_lr_factor=0.0):
    """The schedules as the docstring of engine/optim/schedules.py states them."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    s = step - warmup_steps
    if schedule == "constant":
        return lr
    if schedule == "step":
        return lr * gamma ** (s // step_size)
    span = total_steps - warmup_steps
    if schedule == "linear":
        return lr * (min_lr_factor + (1 - min_lr_factor) * (span - min(s, span)) / span)
    cos = 0.5 * (1 + math.cos(math.pi * min(s, span) / span))
    return lr * (min_lr_factor + (1 - min_lr_factor) * cos)
