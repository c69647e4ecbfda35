"""The training thread: the only owner of the Trainer and the only caller of parallel kernels.

Numba's default threading layer aborts the process when two threads run parallel kernels at
once, so nothing else touches the engine: requests send Commands through a queue, each with a
concurrent.futures.Future the route awaits. Commands apply between steps (and at once while
paused), all or nothing: a refused command raises ApiError into its future and changes
nothing. The worker publishes what observers read as fresh objects in `published` (request
handlers read them without locks) and as stream events through the Hub.

Start-up order, while the server already answers: the net's spec (its NET view at once),
then the data set (status "loading"), then JIT warm-up ("compiling"), then training.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from server.commands import Handlers
from server.errors import ApiError, not_ready

logger = logging.getLogger("server")

READY = ("training", "paused", "diverged")
# Views of the past (frames and galleries of checkpoints) take at most this share of the
# worker's time while it trains: after a view that took t seconds, the next waits 19 t.
VIEW_SHARE = 0.05
MAX_VIEWS_WAITING = 64


@dataclass
class Published:
    """What request handlers read. The worker replaces values; it never mutates them."""

    status: str = "loading"
    net: dict | None = None
    metrics: dict | None = None
    settings: dict = field(default_factory=dict)
    classes: list = field(default_factory=list)
    image_size: tuple[int, int] = (32, 32)
    data_title: str = "CIFAR-10"
    history: tuple[list, list, list] = ((), (), ())     # points, markers, test results
    frame: dict | None = None
    frame_details: Any = None               # the arrays behind `frame` (server/visuals.py)
    gallery: dict | None = None
    exports: dict | None = None             # server.exports.export_info: before a download
    error: str | None = None
    snapshot_file: str | None = None       # the last snapshot written on exit
    saved_run: Any = None                  # server.snapshot_files.SavedRun /api/state offers
    checkpoints: dict = field(default_factory=dict)   # run id -> described checkpoints
    active_run: str = "r1"
    runs: dict | None = None                # GET /api/runs (server/runs.py)
    run_histories: dict = field(default_factory=dict)  # run id -> history, but the active's


@dataclass
class Command:
    kind: str
    payload: Any
    future: Future


class Worker:
    def __init__(self, settings, hub) -> None:
        self.settings = settings
        self.hub = hub
        self.published = Published()
        self.queue: queue.Queue[Command | None] = queue.Queue()
        self.views: queue.Queue[Command] = queue.Queue(MAX_VIEWS_WAITING)
        self._view_allowed_at = 0.0
        self.thread = threading.Thread(target=self._run, name="convnet-trainer", daemon=True)
        self.handlers = Handlers(self)
        self._stop = threading.Event()
        self.trainer = None

    # --- called from other threads ------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.published.status in READY

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 120.0) -> None:
        """Stop after the current step (saving a snapshot, see Handlers.shut_down). A worker
        still loading data cannot be interrupted: it is a daemon thread, so a short wait."""
        self._stop.set()
        self.queue.put(None)
        if self.thread.is_alive():
            self.thread.join(timeout if self.ready else min(timeout, 5.0))

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def check_ready(self) -> None:
        """ApiError(503) unless the run can take commands."""
        if not self.ready:
            status = self.published.status
            if status in ("loading", "compiling"):
                raise not_ready(status)
            raise ApiError(503, "not_running", f"training is not running (status: {status})"
                           + (f": {self.published.error}" if self.published.error else ""),
                           status=status)

    def submit(self, kind: str, payload: Any = None) -> Future:
        """Queue a command; raises ApiError(503) at once when the run is not ready."""
        self.check_ready()
        future: Future = Future()
        self.queue.put(Command(kind, payload, future))
        if self._stop.is_set():             # stopped meanwhile: nobody will serve it
            self._refuse_pending()
        return future

    def submit_view(self, kind: str, payload: Any = None) -> Future:
        """Queue a view of the past (served within VIEW_SHARE of the worker's time); 503
        when MAX_VIEWS_WAITING are waiting already."""
        self.check_ready()
        future: Future = Future()
        try:
            self.views.put_nowait(Command(kind, payload, future))
        except queue.Full:
            raise ApiError(503, "busy", "too many views of past checkpoints are being made; "
                           "try again in a moment", headers={"Retry-After": "1"}) from None
        if self._stop.is_set():
            self._refuse_pending()
        return future

    # --- the thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.handlers.start_up()
        except Exception as exc:            # no data set, bad snapshot...: say so, keep serving
            logger.exception("start-up failed")
            self.published.error = str(exc)
            self.set_status("error")
            self.log("error", f"the training run could not start: {exc}")
            self._stop.wait()
            self._refuse_pending()
            return
        if self.trainer is None:            # stopped while starting
            self.set_status("stopped")
            return
        try:
            while not self._stop.is_set():
                self._serve_commands(block=not self.handlers.wants_to_train()
                                     and self.views.empty())
                if self._stop.is_set():
                    break
                self._serve_view()
                try:
                    if self.handlers.wants_to_train():
                        self.handlers.train_step()
                    self.handlers.publish_periodic()
                except Exception as exc:    # a bug: keep serving, paused, and say so
                    logger.exception("a training step failed")
                    self.trainer.pause()
                    self.handlers.pause_race()
                    self.set_status("paused")
                    self.log("error", f"training paused: a step failed ({exc})")
        finally:
            self._refuse_pending()
            self.handlers.shut_down()
            self.set_status("stopped")

    def _serve_commands(self, block: bool) -> None:
        try:
            command = self.queue.get(timeout=0.1) if block else self.queue.get_nowait()
        except queue.Empty:
            return
        while command is not None:
            self._apply(command)
            if self._stop.is_set():
                return
            try:
                command = self.queue.get_nowait()
            except queue.Empty:
                return

    def _serve_view(self) -> None:
        """One waiting view of the past, if the worker's share for them allows (always while
        paused: nothing else is waiting then)."""
        if self.views.empty():
            return
        now = time.monotonic()
        if self.handlers.wants_to_train() and now < self._view_allowed_at:
            return
        try:
            command = self.views.get_nowait()
        except queue.Empty:
            return
        self._apply(command)
        spent = time.monotonic() - now
        self._view_allowed_at = time.monotonic() + spent * (1 / VIEW_SHARE - 1)

    def _apply(self, command: Command) -> None:
        if not command.future.set_running_or_notify_cancel():
            return                          # the request went away before its turn
        try:
            result = self.handlers.handle(command.kind, command.payload)
        except ApiError as exc:
            command.future.set_exception(exc)
        except Exception as exc:            # a bug, not bad input: log it, answer 500
            logger.exception("command %s failed", command.kind)
            command.future.set_exception(exc)
        else:
            command.future.set_result(result)

    def _refuse_pending(self) -> None:
        for waiting in (self.queue, self.views):
            while True:
                try:
                    command = waiting.get_nowait()
                except queue.Empty:
                    break
                if command is not None and command.future.set_running_or_notify_cancel():
                    command.future.set_exception(ApiError(503, "stopped",
                                                          "the server is stopping"))

    # --- publishing (worker thread) -----------------------------------------------------
    def set_status(self, status: str) -> None:
        if status != self.published.status:
            self.published.status = status
            self.publish_state()

    def publish_state(self) -> None:
        """The status and the settings: a presenter's tabs follow a change made elsewhere
        from this event instead of refetching /api/state."""
        self.hub.publish("state", {"status": self.published.status,
                                   "settings": self.published.settings})

    def log(self, level: str, text: str) -> None:
        getattr(logger, "error" if level == "error" else
                "warning" if level == "warn" else "info")(text)
        self.hub.publish("log", {"time": time.time(), "level": level, "text": text})
