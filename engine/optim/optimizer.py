"""The Optimizer: hyperparameters, step count and per-parameter state for one net.

    opt = Optimizer(net.named_params(), method="adam", learning_rate=1e-3)
    net.zero_grads(grads); loss, _ = net.loss_and_grads(x, y, grads, ctx)
    reg_loss = opt.step(net.named_grads(grads))     # updates the net's arrays in place

Gradients arrive as batch means (the loss layers average), so nothing here divides by the batch
size. Each parameter follows g + l2_decay*l2_mul*w + l1_decay*l1_mul*sign(w); the matching
regularisation loss, measured on the weights before the update, is what `step` returns. The
caller's gradients are read, never written (ConvNetJS zeroes them; our caller does).

A parameter with a learning-rate multiplier m (`lr_muls`, e.g. a batch norm's "lr_mul") is
stepped with learning rate m * lr and decays m times less in its gradient, so that under sgd,
momentum and nesterov its data gradient moves it m times as fast while its weight decay per
step stays what l1/l2 make it (airbench94's bias_scaler: 64x the rate for the batch-norm
biases, the same decay).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from engine.optim.errors import OptimError
from engine.optim.hyperparams import Hyperparams
from engine.optim.rules import OPTIMIZERS, Rule, decay_losses, decayed_gradient
from engine.optim.schedules import lr_at
from engine.values import show_repr as show

STATE_FORMAT = "convnet-demo-optimizer"
STATE_VERSION = 1


class Optimizer:
    def __init__(self, named_params: Iterable[tuple[str, np.ndarray, tuple[float, float]]],
                 hyperparams: Hyperparams | Mapping[str, Any] | None = None, *,
                 frozen: Iterable[str] = (), lr_muls: Mapping[str, float] | None = None,
                 **changes: Any) -> None:
        """named_params: (name, array, (l1_mul, l2_mul)) as Net.named_params() gives them.
        frozen: names of parameters no step changes (their gradient and decay are ignored),
        such as a whitening conv's weights (engine/train/param_groups.py).
        lr_muls: {name: multiplier > 0} of the learning rate (see the module's docstring);
        a parameter left out has 1."""
        hp = hyperparams if isinstance(hyperparams, Hyperparams) else (
            Hyperparams.from_dict(hyperparams) if hyperparams is not None else Hyperparams())
        self.hp = hp.replace(**changes) if changes else hp
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, np.dtype] = {}
        self.state: dict[str, dict[str, np.ndarray]] = {}
        for name, arr, _decay in named_params:
            if name in self.shapes:
                raise ValueError(f"parameter name {name!r} appears twice")
            self.shapes[name], self.dtypes[name] = arr.shape, arr.dtype
            self.state[name] = self.rule.init_state(arr)
        self.frozen = frozenset()
        self.set_frozen(frozen)
        self.lr_muls = dict(lr_muls or {})
        unknown = sorted(set(self.lr_muls) - set(self.shapes))
        if unknown:
            raise ValueError(f"learning-rate multipliers for {unknown}, which are not among "
                             f"{list(self.shapes)}")
        for name, mul in self.lr_muls.items():
            if isinstance(mul, bool) or not isinstance(mul, numbers.Real) or not (
                    0.0 < mul < float("inf")):
                raise ValueError(f"learning-rate multiplier of {name} must be a finite "
                                 f"number > 0, got {mul!r}")
        self.t = 0       # updates taken: the schedule's clock
        self.rule_t = 0  # updates taken with the current state: Adam's bias-correction clock
        # Scratch for the decayed gradient, one per dtype.
        self._scratch: dict[np.dtype, np.ndarray] = {}
        self._scratch_size = max((int(np.prod(s)) for s in self.shapes.values()), default=0)

    def set_frozen(self, names: Iterable[str]) -> None:
        """Which parameters steps leave alone from now on (the rest are stepped again; their
        optimizer state is kept as it was)."""
        frozen = frozenset(names)
        if not frozen <= set(self.shapes):
            raise ValueError(f"frozen parameters {sorted(frozen - set(self.shapes))} are "
                             f"not among {list(self.shapes)}")
        self.frozen = frozen

    @property
    def rule(self) -> Rule:
        return OPTIMIZERS[self.hp.method]

    def lr_at(self, step: int) -> float:
        return lr_at(self.hp, step)

    @property
    def lr(self) -> float:
        """The learning rate the next step will use."""
        return lr_at(self.hp, self.t)

    # --- stepping ---------------------------------------------------------------------------
    def step(self, params_with_grads: Iterable[tuple[str, np.ndarray, np.ndarray,
                                                     tuple[float, float]]]) -> float:
        """Update every parameter in place from (name, param, grad, (l1_mul, l2_mul)) as
        Net.named_grads(grads) gives them; return the regularisation loss (before the step)."""
        items = list(params_with_grads)
        self._check_items(items)
        hp, rule = self.hp, self.rule
        lr = lr_at(hp, self.t)
        self.t += 1
        self.rule_t += 1
        reg_loss = 0.0
        # A diverging run overflows to inf/NaN quietly (the kernels are loops, which do not
        # warn), for the caller's divergence check.
        for name, param, grad, (l1_mul, l2_mul) in items:
            if name in self.frozen:
                continue
            g = self._buffer(param)
            mul = self.lr_muls.get(name, 1.0)
            l1_loss, l2_loss = decayed_gradient(g, param, grad, hp.l1_decay * l1_mul / mul,
                                                hp.l2_decay * l2_mul / mul)
            reg_loss += (l1_loss + l2_loss) * mul   # the loss of the decay as configured
            rule.step(param, g, self.state[name], hp, lr * mul, self.rule_t)
        return reg_loss

    def reg_loss(self, named_params: Iterable[tuple[str, np.ndarray, tuple[float, float]]]
                 ) -> float:
        """The regularisation loss of these weights under the current decays, without a step."""
        total = 0.0
        for name, param, (l1_mul, l2_mul) in named_params:
            if name in self.frozen:
                continue
            total += sum(decay_losses(param, self.hp.l1_decay * l1_mul,
                                      self.hp.l2_decay * l2_mul))
        return total

    def _check_items(self, items: list) -> None:
        names = [item[0] for item in items]
        if names != list(self.shapes):
            raise ValueError(f"optimizer was built for parameters {list(self.shapes)}, "
                             f"step got {names}")
        for name, param, grad, _decay in items:
            shape, dtype = self.shapes[name], self.dtypes[name]
            for what, arr in (("parameter", param), ("gradient", grad)):
                if arr.shape != shape or arr.dtype != dtype:
                    raise ValueError(f"{what} {name}: expected {shape} {dtype}, "
                                     f"got {arr.shape} {arr.dtype}")
                if not arr.flags.c_contiguous:
                    raise ValueError(f"{what} {name} must be a C-contiguous array")
            if not param.flags.writeable:
                raise ValueError(f"parameter {name} is read-only")

    def _buffer(self, param: np.ndarray) -> np.ndarray:
        """Scratch for the decayed gradient, flat: the kernels see every array flat."""
        flat = self._scratch.get(param.dtype)
        if flat is None:
            flat = self._scratch[param.dtype] = np.empty(self._scratch_size, param.dtype)
        return flat[:param.size]

    # --- changes between steps -----------------------------------------------------------
    def set_hyperparams(self, **changes: Any) -> Hyperparams:
        """Apply validated changes (all or none). A new method keeps the state arrays that mean
        the same thing (momentum <-> nesterov velocity, windowgrad <-> adadelta mean square)
        and starts the others at zero, restarting Adam's bias correction with them."""
        hp = self.hp.replace(**changes)
        if hp.method != self.hp.method:
            self._switch_rule(OPTIMIZERS[hp.method])
        self.hp = hp
        return hp

    def _switch_rule(self, rule: Rule) -> None:
        fresh = False
        for name, old in self.state.items():
            new = {}
            for s in rule.state_names:
                if s in old:
                    new[s] = old[s]
                else:
                    new[s] = np.zeros(self.shapes[name], self.dtypes[name])
                    fresh = True
            self.state[name] = new
        if fresh:
            self.rule_t = 0

    def restart_schedule(self, warmup: bool = True) -> None:
        """The schedule's clock back to its start (to just after the warmup when warmup is
        False, so the next step uses learning_rate itself); the rule's state and Adam's bias
        correction clock go on."""
        self.t = 0 if warmup else self.hp.warmup_steps

    # --- snapshots ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain numpy arrays (copies) and JSON-able scalars; load_state_dict restores exactly."""
        return {"format": STATE_FORMAT, "version": STATE_VERSION,
                "hyperparams": self.hp.to_dict(), "t": self.t, "rule_t": self.rule_t,
                "state": {name: {s: arr.copy() for s, arr in state.items()}
                          for name, state in self.state.items()}}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Validate everything, then replace hyperparameters, counters and state (all or none).
        Raises OptimError (a ValueError) naming the first thing that does not fit."""
        self.install_state(*checked_state_dict(d, self.shapes, self.dtypes))

    def install_state(self, hp: Hyperparams, t: int, rule_t: int,
                      state: dict[str, dict[str, np.ndarray]]) -> None:
        """What checked_state_dict returned for these very parameters (it checked it)."""
        self.hp, self.t, self.rule_t, self.state = hp, t, rule_t, state


MAX_T = 10**12   # updates: far beyond any run, and small enough for every schedule's arithmetic


def checked_state_dict(d: Any, shapes: Mapping[str, tuple[int, ...]],
                       dtypes: Mapping[str, Any]) -> tuple[Hyperparams, int, int, dict]:
    """A state_dict() checked against parameters of these shapes and dtypes, without an
    Optimizer (a snapshot's state is checked before any net exists): (hyperparams, t, rule_t,
    {name: {slot: array}}) with fresh arrays in the parameters' dtypes. The arrays are
    checked AFTER conversion: a float64 1e39 is finite but becomes inf in float32."""
    if not isinstance(d, Mapping):
        raise OptimError("optimizer", "optimizer state must be an object")
    expected = {"format", "version", "hyperparams", "t", "rule_t", "state"}
    if set(d) != expected:
        raise OptimError("optimizer", f"optimizer state must have exactly the keys "
                         f"{sorted(expected)}, got {_names(d)}")
    if (not isinstance(d["format"], str) or d["format"] != STATE_FORMAT
            or type(d["version"]) is not int or d["version"] != STATE_VERSION):
        raise OptimError("version", f"optimizer state is {show(d['format'])} version "
                         f"{show(d['version'])}; this reads {STATE_FORMAT!r} version "
                         f"{STATE_VERSION}")
    hp = Hyperparams.from_dict(d["hyperparams"])
    t, rule_t = d["t"], d["rule_t"]
    if type(t) is not int or t < 0:
        raise OptimError("t", f"t must be an integer >= 0, got {show(t)}")
    if t > MAX_T:
        raise OptimError("t", f"t must be at most {MAX_T:,}, got {show(t)}")
    # rule_t may pass t: a restarted schedule (Trainer.restart_schedule) sets t back.
    if type(rule_t) is not int or not 0 <= rule_t <= MAX_T:
        raise OptimError("rule_t", f"rule_t must be an integer in 0..{MAX_T:,}, "
                         f"got {show(rule_t)}")
    return hp, t, rule_t, _checked_state(d["state"], OPTIMIZERS[hp.method], shapes, dtypes)


def _checked_state(given: Any, rule: Rule, shapes: Mapping[str, tuple[int, ...]],
                   dtypes: Mapping[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    if not isinstance(given, Mapping) or set(given) != set(shapes):
        names = _names(given) if isinstance(given, Mapping) else type(given).__name__
        raise OptimError("state", f"optimizer state is for parameters {names}; this net "
                         f"has {_names(shapes)}")
    out = {}
    for name, shape in shapes.items():
        arrays = given[name]
        if not isinstance(arrays, Mapping) or set(arrays) != set(rule.state_names):
            keys = _names(arrays) if isinstance(arrays, Mapping) else type(arrays).__name__
            raise OptimError(f"state.{name}", f"state of {name}: {rule.name} keeps "
                             f"{list(rule.state_names)}, got {keys}")
        out[name] = {}
        for s in rule.state_names:
            arr, where = arrays[s], f"state.{name}.{s}"
            if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
                raise OptimError(where, f"{where} must be a float array, got "
                                 f"{getattr(arr, 'dtype', type(arr).__name__)}")
            if arr.shape != tuple(shape):
                raise OptimError(where, f"{where} has shape {arr.shape}; the parameter "
                                 f"has shape {tuple(shape)}")
            with np.errstate(over="ignore", invalid="ignore"):
                converted = np.array(arr, dtype=dtypes[name], copy=True)
            if not np.isfinite(converted).all():
                raise OptimError(where, f"{where} contains NaN or infinite values (in "
                                 f"{np.dtype(dtypes[name])})")
            out[name][s] = converted
    return out


def _names(keys: Mapping) -> str:
    """The keys of a mapping, sorted when they are names, for a message."""
    names = list(keys)
    if all(isinstance(k, str) for k in names):
        names.sort()
    return show(names, 200)
