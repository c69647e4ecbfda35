"""What the worker shows of a run: the NET view, frames, the gallery, classified uploads.

Everything here runs in the worker thread (it calls the engine's parallel kernels) and in
evaluation mode, in the Inspector's OWN Workspace and gradient arrays: training's buffers,
gradients, batch-norm statistics and random state are never touched. Results are fresh
JSON-ready dicts that are never changed after they are returned (published as they are).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.calculator import summarize
from engine.data.normalize import preprocess
from engine.layers.base import Context, Workspace
from server.visuals import FrameDetails, image_b64, layer_visuals, saliency_b64

MAX_CACHED_PNGS = 512        # the gallery's and frames' images, and pinned ones


def net_view(spec, name: str | None = None) -> dict[str, Any]:
    summary = summarize(spec)
    return {"name": name or spec.name or "custom", "spec": spec.to_json(), "summary": summary,
            "params": summary["params"]}


def score_gradient(net, caches, k: int, grads, ctx) -> tuple[np.ndarray, list]:
    """d (class k's score) / d (the input) of a one-image forward pass, and every layer's
    output gradient: the backward pass from a one-hot at the layer below the loss (the score
    before softmax, so a confident class does not flatten it). Parameter gradients are
    added into grads; ctx must ask for the input's gradient (the default)."""
    scores = (1,) + tuple(net.layers[-2].out_shape)
    one_hot = np.zeros(scores, dtype=net.dtype)
    one_hot.reshape(-1)[k] = 1
    return net.backward_from(one_hot, caches, grads, ctx, keep_grads=True)


def top_k(probs: np.ndarray, classes, k: int = 3) -> list[dict[str, Any]]:
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"label": classes[j], "p": float(probs[j])} for j in order]


def first_of_each_class(labels: np.ndarray, classes: int, per_class: int) -> list[int]:
    """Positions of the first `per_class` examples of every class, class by class."""
    picked = []
    for k in range(classes):
        picked.extend(int(i) for i in np.flatnonzero(labels == k)[:per_class])
    return picked


class Inspector:
    """Evaluation-mode passes for pictures and uploads, separate from training's state."""

    def __init__(self, dataset, gallery_per_class: int = 4) -> None:
        self.dataset = dataset
        self.classes = list(dataset.class_names)
        test = dataset.test
        self.gallery_positions = first_of_each_class(test.labels, len(self.classes),
                                                     gallery_per_class)
        self.frame_positions = first_of_each_class(test.labels, len(self.classes), 1)
        self._frame_turn = 0
        self.pinned: int | None = None      # a test image the presenter chose, else cycle
        self._pngs: dict[int, str] = {}
        self._net = None
        self.workspace = Workspace()
        self.grads = None
        self.details: FrameDetails | None = None   # the latest frame's arrays

    def _context_for(self, net) -> Context:
        if net is not self._net:            # a new net: drop the old one's buffers
            self._net = net
            self.workspace.clear()
            self.grads = net.new_grads()
        return Context(training=False, workspace=self.workspace)

    def _png(self, position: int) -> str:
        """A test image as PNG; kept, since the same few return every frame and gallery (a
        presenter pinning image after image could otherwise keep the whole test set)."""
        png = self._pngs.get(position)
        if png is None:
            if len(self._pngs) >= MAX_CACHED_PNGS:
                self._pngs.clear()
            png = self._pngs[position] = image_b64(
                self.dataset.test.take(np.array([position]))[0])
        return png

    def inputs(self, trainer, images: np.ndarray, net=None) -> np.ndarray:
        net = net or trainer.net
        return preprocess(images, trainer.normalization).astype(net.dtype, copy=False)

    # --- frames ---------------------------------------------------------------------------
    def frame(self, trainer) -> dict[str, Any]:
        """Forward and backward (with the true label) of one test image: the pinned one, or
        one image per class in turn from frame to frame."""
        if self.pinned is not None:
            position = self.pinned
        else:
            position = self.frame_positions[self._frame_turn % len(self.frame_positions)]
            self._frame_turn += 1
        net = trainer.net
        self.details, example = self.frame_of(trainer, net, self._context_for(net),
                                              self.grads, trainer.step_count, position,
                                              previous=self.details)
        return {"step": trainer.step_count, "pinned": self.pinned is not None,
                "example": example, "layers": self.details.visuals()}

    def frame_of(self, trainer, net, ctx, grads, step: int, position: int,
                 previous: FrameDetails | None = None) -> tuple[FrameDetails, dict]:
        """The arrays of a frame of `net` (training's, or a checkpoint's in its own context
        and grads) on test image `position`, and the frame's example entry."""
        label = int(self.dataset.test.labels[position])
        x = self.inputs(trainer, self.dataset.test.take(np.array([position])), net)
        out, caches, outputs = net.forward(x, ctx)
        acts = [o[:1].copy() for o in outputs]   # the backward pass may reuse buffers
        probs = out.reshape(-1).astype(np.float64)
        net.zero_grads(grads)
        with np.errstate(all="ignore"):
            _, _, output_grads = net.backward(out, caches, np.array([label]), grads, ctx,
                                              keep_grads=True)
        # copies of the arrays behind this frame, for the routes that show its details
        details = FrameDetails.capture(step, net, acts, output_grads, grads, self.classes,
                                       previous=previous)
        return details, {"index": position, "label": self.classes[label],
                         "image": self._png(position), "top": top_k(probs, self.classes)}

    # --- gallery --------------------------------------------------------------------------
    def gallery(self, trainer) -> dict[str, Any]:
        return self.gallery_of(trainer, trainer.net, self._context_for(trainer.net),
                               trainer.step_count, trainer.last_test)

    def gallery_of(self, trainer, net, ctx, step: int, test: dict | None) -> dict[str, Any]:
        positions = np.array(self.gallery_positions, dtype=np.int64)
        items = []
        if len(positions):
            x = self.inputs(trainer, self.dataset.test.take(positions), net)
            out = net.predict(x, ctx)
            probs = out.reshape(len(positions), -1).astype(np.float64)
            labels = self.dataset.test.labels[positions]
            for row, position, label in zip(probs, positions, labels):
                top = top_k(row, self.classes)
                items.append({"index": int(position), "label": self.classes[int(label)],
                              "image": self._png(int(position)), "top": top,
                              "correct": top[0]["label"] == self.classes[int(label)]})
        return {"step": step, "items": items,
                "test": None if test is None else {
                    "accuracy": test["accuracy"], "per_class": test["per_class"],
                    "confusion": test["confusion"], "classes": test["classes"],
                    "step": test["step"]}}

    def predict_test(self, trainer, positions: list[int]) -> np.ndarray:
        """The net's class probabilities (float64, (len(positions), classes)) for test
        images, in evaluation mode in this Inspector's own buffers."""
        index = np.asarray(positions, dtype=np.int64)
        x = self.inputs(trainer, self.dataset.test.take(index))
        out = trainer.net.predict(x, self._context_for(trainer.net))
        return out.reshape(len(index), -1).astype(np.float64)

    # --- uploads --------------------------------------------------------------------------
    def classify(self, trainer, image: np.ndarray, top: int = 3) -> dict[str, Any]:
        """image: uint8 (H, W, 3) at the net's input size. Top-k, all probabilities, layer
        pictures, and a saliency map: |d (top class score) / d input|, where the score is the
        pre-softmax output (the backward pass starts below the loss layer with a one-hot)."""
        net = trainer.net
        ctx = self._context_for(net)
        x = self.inputs(trainer, image[None])
        out, caches, outputs = net.forward(x, ctx)
        acts = [o[:1].copy() for o in outputs]
        probs = out.reshape(-1).astype(np.float64)
        best = int(np.argmax(probs))
        net.zero_grads(self.grads)
        with np.errstate(all="ignore"):
            dx, output_grads = score_gradient(net, caches, best, self.grads, ctx)
        return {"top": top_k(probs, self.classes, top),
                "probs": {c: float(p) for c, p in zip(self.classes, probs)},
                "input": image_b64(image),
                "layers": layer_visuals(net, acts, output_grads, self.grads,
                                        classes=self.classes),
                "saliency": saliency_b64(np.asarray(dx)[0])}

    # --- start-up -------------------------------------------------------------------------
    def warm_up(self, trainer) -> None:
        """Compile every kernel a step and these views use, on a batch of 2, without touching
        the run: own workspace and grads, batch-norm statistics put back afterwards."""
        net = trainer.net
        images = self.dataset.train.take(np.arange(min(2, len(self.dataset.train))))
        x = self.inputs(trainer, images)
        y = self.dataset.train.labels[:len(images)]
        saved = [(arr, arr.copy()) for _, arr in net.named_buffers()]
        ctx = Context(training=True, workspace=Workspace(),
                      rng=np.random.default_rng(0))
        grads = net.new_grads()
        with np.errstate(all="ignore"):
            net.loss_and_grads(x, y, grads, ctx)
        for arr, copy in saved:
            np.copyto(arr, copy)
        self.frame(trainer)
        self._frame_turn = 0
        self.classify(trainer, images[0])
