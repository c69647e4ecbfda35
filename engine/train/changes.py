"""The Trainer's changes between steps: settings (all or nothing), a new net, a reset, a
loaded snapshot, a restarted schedule. Each is validated in full before its first change.

RunChanges is a mixin of Trainer (engine/train/trainer.py): it reads and writes the Trainer's
attributes, so that trainer.py holds the loop and this file what may change between steps.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from engine import values
from engine.data.normalize import Normalization
from engine.formats.convnetjs import training_normalization
from engine.formats.snapshot import (MAX_STEP, Snapshot, SnapshotError, checked_meta,
                                     checked_preprocess, checked_weights, meta_number)
from engine.net import Net
from engine.optim import Hyperparams, OptimError, Optimizer
from engine.optim.optimizer import checked_state_dict
from engine.spec.net_spec import NetSpec
from engine.train.metrics import point_from_test
from engine.train.param_groups import fixed_params, lr_multipliers
from engine.train.whitening import whiten_first_conv
from engine.train.options import (OPTION_FIELDS, TrainError, TrainOptions, check_budget,
                                  check_net_fits)
from engine.values import show


class RunChanges:
    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change hyperparameters and options; all or nothing. Returns the new settings."""
        plan = self._plan(changes, self.net.spec, "batch_size")
        self._commit(changes, *plan, typed=True)
        return self.settings()

    def _plan(self, changes: Any, spec: NetSpec, budget_field: str) -> tuple:
        """Validate changes for a run of this spec, changing nothing: (hyperparameter changes,
        the new options, the TrainingCost at the new batch size)."""
        if not isinstance(changes, dict) or not changes:
            raise TrainError("expected an object with at least one setting to change")
        known = set(Hyperparams.__dataclass_fields__) | OPTION_FIELDS
        unknown = [k for k in changes if not isinstance(k, str) or k not in known]
        if unknown:
            name = unknown[0] if isinstance(unknown[0], str) else show(unknown[0])
            raise TrainError(f"unknown setting {show(unknown[0])}; known: "
                             f"{', '.join(sorted(known))}", name)
        hp_changes = {k: v for k, v in changes.items() if k in Hyperparams.__dataclass_fields__}
        opt_changes = {k: v for k, v in changes.items() if k in OPTION_FIELDS}
        new_options = replace(self.options, **opt_changes).check()
        try:
            hp = Hyperparams.from_dict({**self.optimizer.hp.to_dict(), **hp_changes})
        except OptimError as exc:
            raise TrainError(str(exc), exc.field) from None
        cost = self.cost
        if spec != self.net.spec or hp.batch_size != self.optimizer.hp.batch_size:
            cost = check_budget(spec, hp.batch_size, self.budget, budget_field)
        return hp_changes, new_options, cost

    def _commit(self, changes: dict, hp_changes: dict, new_options: TrainOptions,
                cost, typed: bool = False) -> None:
        """Apply what _plan validated (nothing here can refuse). typed: the changes are a
        person's (apply), not a preset's that comes with a new net (set_net)."""
        if hp_changes.get("method", self.optimizer.hp.method) != self.optimizer.hp.method:
            self._rollback.drop_checkpoint()     # its state arrays belong to another rule
        schedule_before = self.optimizer.hp.schedule
        if hp_changes:
            self.optimizer.set_hyperparams(**hp_changes)
            if self._lookahead is None:
                self._start_lookahead()      # turned on: from the weights as they are
        self.schedule_note = (self._follow_the_typed_rate(hp_changes, schedule_before)
                              if typed else None)
        self.cost = cost
        batch_changed = "batch_size" in hp_changes
        aug_changed = new_options.augmentation != self.options.augmentation
        if new_options.window != self.options.window:
            for name, window in self._windows.items():
                if name != "val_acc":
                    window.resize(new_options.window)
        if new_options.history_points != self.options.history_points:
            self.history.resize(new_options.history_points)
        self.options = new_options
        if batch_changed or aug_changed:
            position = self.batches.position
            self._make_batches(self.epoch)
            self.batches.position = min(position, len(self.dataset.train) - 1)
        self.diverged = None if "learning_rate" in hp_changes else self.diverged
        text = ", ".join(f"{k} {v}" for k, v in changes.items())
        if self.schedule_note:
            text += "; schedule restarted"
        self.history.mark({"step": self.step_count, "examples": self.examples_seen, "text": text})

    def _follow_the_typed_rate(self, hp_changes: dict, schedule_before: str) -> str | None:
        """A learning rate the presenter types is the rate the next step uses: a schedule
        that would scale it (a warmup, a step, cosine or linear decay under way) restarts from
        this step without warmup. A switch to a step, cosine or linear schedule restarts it
        from this step too (without warmup: the run is already going), so its decay spans
        what comes next.
        Returns what it did, for the log, or None."""
        hp = self.optimizer.hp
        if "learning_rate" in hp_changes:
            if self.optimizer.lr == hp.learning_rate:
                return None
            why = f"so that the learning rate is {hp.learning_rate:g} from here"
        elif hp.schedule != schedule_before and hp.schedule != "constant":
            why = f"the {hp.schedule} schedule starts here"
        else:
            return None
        self.restart_schedule(warmup=False)
        return (f"the {hp.schedule} schedule restarts at step {self.step_count:,}, without "
                f"warmup, {why}")

    def restart_schedule(self, warmup: bool = True) -> None:
        """The learning-rate schedule counts from the current step again: its warmup (unless
        warmup=False) and its decay start over. Adam's bias correction is not the schedule's
        and goes on. A divergence going back to a checkpoint keeps the restarted clock."""
        self.optimizer.restart_schedule(warmup)
        checkpoint = self._rollback.checkpoint
        if checkpoint is not None:
            self._rollback.set_checkpoint_clock((self.optimizer.t, checkpoint[1][1]))
        self.schedule_start = self.step_count

    def set_net(self, spec: NetSpec, *, seed: int | None = None,
                settings: dict[str, Any] | None = None) -> None:
        """Swap in a new net (fresh weights) built from a validated spec; keeps settings, or
        applies `settings` (a preset's training defaults) with it: the net, its budget and
        the settings are checked together, so a refusal changes nothing."""
        check_net_fits(spec, self.dataset)
        if settings:
            plan = self._plan(settings, spec, "net")
        else:
            plan = None
            cost = check_budget(spec, self.optimizer.hp.batch_size, self.budget, "net")
        net = Net(spec, rng=np.random.default_rng(self.options.seed if seed is None else seed))
        normalization = training_normalization(spec, self.dataset.normalization)
        whiten_first_conv(net, self.dataset.train, normalization, seed=self.options.seed)
        self._install(net, None, plan[2] if plan else cost)
        self.normalization = self.batches.normalization = normalization
        self.history.mark({"step": self.step_count, "examples": self.examples_seen,
                           "text": f"new net ({spec.name or 'custom'})"})
        if plan:
            self._commit(settings, *plan)

    def continue_from(self, checkpoint, last_test: dict[str, Any] | None = None) -> None:
        """Go on from another run's checkpoint (engine/train/checkpoints.py; same net): its
        weights, statistics, step, examples, training time and schedule clock. The
        optimizer's state (momentum, Adam's moments) starts afresh, as the checkpoint does not
        keep it, and the history starts at the checkpoint (with its test result, if any)."""
        checkpoint.load_into(self.net)
        self.step_count = checkpoint.step
        self.examples_seen = checkpoint.examples
        self.wall_seconds = checkpoint.seconds
        self.schedule_start = min(checkpoint.schedule_start, checkpoint.step)
        self.optimizer.t = checkpoint.schedule_t
        self.optimizer.rule_t = 0
        self._start_lookahead()             # from the checkpoint's weights
        self._rollback.clear()
        self._loss_watch.clear()
        self._make_batches(checkpoint.examples // max(1, len(self.dataset.train)))
        self.history.clear()
        self.last_test = last_test
        if last_test is not None:
            self.history.add_test(point_from_test(checkpoint.step, checkpoint.examples,
                                                  last_test))

    def reset(self) -> None:
        """Fresh weights for the same net, a fresh optimizer, cleared metrics and history: the
        run starts over exactly as a new Trainer with the same seed would (same weights, same
        batches, same dropout masks)."""
        net = Net(self.net.spec, rng=np.random.default_rng(self.options.seed))
        self.normalization = training_normalization(net.spec, self.dataset.normalization)
        whiten_first_conv(net, self.dataset.train, self.normalization, seed=self.options.seed)
        self._install(net, None, self.cost)
        self.ctx.rng = np.random.default_rng(self.options.seed + 1)
        self.step_count = self.examples_seen = self._val_position = 0
        self.schedule_start = 0
        self.wall_seconds = 0.0
        self.layer_ms = []
        self.history.clear()
        self._make_batches(epoch=0)

    def load(self, snapshot: Snapshot) -> None:
        """Replace the net (and optimizer state, step, preprocessing) with a snapshot's.
        Everything a load reads is checked first, by arithmetic (shapes from the spec, sizes
        against the budget) before any net is allocated; then it is installed in one go. A
        snapshot that does not fit raises TrainError and changes nothing."""
        spec = snapshot.spec
        check_net_fits(spec, self.dataset)
        try:
            params, buffers = checked_weights(spec, snapshot.params, snapshot.buffers)
            preprocess = checked_preprocess(snapshot.preprocess, spec.input_shape[0])
            meta = checked_meta(snapshot.meta)
            step = snapshot.step
            if type(step) is not int or not 0 <= step <= MAX_STEP:
                raise SnapshotError(f"step: expected an integer in 0..{MAX_STEP:,}, "
                                    f"got {show(step)}", "step")
        except SnapshotError as exc:
            raise TrainError(f"snapshot: {exc}", exc.field) from None
        state = None
        if snapshot.optimizer is not None:
            shapes = {name: arr.shape for name, arr in params.items()}
            try:
                state = checked_state_dict(snapshot.optimizer, shapes,
                                           {name: arr.dtype for name, arr in params.items()})
            except OptimError as exc:
                raise TrainError(f"snapshot optimizer state: {exc}",
                                 f"optimizer.{exc.field}") from None
        hp = state[0] if state is not None else self.optimizer.hp
        cost = check_budget(spec, hp.batch_size, self.budget, "net")
        normalization = Normalization(tuple(preprocess["mean"]), tuple(preprocess["std"]))
        last_test = _recorded_test(snapshot.metrics, self.dataset.class_names)
        # Everything is checked: from here on nothing refuses.
        net = Net(spec)
        for name, arr, _ in net.named_params():
            np.copyto(arr, params[name])
        for name, arr in net.named_buffers():
            np.copyto(arr, buffers[name])
        self._install(net, state, cost)
        self.last_test = last_test
        self.normalization = normalization
        self.step_count = step
        # Saved since the schedule could restart; before, it started with the run.
        saved_start = meta.get("schedule_start")
        self.schedule_start = (min(step, saved_start) if saved_start is not None
                               else step - min(step, self.optimizer.t))
        self.examples_seen = meta_number(meta, "examples_seen")
        self.wall_seconds = float(meta_number(meta, "wall_seconds"))
        self._make_batches(int(meta_number(meta, "epoch")))
        # Step numbers now continue from the snapshot's: the old curve would not line up.
        self.history.clear()
        self.history.mark({"step": self.step_count, "examples": self.examples_seen,
                           "text": "snapshot loaded"})
        if self.last_test is not None:     # where the accuracy chart starts
            self.history.add_test(point_from_test(self.step_count, self.examples_seen,
                                                  self.last_test))

    def _install(self, net: Net, state: tuple | None, cost) -> None:
        """A new net (and a checked optimizer state, from checked_state_dict): the optimizer,
        gradients, buffers, checkpoints and windows start over."""
        self.net = net
        self.optimizer = Optimizer(net.named_params(), self.optimizer.hp,
                                   frozen=fixed_params(net, self.epoch),
                                   lr_muls=lr_multipliers(net))
        self._start_lookahead()    # from the new weights
        if state is not None:
            self.optimizer.install_state(*state)
        self.schedule_start = self.step_count     # a fresh optimizer's schedule starts here
        self.cost = cost
        self.grads = net.new_grads()
        self.ctx.workspace.clear()
        self.eval_workspace.clear()
        self._rollback.clear()
        self._loss_watch.clear()
        self._checkpoint_due = 0
        self._test_run.cancel()
        self.diverged = None
        self.last_test = None
        for window in self._windows.values():
            window.clear()


def _recorded_test(metrics: Any, classes) -> dict[str, Any] | None:
    """The whole-test-set result a snapshot was saved with (it describes these very weights),
    when it has the shape evaluate() gives for these classes; else None (it is only shown)."""
    test = metrics.get("test") if isinstance(metrics, dict) else None
    if (not isinstance(test, dict) or not isinstance(test.get("classes"), list)
            or test["classes"] != list(classes)):
        return None
    k = len(classes)
    per_class, confusion = test.get("per_class"), test.get("confusion")

    def fraction(v):
        return v is None or values.in_range(v, 0.0, 1.0)

    ok = (values.in_range(test.get("accuracy"), 0.0, 1.0)
          and values.integer(test.get("step")) is not None and 0 <= test["step"] <= MAX_STEP
          and values.integer(test.get("images")) is not None
          and 0 <= test["images"] <= MAX_STEP
          and (test.get("loss") is None or values.in_range(test["loss"], 0.0, 1e6))
          and isinstance(per_class, dict) and list(per_class) == list(classes)
          and all(fraction(v) for v in per_class.values())
          and isinstance(confusion, list) and len(confusion) == k
          and all(isinstance(row, list) and len(row) == k
                  and all(values.integer(c) is not None and 0 <= c <= MAX_STEP for c in row)
                  for row in confusion))
    return test if ok else None
