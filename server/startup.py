"""The worker's start-up (the data set, the net or snapshot, the saved run it offers or
resumes, the kernels warmed up) and its shut-down (a snapshot saved on exit).

StartUp is a mixin of Handlers (server/commands.py): it reads and writes the handlers'
attributes, so that commands.py holds the steps, the publishing and the commands.
"""

from __future__ import annotations

import time

import numpy as np

from engine.threads import ThreadTuner
from server.errors import engine_refusal
from server.snapshot_files import remove_stale_temp_files, save_snapshot_file
from server.views import Inspector, net_view


def data_title(dataset) -> str:
    """What the page calls the data set: CIFAR-10, or the folder or archive it came from."""
    from pathlib import PurePath
    source = getattr(dataset, "source", None)
    if source is None or source.kind in ("bundled", "official"):
        return "CIFAR-10"
    return PurePath(str(source.location)).name or "your images"


class StartUp:
    def start_up(self) -> None:
        import numba

        from engine.data import open_source, source_title
        from engine.net import Net
        from engine.presets import open_net, training_defaults, training_options
        from engine.formats.pretrained import resolve_snapshot
        from engine.train.trainer import TrainBudget, Trainer, TrainOptions

        self.w.hub.publish("state", {"status": self.w.published.status})
        removed = remove_stale_temp_files(self.s.snapshot_dir)
        if removed:
            self.w.log("info", f"removed {removed} temporary file(s) left in "
                               f"{self.s.snapshot_dir} by an interrupted save")
        # Numba's thread count is per thread: the worker sets it, in train_step.
        self.tuner = ThreadTuner.for_machine(self.s.threads)
        numba.set_num_threads(self.tuner.current)
        snapshot = resolve_snapshot(self.s.snapshot) if self.s.snapshot else None
        spec, self.net_name = open_net(self.s.net)
        # A fresh start offers (or, with --resume, loads) the newest saved run of its net.
        saved = None if snapshot is not None else self.find_saved_run(spec)
        resumed = None
        if saved is not None and self.s.resume:
            snapshot, resumed, saved = self.read_saved_run(saved), saved, None
        if snapshot is not None and resumed is None:   # the snapshot's net replaces --net's
            spec, self.net_name = snapshot.spec, None
        self.w.published.net = net_view(spec, self.net_name)
        self.w.hub.publish("net", self.w.published.net)
        dataset = self.s.dataset
        if dataset is None:
            self.w.log("info", f"loading the data set: {source_title(self.s.data)}")
            dataset = open_source(self.s.data, validation=self.s.validation,
                                  log=lambda text: self.w.log("info", text))
        hp = {**training_defaults(self.net_name), **self.s.hyperparams}
        # The test set a batch per step: a whole one at once would stall classify requests
        # and the streams for seconds.
        options = TrainOptions(**{"seed": self.s.seed, "test_chunk": 250,
                                  **training_options(self.net_name), **self.s.options})
        budget = TrainBudget(self.s.max_train_bytes, self.s.max_step_flops)
        trainer = Trainer(Net(spec, rng=np.random.default_rng(self.s.seed)), dataset, hp,
                          options, budget=budget)
        if resumed is not None:
            resumed = self.load_saved_run(trainer, snapshot, resumed)
        elif snapshot is not None:
            trainer.load(snapshot)
        if self.w.stopping:
            return
        self.inspector = Inspector(dataset, self.s.gallery_per_class)
        self.w.published.classes = list(dataset.class_names)
        self.w.published.image_size = tuple(dataset.image_size)
        self.w.published.data_title = data_title(dataset)
        self.w.set_status("compiling")
        started = time.monotonic()
        self.inspector.warm_up(trainer)
        self.w.log("info", f"kernels ready in {time.monotonic() - started:.1f} s")
        self.w.trainer = trainer
        self.start_runs(trainer)
        self.past.restart(self.run, trainer)
        if self.s.start_paused:
            trainer.pause()
            self.presenter_paused = True
        self.w.published.saved_run = saved
        if resumed is not None:
            self.w.log("info", f"resumed the saved run {resumed.describe()}")
        elif saved is not None:
            self.w.log("info", f"a saved run of this net can be resumed: {saved.describe()} "
                               "(the page's \"Resume the saved run\", or `serve --resume`)")
        if snapshot is not None and (resumed is not None or self.s.snapshot):
            self.pause_if_schedule_ended()
        self.publish_all()

    # --- the saved run ------------------------------------------------------------------------
    def find_saved_run(self, spec):
        """The newest snapshot this server's kind saved for `spec` (server/snapshot_files.py);
        a folder that cannot be read offers none, and says why."""
        from server.snapshot_files import newest_saved_run
        try:
            saved = newest_saved_run(self.s.snapshot_dir, spec, self.net_name)
        except OSError as exc:
            self.w.log("warn", f"cannot look for saved runs in {self.s.snapshot_dir}: "
                               f"{exc.strerror or exc}")
            return None
        if saved is None and self.s.resume:
            self.w.log("info", f"--resume: no saved run of {self.net_name or 'this net'} in "
                               f"{self.s.snapshot_dir}; starting fresh")
        return saved

    def read_saved_run(self, saved):
        """--resume: the saved run's Snapshot, or None (said in the log) when it cannot be
        read: the server then starts fresh rather than not at all."""
        from engine.formats.snapshot import SnapshotError
        from server.snapshot_files import load_saved_run
        try:
            return load_saved_run(saved)
        except SnapshotError as exc:
            self.w.log("error", f"could not resume {saved.path}: {exc}; starting fresh")
            return None

    def load_saved_run(self, trainer, snapshot, saved):
        """Load a saved run into a trainer (start-up); the run, or None when it does not fit
        (said in the log: the server starts fresh)."""
        if snapshot is None:
            return None
        try:
            trainer.load(snapshot)
        except ValueError as exc:         # TrainError: another data set's classes...
            if not engine_refusal(exc):
                raise
            self.w.log("error", f"could not resume {saved.path}: {exc}; starting fresh")
            return None
        return saved

    def shut_down(self) -> None:
        trainer = self.trainer
        if trainer is None or not self.s.save_on_exit or trainer.step_count == 0:
            return
        try:
            name, data = self.save_bytes()
            save_snapshot_file(self.s, name, data, self.w.log)
            self.w.published.snapshot_file = str((self.s.snapshot_dir / name).resolve())
        except Exception as exc:          # OSError, or weights a snapshot refuses (NaN)
            self.w.log("error", f"could not save a snapshot on exit: {exc}")
