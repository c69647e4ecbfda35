"""Learning-rate schedules: lr_at(hp, step) for the 0-based index of an update.

    warmup (any schedule): lr = learning_rate * (w0 + (1 - w0) * (step + 1) / warmup_steps)
               while step < warmup_steps, w0 = warmup_from (0 by default; airbench94: 0.2)
    then, with s = step - warmup_steps:
    constant:  lr = learning_rate
    step:      lr = learning_rate * gamma ** (s // step_size)
    cosine:    lr = learning_rate * (f + (1 - f) * (1 + cos(pi * min(s, S) / S)) / 2),
               S = total_steps - warmup_steps, f = min_lr_factor: it reaches the floor
               f * learning_rate at step total_steps (warmup included) and stays there.
    linear:    lr = learning_rate * (f + (1 - f) * (1 - min(s, S) / S)), the same S and f: a
               straight line down to the floor at total_steps (airbench94's decay).
The first warmup step uses learning_rate / warmup_steps rather than 0 (with warmup_from 0),
so no step is wasted.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable

from engine.optim.errors import OptimError


def constant_factor(s: int, hp: Any) -> float:
    return 1.0


def step_factor(s: int, hp: Any) -> float:
    return hp.gamma ** (s // hp.step_size)


def cosine_factor(s: int, hp: Any) -> float:
    if s == 0:        # exactly 1: the first step after a restart uses learning_rate itself
        return 1.0
    span = hp.total_steps - hp.warmup_steps  # >= 1: Hyperparams checks it for "cosine"
    progress = min(s, span) / span
    floor = hp.min_lr_factor
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def linear_factor(s: int, hp: Any) -> float:
    span = hp.total_steps - hp.warmup_steps  # >= 1: Hyperparams checks it for "linear"
    floor = hp.min_lr_factor
    return floor + (1.0 - floor) * (1.0 - min(s, span) / span)


# name -> factor of learning_rate at s steps after warmup
SCHEDULES: dict[str, Callable[[int, Any], float]] = {
    "constant": constant_factor,
    "step": step_factor,
    "cosine": cosine_factor,
    "linear": linear_factor,
}
# Schedules that end: total_steps must pass warmup_steps, and a timed run sizes their length.
ENDING_SCHEDULES = ("cosine", "linear")


def lr_at(hp: Any, step: int) -> float:
    """The learning rate of update number `step` (0 = the first) under hp's schedule."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise OptimError("step", f"step must be an integer >= 0, got {step!r}")
    if step < hp.warmup_steps:
        start = hp.warmup_from
        if start == 0.0:           # as before warmup_from existed, to the last bit
            return hp.learning_rate * (step + 1) / hp.warmup_steps
        return hp.learning_rate * (start + (1.0 - start) * (step + 1) / hp.warmup_steps)
    return hp.learning_rate * SCHEDULES[hp.schedule](step - hp.warmup_steps, hp)
