"""Training hyperparameters: one frozen, validated, JSON-able record.

Names follow ConvNetJS's Trainer options (method, learning_rate, momentum, ro, eps, beta1,
beta2, l1_decay, l2_decay, batch_size) plus the schedule's. Every value is checked when a record
is made, so a bad value from a form or a snapshot is refused with an `OptimError` naming the
field and the allowed range before it can touch a training run.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from engine.optim.errors import OptimError
from engine.values import show_repr as show
from engine.optim.rules import OPTIMIZERS
from engine.optim.schedules import ENDING_SCHEDULES, SCHEDULES

MAX_STEPS = 10**9
MAX_BATCH_SIZE = 1024


@dataclass(frozen=True)
class Hyperparams:
    method: str = "sgd"            # a name in OPTIMIZERS
    learning_rate: float = 0.01    # the schedule's base value (adadelta: 1.0 is Zeiler's rule)
    momentum: float = 0.9          # momentum, nesterov
    ro: float = 0.95               # windowgrad, adadelta: decay of the running averages
    beta1: float = 0.9             # adam
    beta2: float = 0.999           # adam
    eps: float | None = None       # None: the rule's default (adam 1e-8, others 1e-6)
    l1_decay: float = 0.0          # times each param's l1_decay_mul
    l2_decay: float = 0.0          # times each param's l2_decay_mul
    batch_size: int = 32           # read by the training loop; the optimizer ignores it
    schedule: str = "constant"     # a name in SCHEDULES
    warmup_steps: int = 0          # linear warmup before any schedule
    warmup_from: float = 0.0       # the warmup's start, as a factor of learning_rate
    step_size: int = 1000          # step: multiply by gamma every step_size steps
    gamma: float = 0.1             # step
    total_steps: int = 10000       # cosine, linear: reach the floor here (warmup included)
    min_lr_factor: float = 0.0     # cosine, linear: floor = min_lr_factor * learning_rate
    lookahead: float = 0.0         # 0: off; else the decay of the slow weights (lookahead.py)
    lookahead_every: int = 5       # updates between pull-backs to the slow weights

    def __post_init__(self) -> None:
        for name, check in _CHECKS.items():
            object.__setattr__(self, name, check(name, getattr(self, name)))
        if self.schedule in ENDING_SCHEDULES and self.total_steps <= self.warmup_steps:
            raise OptimError("total_steps", f"total_steps must be greater than warmup_steps "
                             f"({self.warmup_steps}) for the {self.schedule} schedule, "
                             f"got {self.total_steps}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Hyperparams:
        if not isinstance(values, Mapping):
            raise OptimError("hyperparams", f"hyperparameters must be an object, "
                             f"got {type(values).__name__}")
        _check_names(values)
        return cls(**values)

    def replace(self, **changes: Any) -> Hyperparams:
        """A validated copy with `changes` applied (unknown names refused)."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def effective_eps(self) -> float:
        return self.eps if self.eps is not None else OPTIMIZERS[self.method].default_eps


FIELDS = tuple(f.name for f in dataclasses.fields(Hyperparams))


def _check_names(values: Mapping[str, Any]) -> None:
    for name in values:
        if name not in FIELDS:
            shown = name if isinstance(name, str) else show(name)
            raise OptimError(shown, f"unknown hyperparameter {show(name)}; known: "
                             f"{', '.join(FIELDS)}")


# --- value checks: each (field name, value) -> normalised value, or raises OptimError -------
def _real(lo: float, hi: float = math.inf, *, lo_open: bool = False, hi_open: bool = False
          ) -> Callable[[str, Any], float]:
    if hi == math.inf:
        allowed = f"{'>' if lo_open else '>='} {lo:g}"
    else:
        allowed = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise OptimError(name, f"{name} must be a number {allowed}, "
                             f"got {show(value)} ({type(value).__name__})")
        try:
            v = float(value)
        except OverflowError:        # an integer beyond a float's range
            v = math.inf
        if (not math.isfinite(v) or v < lo or (lo_open and v == lo) or v > hi
                or (hi_open and v == hi)):
            raise OptimError(name, f"{name} must be a finite number {allowed}, "
                             f"got {show(value)}")
        return v
    return check


def _integer(lo: int, hi: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                or not lo <= value <= hi):
            raise OptimError(name, f"{name} must be an integer in {lo}..{hi}, "
                             f"got {show(value)} ({type(value).__name__})")
        return int(value)
    return check


def _choice(registry: Mapping[str, Any]) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        known = ", ".join(registry)
        if not isinstance(value, str):
            raise OptimError(name, f"{name} must be a string, one of: {known}; "
                             f"got {show(value)} ({type(value).__name__})")
        if value not in registry:
            raise OptimError(name, f"{name} {show(value)} is unknown; known: {known}")
        return value
    return check


def _optional(check: Callable[[str, Any], float]) -> Callable[[str, Any], float | None]:
    return lambda name, value: None if value is None else check(name, value)


_unit = _real(0.0, 1.0, hi_open=True)  # [0, 1)
_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "method": _choice(OPTIMIZERS),
    "learning_rate": _real(0.0, lo_open=True),
    "momentum": _unit,
    "ro": _unit,
    "beta1": _unit,
    "beta2": _unit,
    "eps": _optional(_real(0.0, lo_open=True)),
    "l1_decay": _real(0.0),
    "l2_decay": _real(0.0),
    "batch_size": _integer(1, MAX_BATCH_SIZE),
    "schedule": _choice(SCHEDULES),
    "warmup_steps": _integer(0, MAX_STEPS),
    "warmup_from": _unit,
    "step_size": _integer(1, MAX_STEPS),
    "gamma": _real(0.0, 1.0, lo_open=True),
    "total_steps": _integer(1, MAX_STEPS),
    "min_lr_factor": _real(0.0, 1.0),
    "lookahead": _unit,
    "lookahead_every": _integer(1, 10**6),
}
assert set(_CHECKS) == set(FIELDS)


# --- ConvNetJS ------------------------------------------------------------------------------
CONVNETJS_OPTIONS = ("method", "learning_rate", "momentum", "ro", "eps", "beta1", "beta2",
                     "l1_decay", "l2_decay", "batch_size")
# Trainer's defaults in ConvNetJS's source (convnet_trainers.js). The older npm build 0.3.0
# has eps 1e-6 (and no adam or nesterov); the source's current values are taken here.
CONVNETJS_DEFAULTS = {"method": "sgd", "learning_rate": 0.01, "l1_decay": 0.0, "l2_decay": 0.0,
                      "batch_size": 1, "momentum": 0.9, "ro": 0.95, "eps": 1e-8, "beta1": 0.9,
                      "beta2": 0.999}


def from_convnetjs(options: Mapping[str, Any]) -> Hyperparams:
    """Hyperparams that train as a ConvNetJS Trainer with these options does.

    - ConvNetJS's "sgd" with momentum > 0 (its default momentum is 0.9) is our "momentum".
    - ConvNetJS's adadelta ignores learning_rate: ours multiplies by it, so it becomes 1.0.
    - ConvNetJS sums gradients over the batch and divides the sum plus the decay gradient by
      batch_size; ours are batch means, so the same dynamics need l1, l2 / batch_size.
    - An option left out takes ConvNetJS's default (CONVNETJS_DEFAULTS, from its
      convnet_trainers.js), never ours: eps is 1e-8 there for every method (our rules default
      to 1e-6 except adam), which moves adadelta's first steps ~10x less than 1e-6 would.
    """
    if not isinstance(options, Mapping):
        raise OptimError("options", "ConvNetJS trainer options must be an object")
    for name in options:
        if name not in CONVNETJS_OPTIONS:
            shown = name if isinstance(name, str) else show(name)
            raise OptimError(shown, f"unknown ConvNetJS trainer option {show(name)}; known: "
                             f"{', '.join(CONVNETJS_OPTIONS)}")
    values = {**CONVNETJS_DEFAULTS, **options}
    method = values.get("method", "sgd")
    if method == "sgd":
        values["method"] = "momentum"
    hp = Hyperparams.from_dict(values)
    changes: dict[str, Any] = {"l1_decay": hp.l1_decay / hp.batch_size,
                               "l2_decay": hp.l2_decay / hp.batch_size}
    if hp.method == "momentum" and method == "sgd" and hp.momentum == 0.0:
        changes["method"] = "sgd"
    if hp.method == "adadelta":
        changes["learning_rate"] = 1.0
    return hp.replace(**changes)
