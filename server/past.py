"""Looking back at a run: its checkpoints (engine/train/checkpoints.py), taken as it trains,
and frames and galleries of any of them.

Runs in the worker thread only (it calls the engine's kernels), on a net of its own with its
own workspace and gradients: training's weights, buffers and random state are never touched,
and the Inspector's live frames keep their buffers. The worker serves these views from their
own queue within a share of its time (worker.py, VIEW_SHARE), so a room scrubbing back and
forth cannot slow training by more than that.

What it publishes: `published.checkpoints`, {run id: (each checkpoint's describe(), ...)},
replaced (never changed) at most every `history_every_s` while a run takes, thins or scores
them (GET /api/checkpoints reads it; a page asks when its scrubber is used).
"""

from __future__ import annotations

import time
from typing import Any

from engine.layers.base import Context, Workspace
from engine.train.checkpoints import Checkpoint, Checkpoints, nearest_step

MiB = 1024 * 1024


class Past:
    def __init__(self, worker, max_bytes: int) -> None:
        self.w = worker
        self.checkpoints = Checkpoints(max_bytes)
        self._net = None
        self._workspace = Workspace()
        self._grads = None
        self._dirty = False
        self._published_at = -float("inf")

    # --- taking (after every step) ----------------------------------------------------------
    def after_step(self, run: str, trainer, result: dict[str, Any]) -> None:
        tested = bool(result.get("test_started"))
        if tested or self.checkpoints.due(run, trainer.step_count):
            self.take(run, trainer, tested)
        if "test" in result:
            test = result["test"]
            self._dirty |= self.checkpoints.add_test(run, test["step"], test)

    def take(self, run: str, trainer, tested: bool = False) -> Checkpoint:
        checkpoint = self.checkpoints.take(run, trainer, tested)
        self._dirty = True
        return checkpoint

    def restart(self, run: str, trainer) -> None:
        """The run's net or weights were replaced (a reset, a new net, a loaded snapshot):
        its checkpoints are of another net; the first of the new ones is taken now."""
        self.checkpoints.clear(run)
        self.take(run, trainer)
        self.publish()

    def forget(self, run: str) -> None:
        self.checkpoints.clear(run)
        self.publish()

    # --- publishing -------------------------------------------------------------------------
    def publish_if_due(self, every_s: float) -> None:
        if self._dirty and time.monotonic() - self._published_at >= every_s:
            self.publish()

    def publish(self) -> None:
        c = self.checkpoints
        self.w.published.checkpoints = {run: tuple(k.describe() for k in c.list(run))
                                        for run in c.runs()}
        self._dirty = False
        self._published_at = time.monotonic()

    # --- views of a checkpoint (worker commands) --------------------------------------------
    def _context(self, checkpoint: Checkpoint, dtype) -> tuple[Any, Context]:
        from engine.net import Net
        net = self._net
        if net is None or net.spec != checkpoint.spec or net.dtype != dtype:
            self._net = None
            self._workspace.clear()
            net = self._net = Net(checkpoint.spec, dtype=dtype)
            self._grads = net.new_grads()
        checkpoint.load_into(net)
        return net, Context(training=False, workspace=self._workspace)

    def view(self, trainer, inspector, kind: str, checkpoint: Checkpoint,
             position: int | None) -> dict[str, Any]:
        """kind "frame": {"details": FrameDetails, "example": {...}} (the route draws it);
        kind "gallery": the gallery as GET /api/gallery gives it."""
        net, ctx = self._context(checkpoint, trainer.net.dtype)
        if kind == "gallery":
            return inspector.gallery_of(trainer, net, ctx, checkpoint.step, checkpoint.test)
        details, example = inspector.frame_of(trainer, net, ctx, self._grads, checkpoint.step,
                                              int(position))
        return {"details": details, "example": example}

    def drop_net(self) -> None:
        """Free the view net and its buffers (the run's net changed)."""
        self._net = None
        self._grads = None
        self._workspace.clear()


def checkpoint_answer(kept: tuple[dict, ...], step: int) -> dict[str, Any]:
    """The described checkpoint nearest to `step` (ties: the earlier), from a published list
    (in step order), as Checkpoints.nearest finds it among the checkpoints themselves."""
    return nearest_step(kept, step, lambda c: c["step"])


def example_position(pinned: int | None, inspector_positions: list[int]) -> int:
    """The test image a past frame shows when the request names none: the one the presenter
    pinned, else always the same one (the first of the live frames' images), so scrubbing
    changes the weights, not the picture, and a room scrubbing asks for the same few views
    (the live frame's own image changes every frame)."""
    if pinned is not None:
        return int(pinned)
    return int(inspector_positions[0]) if inspector_positions else 0
