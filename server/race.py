"""Races: 2-6 runs trained in turns by the worker from the same initial weights, for equal
steps or equal training time each, then scored on the whole test set; the best test accuracy
wins. As ConvNetJS's trainers page, but on the net and data the room is watching, with the
settings the presenter picks (by default the lecture's six optimizers).

Turns: the worker gives the step to the racer furthest behind (fewest steps, or least
training time), a TURN of up to TURN_STEPS steps or TURN_SECONDS at a time, so switching
between racers' buffers costs little. Each racer has its own Trainer, buffers and data order
(the same seed: the same batches), so a racer's images/s is its own. A racer that diverges
leaves the race; the others go on. While racing, the presenter's pause pauses the race.

Memory: every racer's training buffers are live at once, so the racers' training memory
together must fit the server's training budget (max_train_bytes), and the runs the
checkpoints' bound (server/runs.py); a race over either is refused before anything starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from server.errors import ApiError
from server.runs import MAX_NAME, last_metrics

TURN_STEPS = 8
TURN_SECONDS = 0.25
# The lecture's optimizers: (name, changes on top of the current settings); None: the
# current learning rate.
DEFAULT_RACE = (
    ("sgd", {"method": "sgd"}),
    ("momentum", {"method": "momentum", "momentum": 0.9}),
    ("nesterov", {"method": "nesterov", "momentum": 0.9}),
    ("adagrad", {"method": "adagrad", "learning_rate": 0.01}),
    ("adadelta", {"method": "adadelta", "learning_rate": 1.0, "ro": 0.95, "eps": 1e-6}),
    ("adam", {"method": "adam", "learning_rate": 0.001}),
)


@dataclass
class Entry:
    run: str
    name: str
    start_step: int
    status: str = "racing"          # racing | testing | done | diverged | stopped
    steps: int = 0
    seconds: float = 0.0
    final: dict | None = None       # the whole test set at the end


class Race:
    def __init__(self, entries: list[Entry], equal: str, target: float) -> None:
        self.entries = {e.run: e for e in entries}
        self.equal = equal              # "steps" | "time"
        self.target = target            # steps, or seconds, per racer
        self.running = True
        self.status = "running"         # running | finished | stopped
        self.winner: str | None = None
        self.started = time.time()
        self._turn: tuple[str, int, float] | None = None   # run, steps left, seconds left

    def progress(self, e: Entry) -> float:
        return e.steps if self.equal == "steps" else e.seconds

    def next_racer(self) -> Entry | None:
        """Whose turn it is: the current turn's racer while it lasts, else the racer
        furthest behind (None when none is racing)."""
        if self._turn is not None:
            run, steps, seconds = self._turn
            e = self.entries.get(run)
            if e is not None and e.status == "racing" and steps > 0 and seconds > 0:
                return e
        racing = [e for e in self.entries.values() if e.status == "racing"]
        if not racing:
            self._turn = None
            return None
        e = min(racing, key=self.progress)
        self._turn = (e.run, TURN_STEPS, TURN_SECONDS)
        return e

    def record(self, e: Entry, seconds: float) -> None:
        e.steps += 1
        e.seconds += seconds
        if self._turn is not None:
            run, steps, left = self._turn
            self._turn = (run, steps - 1, left - seconds)
        if self.progress(e) >= self.target:
            e.status = "testing"

    def drop(self, run: str) -> None:
        self.entries.pop(run, None)

    def describe(self, runs: dict | None = None) -> dict[str, Any]:
        rows = []
        for e in self.entries.values():
            run = (runs or {}).get(e.run)
            m = last_metrics(run.trainer) if run is not None else {}
            rows.append({"run": e.run, "name": e.name, "status": e.status, "steps": e.steps,
                         "seconds": round(e.seconds, 3), "images_per_s": m.get("images_per_s"),
                         "loss": m.get("loss"), "val_acc": m.get("val_acc"),
                         "test_acc": None if e.final is None else e.final["accuracy"]})
        return {"equal": self.equal, "target": self.target, "status": self.status,
                "winner": self.winner, "started": self.started, "runs": rows}


class RaceCommands:
    """A mixin of server.commands.Handlers (after RunCommands): races."""

    race: Race | None = None

    def refuse_while_racing(self, what: str) -> None:
        if self.race is not None and self.race.running:
            raise ApiError(409, "race_running", f"a race is running: stop it (DELETE "
                           f"/api/race) to {what}")

    def pause_race(self) -> None:
        """A race goes on while the presenter has not paused it: pause it (a step failed)."""
        if self.race is not None and self.race.running:
            self.presenter_paused = True

    def wants_to_train(self) -> bool:
        if self.race is not None and self.race.running:
            return not self.presenter_paused
        return not self.trainer.paused

    def race_entries(self, entries: list[dict] | None) -> list[dict]:
        if entries is not None:
            return entries
        return [{"name": name, "params": params} for name, params in DEFAULT_RACE]

    def do_race(self, payload: tuple) -> dict:
        from engine.train.options import TrainError, check_budget
        entries, equal, target = payload
        entries = self.race_entries(entries)
        if self.race is not None and self.race.running:
            raise ApiError(409, "race_running", "a race is running: stop it first "
                           "(DELETE /api/race)", field="runs")
        self.check_room_for_runs(len(entries), "runs")
        source = self.trainer
        plans, total = [], 0.0
        for i, entry in enumerate(entries):
            params = dict(entry.get("params") or {})
            spec = entry.get("net") or source.net.spec      # parsed by the route
            batch = params.get("batch_size", source.optimizer.hp.batch_size)
            try:
                cost = check_budget(spec, batch, source.budget, "net")
            except TrainError as exc:
                raise ApiError(422, "over_budget", f"runs[{i}]: {exc}",
                               field=f"runs.{i}") from None
            total += cost.bytes_at(batch)
            plans.append((entry.get("name") or f"run {i + 1}", spec, params))
        budget = source.budget.max_bytes
        if total > budget:
            raise ApiError(422, "over_budget", f"these {len(entries)} runs train at once and "
                           f"need about {total / 1e9:,.2f} GB together; this server allows "
                           f"{budget / 1e9:,.2f} GB (serve's training budget): race fewer "
                           "runs or smaller batches", field="runs")
        trainers = []
        for i, (name, spec, params) in enumerate(plans):
            try:
                trainer = self.new_trainer(source, spec)
                if params:
                    trainer.apply(params)
            except ValueError as exc:      # the engine refusing the settings or the net
                field = getattr(exc, "field", None)
                raise ApiError(422, "invalid_setting", f"runs[{i}]: {exc}",
                               field=f"runs.{i}.params" + (f".{field}" if field else "")
                               ) from None
            trainers.append((name[:MAX_NAME], trainer, params))
        # Everything is checked: from here on nothing refuses.
        race_entries = []
        for name, trainer, params in trainers:
            run = self.add_run(trainer, name, self.net_name if trainer.net.spec ==
                               source.net.spec else None, params=params)
            self.past.take(run.id, trainer)
            race_entries.append(Entry(run.id, run.name, 0))
        self.race = Race(race_entries, equal, target)
        self.presenter_paused = False
        first = self.runs[race_entries[0].run]
        self.activate(first, keep_training=True)
        unit = "steps" if equal == "steps" else "seconds of training"
        self.w.log("info", f"race of {len(race_entries)} runs, {target:g} {unit} each: "
                           + ", ".join(f"{e.run} {e.name}" for e in race_entries))
        return {"race": self.race.describe(self.runs), "runs": self.w.published.runs}

    def race_step(self) -> bool:
        """One racer's step (True), or False when no race is running. Ends the race when
        every racer is done and scored."""
        race = self.race
        if race is None or not race.running:
            return False
        entry = race.next_racer()
        if entry is None:
            self.score_next_racer()
            return True
        run = self.runs[entry.run]
        if run is self.active:
            result = self.step_active()
        else:
            result = run.trainer.step()
            if "diverged" not in result:
                self.past.after_step(run.id, run.trainer, result)
        if "diverged" in result:
            entry.status = "diverged"
            self.w.log("warn", f"{run.id} ({run.name}) diverged and leaves the race")
            run.trainer.resume()       # not paused: the race's pause is the presenter's
            return True
        race.record(entry, result.get("seconds", 0.0))
        return True

    def score_next_racer(self) -> None:
        race = self.race
        waiting = [e for e in race.entries.values() if e.status == "testing"]
        if waiting:
            e = waiting[0]
            run = self.runs[e.run]
            e.final = run.trainer.evaluate_test()
            e.status = "done"
            self.past.checkpoints.add_test(run.id, run.trainer.step_count, e.final)
            self.publish_runs()
            return
        scored = [e for e in race.entries.values() if e.final is not None]
        if scored:
            # ties (a small test set) go to the lower test loss
            best = max(scored, key=lambda e: (e.final["accuracy"],
                                              -(e.final["loss"] if e.final["loss"] is not None
                                                else float("inf"))))
            race.winner = best.run
            self.w.log("info", f"race over: {best.run} ({best.name}) wins with "
                               f"{100 * best.final['accuracy']:.2f}% test accuracy")
        self.end_race("finished")

    def end_race(self, status: str) -> None:
        """The race is over (finished, or stopped by the presenter): every run but the
        active one parked, the active one paused until the presenter resumes a run."""
        race = self.race
        race.running = False
        race.status = status
        for e in race.entries.values():
            if e.status in ("racing", "testing"):
                e.status = "stopped"
        for run in self.runs.values():
            if run is not self.active:
                self.park(run)
        self.trainer.pause()
        self.presenter_paused = True
        self.publish_all()
        self.publish_runs()

    def do_stop_race(self, _: Any) -> dict:
        race = self.race
        if race is None or not race.running:
            raise ApiError(409, "no_race", "no race is running")
        self.end_race("stopped")
        self.w.log("info", "race stopped")
        return {"race": race.describe(self.runs)}
