"""Several runs in one server: forks of a run from any checkpoint, and races.

A run is a Trainer with an id ("r1", "r2", ...), a name, and where it came from. The worker
trains one of them, the ACTIVE run (`worker.trainer`, what the stats, frames and gallery
show); the others are parked: paused, their training buffers freed, their history and
checkpoints kept (server/past.py, within the one memory bound). Any run can be made active
again. A race trains 2-6 runs in turns (server/race.py).

Forking (`do_fork`) copies a checkpoint's weights, statistics, step and schedule clock into a
new Trainer with the source run's settings and the fork's changes; the optimizer's state
(momentum, Adam's moments) starts afresh, as checkpoints do not keep it. Everything is
checked before the first change: a refused fork leaves every run as it was.

Published for the routes (replaced, never changed): `published.runs`, the listing GET
/api/runs answers, and `published.run_histories`, each parked run's history. A `runs` stream
event carries the listing, and the points every non-active run added since the last event,
at most every history_every_s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from server.errors import ApiError, engine_refusals_as

MAX_NAME = 40


@dataclass(eq=False)
class Run:
    id: str
    name: str
    trainer: Any
    net_name: str | None
    parent: str | None = None
    from_step: int | None = None
    from_examples: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    points_sent: int = -1          # the last step of this run's points in a runs event


def last_metrics(trainer) -> dict[str, Any]:
    m = trainer.metrics()
    return {key: m.get(key) for key in ("step", "examples", "epoch", "time", "loss",
                                         "train_acc", "val_acc", "test_acc", "images_per_s",
                                         "lr")}


def describe_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in params.items()) or "no changes"


class RunCommands:
    """A mixin of server.commands.Handlers: the runs, forks and the active run."""

    def start_runs(self, trainer) -> None:
        self.runs: dict[str, Run] = {}
        self.run_counter = 0
        self._runs_published_at = -float("inf")
        self._runs_version = 0
        self.add_run(trainer, "run 1", self.net_name)
        self.w.published.active_run = "r1"

    def add_run(self, trainer, name: str, net_name: str | None, **where: Any) -> Run:
        self.run_counter += 1
        run = Run(f"r{self.run_counter}", name, trainer, net_name, **where)
        self.runs[run.id] = run
        return run

    @property
    def active(self) -> Run:
        return self.runs[self.w.published.active_run]

    def find_run(self, run_id: str | None, field: str = "run") -> Run:
        if run_id is None:
            return self.active
        run = self.runs.get(run_id)
        if run is None:
            raise ApiError(404, "unknown_run", f"there is no run {run_id!r}; runs: "
                           f"{', '.join(self.runs)}", field=field)
        return run

    # --- what observers read ------------------------------------------------------------------
    def run_status(self, run: Run) -> str:
        if run is self.active:
            return self.status()
        race = getattr(self, "race", None)
        if race is not None and run.id in race.entries:
            return race.entries[run.id].status
        return "diverged" if run.trainer.diverged else "parked"

    def publish_runs(self, points: bool = True, event: bool = True) -> None:
        """The listing, each parked run's history, and (unless `event` is False) a runs event
        (with the new points of every run but the active one, whose points the history event
        carries)."""
        listing, new_points = [], {}
        for run in self.runs.values():
            t = run.trainer
            listing.append({"id": run.id, "name": run.name, "parent": run.parent,
                            "from_step": run.from_step, "from_examples": run.from_examples,
                            "params": run.params,
                            "net": run.net_name or t.net.spec.name or "custom",
                            "status": self.run_status(run), "last": last_metrics(t)})
            if run is not self.active and points:
                fresh = [p for p in t.history.points if p["step"] > run.points_sent]
                if fresh:
                    new_points[run.id] = fresh
                    run.points_sent = fresh[-1]["step"]
        published = self.w.published
        published.run_histories = {
            run.id: (list(run.trainer.history.points), list(run.trainer.history.markers),
                     list(run.trainer.history.tests))
            for run in self.runs.values() if run is not self.active}
        race = getattr(self, "race", None)
        # A page may get a listing by GET after a newer one came on its stream: the version
        # says which is newer. It counts the wall clock's microseconds, so it also grows across
        # a restart and stays exact in a JavaScript number (below 2**53).
        self._runs_version = max(self._runs_version + 1, time.time_ns() // 1000)
        published.runs = {"version": self._runs_version, "active": self.active.id, "runs": listing,
                          "race": None if race is None else race.describe(self.runs)}
        if event:
            self.w.hub.publish("runs", {**published.runs, "points": new_points})
        self._runs_published_at = time.monotonic()

    def publish_runs_if_due(self) -> None:
        """Every history period: GET /api/runs's figures stay current; the event goes out only
        while there are runs to compare (a single run's figures reach the page anyway)."""
        if time.monotonic() - self._runs_published_at >= max(self.s.history_every_s, 0.25):
            self.publish_runs(event=len(self.runs) > 1)

    # --- the active run -----------------------------------------------------------------------
    def park(self, run: Run) -> None:
        """Stop training `run` and free its training buffers (they come back with its next
        step); its weights, optimizer state, history and checkpoints stay."""
        run.trainer.pause()
        run.trainer.ctx.workspace.clear()
        run.trainer.eval_workspace.clear()

    def activate(self, run: Run, *, keep_training: bool) -> None:
        before = self.active
        if run is before:
            return
        race = getattr(self, "race", None)
        racing = race is not None and race.running and before.id in race.entries
        if not racing:
            self.park(before)
        # The run's checkpoints are published before it becomes the active one: a request
        # between the two would find an active run without a checkpoint list (404).
        self.past.publish()
        self.w.published.active_run = run.id
        self.w.trainer = run.trainer
        self.net_name = run.net_name
        if keep_training and not (race is not None and race.running and run.id in race.entries):
            run.trainer.resume()
        self.inspector.pinned = None
        self.publish_net(run.net_name)
        self.publish_all()
        self.publish_runs(points=False)

    def do_activate(self, run_id: str) -> dict:
        run = self.find_run(run_id)
        was_training = not self.trainer.paused
        self.activate(run, keep_training=was_training)
        self.w.log("info", f"{run.id} ({run.name}) is the active run")
        return self.w.published.runs

    def do_delete_run(self, run_id: str) -> dict:
        run = self.find_run(run_id)
        race = getattr(self, "race", None)
        if run is self.active:
            raise ApiError(409, "active_run", f"{run.id} is the active run: make another run "
                           "active first", field="run")
        if race is not None and race.running and run.id in race.entries:
            raise ApiError(409, "racing", f"{run.id} is in the race: stop the race first",
                           field="run")
        del self.runs[run.id]
        if race is not None and run.id in race.entries:
            race.drop(run.id)
        self.past.forget(run.id)
        self.publish_runs(points=False)
        self.w.log("info", f"deleted {run.id} ({run.name})")
        return self.w.published.runs

    # --- forks --------------------------------------------------------------------------------
    def check_room_for_runs(self, count: int, field: str) -> None:
        """Room for `count` more runs: the run limit, and two checkpoints each (its first and
        latest always stay) within the checkpoints' memory bound."""
        from engine.train.checkpoints import checkpoint_bytes
        limit = self.s.max_runs
        if len(self.runs) + count > limit:
            raise ApiError(409, "too_many_runs", f"this server keeps at most {limit} runs and "
                           f"has {len(self.runs)}: delete a run first (DELETE /api/runs/ID)",
                           field=field)
        one = checkpoint_bytes(self.trainer.net)
        need = 2 * one * (len(self.runs) + count)
        bound = self.past.checkpoints.max_bytes
        if need > bound:
            raise ApiError(409, "memory_bound", f"{len(self.runs) + count} runs need at least "
                           f"{need / 2**20:,.1f} MB of checkpoints (two of "
                           f"{one / 2**20:,.1f} MB each) and the bound is {bound / 2**20:,.0f} "
                           "MB (serve --checkpoint-mb): delete a run first", field=field)

    def new_trainer(self, source, spec=None):
        """A Trainer with `source`'s settings and budget on fresh weights of `spec` (default:
        source's net; the same seed, so the same spec gets the same initial weights), with
        source's normalisation where the spec is the same."""
        from engine.net import Net
        from engine.train.trainer import Trainer
        spec = spec or source.net.spec
        net = Net(spec, dtype=source.net.dtype, rng=np.random.default_rng(source.options.seed))
        return Trainer(net, source.dataset, source.optimizer.hp, source.options,
                       normalization=source.normalization if spec == source.net.spec else None,
                       budget=source.budget)

    def do_fork(self, payload: tuple) -> dict:
        step, params, source_id = payload
        source = self.find_run(source_id)
        checkpoint = self.past.checkpoints.nearest(source.id, step)
        if checkpoint is None:
            raise ApiError(404, "no_checkpoints", f"{source.id} has no checkpoints", field="run")
        if step > source.trainer.step_count:
            raise ApiError(404, "unknown_step", f"{source.id} is at step "
                           f"{source.trainer.step_count:,}: it cannot be forked at step "
                           f"{step:,}", field="step")
        self.check_room_for_runs(1, "step")
        keep_training = not self.trainer.paused
        trainer = self.new_trainer(source.trainer)
        trainer.pause()            # until it is made active (and the active run trained)
        trainer.continue_from(checkpoint, checkpoint.test)
        if params:
            with engine_refusals_as("invalid_setting"):
                trainer.apply(params)
        text = f"fork of {source.id} at step {checkpoint.step:,}: {describe_params(params)}"
        trainer.history.mark({"step": checkpoint.step, "examples": checkpoint.examples,
                              "text": text})
        # Everything is checked: from here on nothing refuses.
        run = self.add_run(trainer, f"{source.name} / {describe_params(params)}"[:MAX_NAME],
                           source.net_name, parent=source.id, from_step=checkpoint.step,
                           from_examples=checkpoint.examples, params=dict(params))
        self.past.take(run.id, trainer)
        self.activate(run, keep_training=keep_training)
        self.w.log("info", f"{run.id}: {text}")
        return {"run": run.id, "from_step": checkpoint.step, "runs": self.w.published.runs}
