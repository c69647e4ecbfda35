"""The training loop shared by the command line and the server's worker.

A Trainer owns one Net, its Optimizer, the gradient arrays, a batch source and the metrics. It
is not thread-safe on purpose: exactly one thread (the CLI's main thread or the server's
worker) calls `step` and `apply`; other threads talk to it through the worker's queue. Every
change is validated in full before anything is replaced, so a refused change leaves the run
exactly as it was.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np

from engine.data.augment import BatchIterator
from engine.data.normalize import Normalization
from engine.formats.convnetjs import training_normalization
from engine.layers.base import Context, Workspace
from engine.net import Net
from engine.optim import Hyperparams, Optimizer
from engine.optim.lookahead import Lookahead, lookahead_decay
from engine.train.changes import RunChanges
from engine.train.evaluation import PeriodicTest, evaluate
from engine.train.metrics import History, Window, point_from_test
from engine.train.options import (DEFAULT_TRAIN_BUDGET, TrainBudget, TrainError, TrainOptions,
                                  check_budget, check_net_fits)
from engine.train.rollback import LossWatch, Rollback, all_finite
from engine.train.param_groups import fixed_params, lr_multipliers
from engine.train.whitening import whiten_first_conv

__all__ = ["Trainer", "TrainBudget", "TrainError", "TrainOptions"]

VALIDATION_WINDOW = 10
CHECKPOINT_EVERY = 10     # steps between healthy checkpoints, at most (see engine.train.rollback)
WEIGHT_GROWTH = 10.0      # a checkpoint's largest |weight| may grow this much over the last's


class Trainer(RunChanges):
    """The loop (step, evaluation, what observers read); the changes between steps come
    from RunChanges (engine/train/changes.py)."""

    def __init__(self, net: Net, dataset, hyperparams: Hyperparams | dict | None = None,
                 options: TrainOptions | None = None, *,
                 normalization: Normalization | None = None,
                 budget: TrainBudget = DEFAULT_TRAIN_BUDGET) -> None:
        """budget: training memory and FLOPs per step a net and batch size may need (a server
        passes its own); checked here and whenever the net or the batch size changes."""
        self.dataset = dataset
        self.options = (options or TrainOptions()).check()
        # ConvNetJS's own input convention for nets it can run (their export is then exact)
        self.normalization = normalization or training_normalization(net.spec,
                                                                     dataset.normalization)
        self.budget = budget
        check_net_fits(net.spec, dataset)
        hp = hyperparams if isinstance(hyperparams, Hyperparams) else Hyperparams.from_dict(
            hyperparams or {})
        self.cost = check_budget(net.spec, hp.batch_size, budget, "net")
        self.net = net
        whiten_first_conv(net, dataset.train, self.normalization, seed=self.options.seed)
        self.optimizer = Optimizer(net.named_params(), hp, frozen=fixed_params(net, 0),
                                   lr_muls=lr_multipliers(net))
        self._lookahead: Lookahead | None = None
        self._start_lookahead()
        self.grads = net.new_grads()
        self.ctx = Context(training=True, workspace=Workspace(), input_grad=False,
                           rng=np.random.default_rng(self.options.seed + 1))
        self.eval_workspace = Workspace()
        self.step_count = 0
        self.examples_seen = 0
        self.wall_seconds = 0.0
        self.schedule_start = 0           # the step the learning-rate schedule counts from
        self.schedule_note: str | None = None   # what the last apply() did to the schedule
        self.history = History(self.options.history_points)
        self._windows = {k: Window(self.options.window) for k in
                         ("loss", "reg_loss", "train_acc", "images", "seconds",
                          "forward_ms", "backward_ms")}
        # Validation batches come every validate_every steps: a window of `window` of them
        # would lag the training curve by thousands of steps. Ten batches of 100 images
        # average out most of the noise.
        self._windows["val_acc"] = Window(VALIDATION_WINDOW)
        self.layer_ms: list[tuple[float, float] | None] = []
        self.last_test: dict[str, Any] | None = None
        self.diverged: dict[str, Any] | None = None
        self.paused = False
        self._make_batches(epoch=0)
        self._val_position = 0
        self._val_order: np.ndarray | None = None
        self._rollback = Rollback()
        self._loss_watch = LossWatch()
        self._checkpoint_due = 0          # step_count from which a checkpoint may be taken
        self._test_run = PeriodicTest()

    # --- run control (loops such as the server's worker consult `paused`) -------------------
    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        """Continue; after a divergence this also clears it (the presenter has presumably
        lowered the learning rate: if not, it diverges again and pauses again)."""
        self.paused = False
        self.diverged = None

    # --- setup ----------------------------------------------------------------------------
    def _make_batches(self, epoch: int) -> None:
        self.batches = BatchIterator(
            self.dataset.train, self.optimizer.hp.batch_size,
            np.random.default_rng([self.options.seed, epoch, self.step_count]),
            self.options.augmentation, self.normalization, flip_seed=self.options.seed)
        self.batches.epoch = epoch

    @property
    def epoch(self) -> int:
        return self.batches.epoch

    @property
    def epoch_progress(self) -> float:
        return self.batches.epoch + self.batches.position / max(1, len(self.dataset.train))

    # --- one step -------------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        """One batch: forward, backward, update. Returns this step's figures. On a non-finite
        or exploded loss, or a non-finite gradient, weight or statistic, everything the step
        changed is put back (and, unless its loss was healthy, the last healthy checkpoint:
        see _diverge), `diverged` is set, the run pauses and the event is returned."""
        t0 = time.perf_counter()
        epoch_before = self.epoch          # before the batch: taking it may end the epoch
        x, y = next(self.batches)
        net, ctx = self.net, self.ctx
        # Parameters may stop training after some epochs (a whitening conv's bias).
        self.optimizer.set_frozen(fixed_params(net, epoch_before))
        # The forward pass moves batch-norm statistics: save before it.
        self._rollback.save(self._live_arrays(), (self.optimizer.t, self.optimizer.rule_t))
        Net.zero_grads(self.grads)
        ctx.timings = []
        # A diverging run overflows: let NaN and inf through quietly to the checks below
        # rather than warn (or, with warnings as errors, raise) half way through a pass.
        with np.errstate(all="ignore"):
            t1 = time.perf_counter()
            out, caches, _ = net.forward(x, ctx)
            t2 = time.perf_counter()
            loss, _, _ = net.backward(out, caches, y, self.grads, ctx)
            t3 = time.perf_counter()
            timings, ctx.timings = ctx.timings, None
            problem = self._forward_problem(loss)
            if problem is None:
                reg_loss = self.optimizer.step(net.named_grads(self.grads))
                problem = ("the regularisation loss became NaN or infinite"
                           if not np.isfinite(reg_loss) else
                           "a weight became NaN or infinite"
                           if not all_finite(a for _, a, _ in net.named_params()) else None)
        if problem is not None:
            self.optimizer.t, self.optimizer.rule_t = self._rollback.restore(self._live_arrays())
            return self._diverge(problem, loss)
        self._after_healthy_step(loss)
        self._lookahead_step()
        t4 = time.perf_counter()
        n = len(y)
        predicted = np.argmax(out.reshape(n, -1), axis=1)
        train_acc = float(np.mean(predicted == y))
        self.step_count += 1
        self.examples_seen += n
        self.wall_seconds += t4 - t0
        w = self._windows
        w["loss"].add(loss)
        w["reg_loss"].add(reg_loss)
        w["train_acc"].add(train_acc)
        w["images"].add(n)
        w["seconds"].add(t4 - t0)
        w["forward_ms"].add(1000 * (t2 - t1) / n)
        w["backward_ms"].add(1000 * (t3 - t2) / n)
        self.layer_ms = _per_layer_ms(timings, len(net.layers), n, net.fused_relu)
        result = {"step": self.step_count, "loss": loss, "reg_loss": reg_loss,
                  "train_acc": train_acc, "batch_size": n, "seconds": t4 - t0}
        if self.step_count % self.options.validate_every == 0:
            result["val_acc"] = self._validation_batch()
        new_epoch = self.epoch != epoch_before
        if (self.options.test_every and self.step_count % self.options.test_every == 0) or (
                not self.options.test_every and new_epoch):
            if self._test_run.start(net, self.dataset.test, self.normalization,
                                    self.step_count, self.examples_seen,
                                    batch_size=self.cost.eval_batch, tta=self.options.tta):
                result["test_started"] = True     # the weights it scores are these
        if self._test_run.pending:
            test = self._test_run.advance(self.options.test_chunk)
            if test is not None:
                self.last_test = result["test"] = test
                self.history.add_test(point_from_test(test["step"], test["examples"], test))
        self.history.add(self.point())
        return result

    def _live_arrays(self) -> list[np.ndarray]:
        """Every array a step changes in place: weights, batch-norm statistics, optimizer
        state (the rules update it in place; a method switch or a load replaces it)."""
        return ([a for _, a, _ in self.net.named_params()]
                + [a for _, a in self.net.named_buffers()]
                + [a for state in self.optimizer.state.values() for a in state.values()])

    def _forward_problem(self, loss: float) -> str | None:
        """Why this step's loss, gradients or statistics count as divergence, or None."""
        if not np.isfinite(loss):
            return "the loss became NaN or infinite"
        exploded = self._exploded(loss)
        if exploded:
            return exploded
        if not all_finite(a for g in self.grads for a in g.values()):
            return "a gradient became NaN or infinite"
        if not all_finite(a for _, a in self.net.named_buffers()):
            return "a batch-norm statistic became NaN or infinite"
        return None

    def _exploded(self, loss: float) -> str | None:
        """Why a finite loss already counts as divergence (see LossWatch), or None."""
        if not self._loss_watch.exploded(loss, self.net.loss_layer.type == "softmax"):
            return None
        level = self._loss_watch.level
        recent = f", {loss / level:,.0f} times its recent level" if level else ""
        return f"the loss exploded to {loss:.3g}{recent}"

    def _after_healthy_step(self, loss: float) -> None:
        """Track the loss; every CHECKPOINT_EVERY steps or so, make the weights this step
        started from (its loss was healthy) the checkpoint a divergence goes back to."""
        watch = self._loss_watch
        first = self._rollback.checkpoint is None
        if self.step_count >= self._checkpoint_due and (first or watch.healthy(loss)):
            n_weights = len(self.net.named_params())
            if self._rollback.keep_as_checkpoint(self.step_count, n_weights,
                                                 None if first else WEIGHT_GROWTH):
                self._checkpoint_due = self.step_count + CHECKPOINT_EVERY
        watch.add(loss)

    def _lookahead_step(self) -> None:
        """After a healthy update: pull the weights back to the slow copy when one is due
        (engine/optim/lookahead.py); the copy exists only while lookahead is on."""
        hp, t = self.optimizer.hp, self.optimizer.t
        if hp.lookahead == 0.0:
            self._lookahead = None
            return
        if self._lookahead is None:        # turned on by a loaded snapshot's settings
            self._start_lookahead()
        if self._lookahead.due(hp, t):
            self._lookahead.pull_back(lookahead_decay(hp, t))

    def finish_lookahead(self) -> None:
        """At the end of a run, the net takes the slow weights (nothing if lookahead is off)."""
        if self._lookahead is not None:
            self._lookahead.finish(self.optimizer.hp, self.optimizer.t)

    def _start_lookahead(self) -> None:
        """The slow copy starts from the weights as they are now (when lookahead is on)."""
        self._lookahead = (Lookahead([a for _, a, _ in self.net.named_params()]
                                     + [a for _, a in self.net.named_buffers()])
                           if self.optimizer.hp.lookahead else None)

    def _diverge(self, what: str, loss: float) -> dict[str, Any]:
        """Pause with the weights the undone step started from when its loss was healthy (a
        gradient or an update overflowed), else with the healthy checkpoint's: the undone
        step may have started from weights that were already exploding."""
        self.paused = True
        at = self.step_count + 1
        kept = None
        if not (np.isfinite(loss) and self._loss_watch.healthy(loss)):
            kept = self._rollback.restore_checkpoint(self._live_arrays())
        if kept is not None:
            (self.optimizer.t, self.optimizer.rule_t), kept_step = kept
            weights = f"the weights of step {kept_step:,} (the last healthy checkpoint)"
        else:
            kept_step = self.step_count
            weights = f"the weights of step {kept_step:,}"
        if self._lookahead is not None:        # it may hold weights newer than the kept ones
            self._lookahead.restart()
        self.diverged = {
            "step": at,
            "kept_step": kept_step,
            "message": f"training diverged at step {at}: {what} (learning rate "
                       f"{self.optimizer.lr:g}); paused with {weights}; lower the learning "
                       f"rate and resume",
        }
        self.history.mark({"step": self.step_count, "examples": self.examples_seen,
                           "text": f"diverged at step {at}"})
        return {"step": self.step_count, "diverged": self.diverged}

    def _validation_batch(self) -> float | None:
        split = self.dataset.validation
        if len(split) == 0:
            return None
        size = min(self.options.validation_batch, len(split))
        if self._val_order is None or len(self._val_order) != len(split):
            # Splits are grouped by class: walk a fixed shuffle so every batch is mixed.
            self._val_order = np.random.default_rng(self.options.seed).permutation(len(split))
        positions = self._val_order[(self._val_position + np.arange(size)) % len(split)]
        self._val_position = int((self._val_position + size) % len(split))
        from engine.data.normalize import preprocess
        ctx = Context(training=False, workspace=self.eval_workspace)
        correct = 0
        # In evaluation batches the budget allows (validation_batch may be up to 10,000).
        for start in range(0, size, self.cost.eval_batch):
            part = positions[start:start + self.cost.eval_batch]
            x = preprocess(split.take(part), self.normalization).astype(self.net.dtype)
            out = self.net.predict(x, ctx).reshape(len(part), -1)
            correct += int(np.sum(np.argmax(out, axis=1) == split.labels[part]))
        acc = correct / size
        self._windows["val_acc"].add(acc)
        return acc

    def evaluate_test(self, limit: int | None = None, tta: str | None = None) -> dict[str, Any]:
        """The whole test set now; tta: this evaluation's test-time augmentation, when not
        the options' (`train` scores its last evaluation so)."""
        result = evaluate(self.net, self.dataset.test, self.normalization, limit=limit,
                          workspace=self.eval_workspace, batch_size=self.cost.eval_batch,
                          tta=self.options.tta if tta is None else tta)
        result.update(step=self.step_count, examples=self.examples_seen)
        self.last_test = result
        return result

    def evaluate(self, split: str = "test", limit: int | None = None) -> dict[str, Any]:
        return evaluate(self.net, self.dataset.split(split), self.normalization, limit=limit,
                        workspace=self.eval_workspace, batch_size=self.cost.eval_batch,
                        tta=self.options.tta)

    # --- what observers read ----------------------------------------------------------------
    def point(self, **extra) -> dict[str, Any]:
        w = self._windows
        p = {"step": self.step_count, "examples": self.examples_seen,
             "epoch": round(self.epoch_progress, 4), "time": round(self.wall_seconds, 3),
             "loss": w["loss"].mean(), "reg_loss": w["reg_loss"].mean(),
             "train_acc": w["train_acc"].mean(), "val_acc": w["val_acc"].mean(),
             "lr": self.optimizer.lr}
        p.update({k: v for k, v in extra.items() if v is not None})
        return p

    def metrics(self) -> dict[str, Any]:
        w = self._windows
        seconds = w["seconds"].sum()
        return {
            **self.point(),
            "images_per_s": w["images"].sum() / seconds if seconds > 0 else None,
            "forward_ms_per_image": w["forward_ms"].mean(),
            "backward_ms_per_image": w["backward_ms"].mean(),
            "layer_ms": self.layer_ms,
            "batch_size": self.optimizer.hp.batch_size,
            "test_acc": self.last_test["accuracy"] if self.last_test else None,
            "test_step": self.last_test["step"] if self.last_test else None,
            "diverged": self.diverged,
        }

    def settings(self) -> dict[str, Any]:
        return {**self.optimizer.hp.to_dict(), **{k: v for k, v in asdict(self.options).items()},
                "schedule_start": self.schedule_start}

    def snapshot_kwargs(self) -> dict[str, Any]:
        """Arguments for engine.snapshot.save_snapshot describing the run as it is now."""
        return {
            "optimizer_state": self.optimizer.state_dict(),
            "step": self.step_count,
            "preprocess": self.normalization.to_dict(),
            "classes": list(self.dataset.class_names),
            "metrics": {"test": self.last_test, "point": self.point()},
            "meta": {"examples_seen": self.examples_seen, "epoch": self.epoch_progress,
                     "schedule_start": self.schedule_start,
                     "wall_seconds": self.wall_seconds, "options": asdict(self.options)},
        }


def _per_layer_ms(timings: list, n_layers: int, n: int, fused_relu=frozenset()
                  ) -> list[tuple[float, float] | None]:
    """[(forward ms, backward ms) per image] per layer from Net's (phase, index, s) records;
    None for a relu that ran inside the conv before it (Net.fused_relu): its time is the
    conv's."""
    per = [[0.0, 0.0] for _ in range(n_layers)]
    for phase, index, seconds in timings:
        per[index][0 if phase == "forward" else 1] += 1000 * seconds / n
    return [None if i - 1 in fused_relu else (round(f, 4), round(b, 4))
            for i, (f, b) in enumerate(per)]
