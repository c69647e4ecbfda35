"""What the worker thread does: start-up, steps, periodic publishing, and each command.

Runs only in the worker thread (see worker.py). Each command handler validates everything
before the first change, so a refused command (ApiError) leaves the run as it was.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from engine.formats.snapshot import dumps as snapshot_dumps
from engine.formats.snapshot import snapshot_to_json
from engine.threads import ThreadTuner
from server import exports
from server.errors import ApiError, engine_refusals_as
from server.race import RaceCommands
from server.runs import RunCommands
from server.startup import StartUp
from server.past import MiB, Past
from server.patches import PatchCollector
from server.views import Inspector, net_view

ACTIONS = ("pause", "resume", "step", "reset", "restart_schedule")


class Handlers(StartUp, RunCommands, RaceCommands):
    """Steps, publishing and the commands; start-up, the saved run and shut-down come from
    StartUp (server/startup.py)."""

    def __init__(self, worker) -> None:
        self.w = worker
        self.s = worker.settings
        self.inspector: Inspector | None = None
        self.net_name: str | None = None
        now = time.monotonic()
        self.last = {"metrics": now, "history": now, "frame": now, "gallery": now}
        self.published_step = {"metrics": -1, "history": -1, "frame": -1, "gallery": -1}
        self.steps_since_frame = 0
        self.tests_sent = 0                 # history.tests_added at the last history event
        self.history_generation = 0         # history.generation at the last history event
        self.tuner: ThreadTuner | None = None
        # Whether the presenter paused the run (pause, one step, `serve --paused`), as opposed
        # to a divergence or a loaded snapshot whose schedule had ended: a reset keeps only
        # the presenter's pause.
        self.presenter_paused = False
        self.past = Past(worker, self.s.checkpoint_mb * MiB)
        self.patches = PatchCollector(self.s.patch_images, self.s.patch_share)

    @property
    def run(self) -> str:
        """The id of the run the worker trains and shows."""
        return self.w.published.active_run

    @property
    def trainer(self):
        return self.w.trainer

    def do_resume(self, payload: tuple) -> dict:
        """POST /api/resume: the offered saved run, read and checked by the route."""
        snapshot, saved = payload
        if saved is not self.w.published.saved_run:
            raise ApiError(404, "no_saved_run", "that saved run is no longer offered (the net "
                           "changed, or it was resumed already)")
        self.load(snapshot, f"the saved run {saved.path.name}",
                  lambda: f"resumed the saved run {saved.describe()}", self.net_name)
        return self.w.published.net

    # --- training ---------------------------------------------------------------------------
    def train_step(self) -> None:
        if not self.race_step():
            self.step_active()

    def step_active(self) -> dict:
        self.tuner.apply()
        result = self.trainer.step()
        if "batch_size" in result:
            # The training part only: validation batches and test chunks ride on some steps.
            self.tuner.record(result["batch_size"], result["seconds"])
        if "diverged" in result:
            self.publish_all(frame=False)
            self.w.log("error", result["diverged"]["message"])
            return result
        self.past.after_step(self.run, self.trainer, result)
        self.steps_since_frame += 1
        if "test" in result:
            test = result["test"]
            self.w.log("info", f"test accuracy {100 * test['accuracy']:.2f}% on "
                               f"{test['images']:,} images at step {test['step']:,}")
            self.w.published.exports = exports.export_info(self.trainer)  # new weights
            self.publish_gallery()
        return result

    def publish_periodic(self) -> None:
        now = time.monotonic()
        step = self.trainer.step_count
        s, last = self.s, self.last
        if now - last["metrics"] >= s.metrics_every_s and step != self.published_step["metrics"]:
            self.publish_metrics()
        if now - last["history"] >= s.history_every_s and step != self.published_step["history"]:
            self.publish_history()
        if (self.steps_since_frame >= s.frame_every_steps
                and now - last["frame"] >= s.frame_min_interval_s):
            self.publish_frame()
        if now - last["gallery"] >= s.gallery_every_s and step != self.published_step["gallery"]:
            self.publish_gallery()
        self.past.publish_if_due(s.history_every_s)
        self.publish_runs_if_due()
        self.patches.follow(self.trainer)       # a new test result: look for its patches
        self.patches.advance(paused=not self.wants_to_train())    # a race trains too

    # --- publishing -----------------------------------------------------------------------
    def status(self) -> str:
        t = self.trainer
        return "diverged" if t.diverged else "paused" if t.paused else "training"

    def publish_all(self, frame: bool = True) -> None:
        self.patches.follow(self.trainer)       # a new net drops its patches before it shows
        self.w.published.settings = self.trainer.settings()
        self.publish_metrics()
        self.publish_history()
        if frame:
            self.publish_frame()
        self.publish_gallery()
        self.w.published.exports = exports.export_info(self.trainer)
        self.publish_runs(points=False)
        # The status (and the state event) last: a client that sees the run ready at start
        # sees all of it, not a state whose settings or figures are still to come.
        status = self.status()
        if status != self.w.published.status:
            self.w.set_status(status)           # publishes the state
        else:
            self.w.publish_state()

    def publish_metrics(self) -> None:
        t = self.trainer
        metrics = {**t.metrics(), "status": self.status(), "lr": t.optimizer.lr,
                   "threads": self.tuner.current,
                   "server_time": time.time()}   # lets a client see how stale it is
        self.w.published.metrics = metrics
        self.w.hub.publish("metrics", metrics)
        self.last["metrics"] = time.monotonic()
        self.published_step["metrics"] = t.step_count

    def publish_history(self) -> None:
        """The points (and test results) since the last history event. A client that missed
        one (a slow client's slot keeps only the latest) sees `from` ahead of its own last
        step and refetches /api/history."""
        history = self.trainer.history
        points, markers, tests = list(history.points), list(history.markers), list(history.tests)
        sent = self.published_step["history"]
        # Cleared since the last event (a reset, a loaded snapshot whose steps run higher).
        reset = history.generation != self.history_generation
        self.history_generation = history.generation
        new = points if reset else [p for p in points if p["step"] > sent]
        new_tests = history.tests_added - self.tests_sent
        new_tests = tests if reset else tests[len(tests) - min(new_tests, len(tests)):]
        self.w.published.history = (points, markers, tests)
        self.w.hub.publish("history", {"points": new, "markers": markers, "tests": new_tests,
                                       "reset": reset, "from": 0 if reset else sent})
        self.last["history"] = time.monotonic()
        self.published_step["history"] = points[-1]["step"] if points else 0
        self.tests_sent = history.tests_added

    def publish_frame(self) -> None:
        # Counted as done before it is built: a frame that fails is not retried every loop.
        self.last["frame"] = time.monotonic()
        self.steps_since_frame = 0
        frame = self.inspector.frame(self.trainer)
        self.w.published.frame_details = self.inspector.details    # before its frame
        self.w.published.frame = frame
        self.w.hub.publish("frame", frame)
        self.last["frame"] = time.monotonic()
        self.steps_since_frame = 0

    def publish_gallery(self) -> None:
        gallery = self.inspector.gallery(self.trainer)
        self.w.published.gallery = gallery
        self.w.hub.publish("gallery", gallery)
        self.last["gallery"] = time.monotonic()
        self.published_step["gallery"] = self.trainer.step_count

    def publish_net(self, name: str | None) -> None:
        self.net_name = name
        if getattr(self, "runs", None):
            self.active.net_name = name
        self.w.published.net = net_view(self.trainer.net.spec, name)
        self.w.hub.publish("net", self.w.published.net)

    # --- commands ---------------------------------------------------------------------------
    def handle(self, kind: str, payload: Any) -> Any:
        return getattr(self, f"do_{kind}")(payload)

    def do_set_net(self, payload: tuple) -> dict:
        from engine.optim import Hyperparams, OptimError
        from engine.presets import training_defaults, training_options
        spec, preset = payload
        self.refuse_while_racing("change the net")
        defaults = training_defaults(preset) if preset else {}
        t = self.trainer
        try:
            Hyperparams.from_dict({**t.optimizer.hp.to_dict(), **defaults})
        except OptimError as exc:      # e.g. the preset's warmup longer than a set total_steps
            raise ApiError(422, "invalid_setting", f"the preset's training settings do not fit "
                           f"the current ones: {exc}", field=exc.field) from None
        # The preset's settings go in with the net: both fit the training budget, or neither
        # is applied.
        with engine_refusals_as("net_mismatch"):      # TrainError, or another refusal
            t.set_net(spec, seed=self.s.seed,
                      settings={**defaults, **training_options(preset)} or None)
        self.w.published.saved_run = None
        self.past.restart(self.run, t)
        self.past.drop_net()
        self.publish_net(preset)
        self.publish_all()
        self.w.log("info", f"new net: {self.w.published.net['name']} "
                           f"({self.w.published.net['params']:,} parameters)")
        return self.w.published.net

    def do_example(self, index: int | None) -> dict:
        """Pin the network view to one test image (None: cycle through the classes again)."""
        images = len(self.inspector.dataset.test)
        if index is not None and not 0 <= index < images:
            raise ApiError(422, "invalid_example", f"index must be a test image in "
                           f"0..{images - 1} or null, got {index}", field="index")
        self.inspector.pinned = index
        self.publish_frame()
        self.w.log("info", "the network view follows the classes again" if index is None else
                   f"the network view shows test image #{index}")
        return {"pinned": index, "frame": self.w.published.frame}

    def do_params(self, changes: dict) -> dict:
        with engine_refusals_as("invalid_setting"):   # TrainError, or another refusal
            settings = self.trainer.apply(changes)
        self.w.published.settings = settings
        self.w.set_status(self.status())
        self.w.publish_state()
        self.publish_metrics()
        self.w.log("info", "set " + ", ".join(f"{k} to {v}" for k, v in changes.items())
                   + (f"; {self.trainer.schedule_note}" if self.trainer.schedule_note else ""))
        return settings

    def do_control(self, action: str) -> dict:
        t = self.trainer
        if action == "pause":
            t.pause()
            self.presenter_paused = True
        elif action == "resume":
            t.resume()
            self.presenter_paused = False
        elif action == "step":
            t.pause()
            self.presenter_paused = True
            result = t.step()
            if "diverged" in result:
                self.w.log("error", result["diverged"]["message"])
            else:
                self.past.after_step(self.run, t, result)
                self.past.publish()
            self.publish_all(frame="diverged" not in result)
        elif action == "reset":
            self.refuse_while_racing("reset the run")
            self.reset()
        elif action == "restart_schedule":
            t.restart_schedule()
            self.w.published.settings = t.settings()
            self.w.publish_state()
            self.w.log("info", f"the {t.optimizer.hp.schedule} learning-rate schedule restarts "
                               f"from step {t.step_count:,} (its warmup and decay start over; "
                               f"learning rate {t.optimizer.lr:g} for the next step)")
        self.w.set_status(self.status())
        self.publish_metrics()
        if action in ("pause", "resume"):
            self.w.log("info", {"pause": "paused", "resume": "training resumed"}[action])
        return {"status": self.status()}

    def reset(self) -> None:
        """Fresh weights, cleared history. A presenter who paused the run expects it to stay
        paused; after a divergence (or a pause the server made) a reset starts training:
        the presenter asked to start over, and a paused fresh run would wait for a second
        click that nothing asks for."""
        t = self.trainer
        keep_paused = t.paused and self.presenter_paused and t.diverged is None
        t.reset()
        self.past.restart(self.run, t)
        if keep_paused:
            state = "paused (press Resume)"
        else:
            t.resume()
            self.presenter_paused = False
            state = "training"
        self.publish_all()
        self.w.log("info", f"reset: fresh weights; {state}")

    def save_bytes(self) -> tuple[str, bytes]:
        t = self.trainer
        doc = snapshot_to_json(t.net, **t.snapshot_kwargs())
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return f"convnet-{stamp}-step{t.step_count}.json", snapshot_dumps(doc)

    def do_save(self, _: Any) -> tuple[str, bytes]:
        return self.save_bytes()

    def do_download(self, fmt: str) -> tuple[str, bytes, str, dict[str, str]]:
        """(file name, bytes, media type, headers): ours, or another tool's (server.exports)."""
        if fmt != "ours":
            return exports.download(self.trainer, fmt)
        name, data = self.save_bytes()
        return name, data, "application/json", {}

    def do_load(self, payload: tuple) -> dict:
        """Trainer.load checks everything before its first change, so a refusal (any of the
        engine's errors) leaves the run as it was."""
        snapshot, label = payload
        self.refuse_while_racing("load a snapshot")
        self.load(snapshot, label, lambda: f"loaded {label} (step {self.trainer.step_count:,})")
        return self.w.published.net

    def load(self, snapshot, label: str, says, name: str | None = None) -> None:
        """Swap a checked snapshot in (422 when it does not fit this run), log says(), and
        publish it as net `name`; the saved run is no longer offered: the run is another one
        now."""
        with engine_refusals_as("snapshot_mismatch", f"{label}: "):  # TrainError, SnapshotError...
            self.trainer.load(snapshot)
        self.w.published.saved_run = None
        self.past.restart(self.run, self.trainer)
        self.publish_net(name)
        self.w.log("info", says())
        self.pause_if_schedule_ended()
        self.publish_all()

    def pause_if_schedule_ended(self) -> None:
        """A snapshot saved at the end of its learning-rate schedule (the shipped nets) would
        go on at learning rate 0, changing nothing while it uses the CPU: pause and say so."""
        t = self.trainer
        if t.optimizer.lr == 0 and not t.paused:
            t.pause()
            self.w.log("info", "paused: this snapshot's learning-rate schedule has ended "
                               "(learning rate 0); type a learning rate (it is used from the "
                               "next step) or restart the schedule, and resume to train on")

    def do_predict(self, positions: list[int]) -> dict:
        """The active net's answers for test images (the route checked the positions):
        {"step", "probs": [[p per class] per image], "classes"}."""
        probs = self.inspector.predict_test(self.trainer, positions)
        return {"step": self.trainer.step_count, "probs": probs.tolist(),
                "classes": list(self.inspector.classes)}

    def do_classify(self, payload: tuple) -> dict:
        image, top = payload
        return self.inspector.classify(self.trainer, image, top)

    def do_view(self, payload: tuple) -> dict:
        """A frame or gallery of a checkpoint of `run` (worker.submit_view; the route picked
        the checkpoint nearest the step asked for from what was published)."""
        kind, run, checkpoint_id, position = payload
        checkpoint = self.past.checkpoints.by_id(run, checkpoint_id)
        if checkpoint is None:      # thinned, or the run was reset since the route looked
            raise ApiError(404, "checkpoint_gone", "that checkpoint is no longer kept (the "
                           "run thinned its checkpoints or started over): ask again",
                           field="step")
        # the run's own trainer: its normalisation (a race run may have another net)
        trainer = self.runs[run].trainer if run in self.runs else self.trainer
        return {"checkpoint": checkpoint.describe(),
                **self.past.view(trainer, self.inspector, kind, checkpoint, position)}
