"""Whole-split evaluation: accuracy, per-class accuracy, confusion matrix; all at once, or a
few batches at a time on a frozen copy of the net (the trainer's periodic test runs).

Test-time augmentation (`tta`) averages the net's output (the loss layer's: probabilities for
softmax) over several views of each image, as airbench94 does:
- "none": the image alone;
- "flip": the image and its mirror image, 1/2 each;
- "flip_translate": the image and its mirror 1/4 each, and the image moved one pixel down-right
  and one pixel up-left (the uncovered row and column reflect the image), each with its
  mirror, 1/8 each.
Every view is a forward pass of the same batch shape in the same workspace, so the buffers
stay one set however long a run evaluates; the cost is 1, 2 or 6 passes per image.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.layers.base import Context, Workspace

TTA_MODES = ("none", "flip", "flip_translate")


def _views(x: np.ndarray, tta: str):
    """(weight, view) pairs of a float (N, C, H, W) batch for test-time augmentation `tta`
    ("flip" or "flip_translate"); the views are made one at a time, as the loop asks."""
    mirror = 0.25 if tta == "flip_translate" else 0.5
    yield mirror, x
    yield mirror, np.ascontiguousarray(x[..., ::-1])
    if tta == "flip_translate":
        height, width = x.shape[2:]
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
        for top, left in ((0, 0), (2, 2)):      # moved down-right, then up-left
            moved = np.ascontiguousarray(padded[:, :, top:top + height, left:left + width])
            yield 0.125, moved
            yield 0.125, np.ascontiguousarray(moved[..., ::-1])


def predict_tta(net, x: np.ndarray, ctx: Context, tta: str = "none") -> np.ndarray:
    """The net's evaluation output for batch x averaged over the views of `tta` (a new array,
    or the workspace's own output for "none": copy it if it must outlive the next pass)."""
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
    if tta == "none":
        return net.predict(x, ctx)
    total = None
    for weight, view in _views(x, tta):
        out = net.predict(view, ctx)
        if total is None:
            total = weight * out.reshape(len(x), -1)   # a new array: out is overwritten next
        else:
            total += weight * out.reshape(len(x), -1)
    return total


class Evaluation:
    """Accuracy, per-class accuracy and the confusion matrix of `net` on a data split, taken
    a few batches at a time: the server's worker interleaves it with training steps and
    requests instead of going silent for the whole test set. Runs in evaluation mode in its
    own workspace, so training buffers are untouched; the caller must not change the net's
    weights until it is done (the trainer hands it a frozen copy).

    The loss it reports (softmax nets only) is the training loss's definition on the split:
    it INCLUDES the softmax layer's label smoothing, as PyTorch's test loss does when its
    CrossEntropyLoss carries label_smoothing, so training and test loss compare like for
    like (with smoothing eps, even a perfect net's loss stays above 0)."""

    def __init__(self, net, split, normalization, *, batch_size: int = 250,
                 limit: int | None = None, workspace: Workspace | None = None,
                 tta: str = "none") -> None:
        if tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
        self.net, self.split, self.normalization = net, split, normalization
        self.batch_size = batch_size
        self.tta = tta
        self.ctx = Context(training=False, workspace=workspace or Workspace())
        self.images = len(split) if limit is None else min(limit, len(split))
        k = len(split.class_names)
        self.confusion = np.zeros((k, k), dtype=np.int64)
        self.total_loss = 0.0
        self.position = 0

    @property
    def done(self) -> bool:
        return self.position >= self.images

    def advance(self, images: int | None = None) -> bool:
        """Evaluate about `images` more (whole batches; all that is left when None).
        Returns True once the whole split is done."""
        from engine.data.normalize import preprocess

        end = self.images if images is None else min(self.images, self.position + images)
        while self.position < end:
            positions = np.arange(self.position, min(end, self.position + self.batch_size))
            self.position = int(positions[-1]) + 1
            x = preprocess(self.split.take(positions), self.normalization).astype(
                self.net.dtype, copy=False)
            # A diverging net gives NaN: count it (argmax says class 0), do not warn about it.
            with np.errstate(all="ignore"):
                out = predict_tta(self.net, x, self.ctx, self.tta).reshape(len(positions), -1)
                labels = self.split.labels[positions]
                np.add.at(self.confusion, (labels, np.argmax(out, axis=1)), 1)
                if self.net.loss_layer.type == "softmax":
                    # One image at a time, in float64: the same sum however it is chunked.
                    for loss in self._losses(out, labels).tolist():
                        self.total_loss += loss
        return self.done

    def _losses(self, probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Per-image softmax loss in float64, as training defines it: with the loss layer's
        label smoothing eps, -(1 - eps) log p[label] - eps / K sum_k log p_k (probabilities
        floored at 1e-30, so a confident mistake costs about 69, not infinity)."""
        log_p = -np.log(np.maximum(probs, 1e-30).astype(np.float64))
        loss = log_p[np.arange(len(labels)), labels]
        eps = self.net.loss_layer.label_smoothing
        if eps:
            loss = (1.0 - eps) * loss + eps / probs.shape[1] * log_p.sum(axis=1)
        return loss

    def result(self) -> dict[str, Any]:
        n, confusion = self.position, self.confusion
        mean_loss = self.total_loss / max(n, 1)
        per_class_total = confusion.sum(axis=1)
        per_class = np.where(per_class_total > 0,
                             np.diag(confusion) / np.maximum(per_class_total, 1), np.nan)
        softmax = self.net.loss_layer.type == "softmax"
        return {
            "split": self.split.name,
            "images": int(n),
            "tta": self.tta,
            "accuracy": float(np.trace(confusion) / max(n, 1)),
            "loss": mean_loss if softmax and math.isfinite(mean_loss) else None,
            "per_class": {name: (None if np.isnan(a) else float(a))
                          for name, a in zip(self.split.class_names, per_class)},
            "confusion": confusion.tolist(),
            "classes": list(self.split.class_names),
        }


def evaluate(net, split, normalization, *, batch_size: int = 250, limit: int | None = None,
             workspace: Workspace | None = None, tta: str = "none") -> dict[str, Any]:
    """The whole `Evaluation` at once."""
    evaluation = Evaluation(net, split, normalization, batch_size=batch_size, limit=limit,
                            workspace=workspace, tta=tta)
    evaluation.advance()
    return evaluation.result()


class PeriodicTest:
    """The trainer's periodic whole-test-set evaluation, spread over the following steps
    (`chunk` images per step; 0: all at once). It evaluates a frozen copy of the weights
    taken when it starts, so the steps that run meanwhile do not blur the result.

    One frozen net is kept and reused while the spec and dtype stay the same (the weights are
    copied into it), so the workspace keeps one set of buffers however many tests run; a new
    net replaces the frozen one, and the old one's buffers go with it (see Workspace)."""

    def __init__(self) -> None:
        self.workspace = Workspace()
        self._frozen = None                                        # engine.net.Net
        self._pending: tuple[Evaluation, int, int] | None = None   # evaluation, step, examples

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def start(self, net, split, normalization, step: int, examples: int, *,
              batch_size: int = 250, tta: str = "none") -> bool:
        """Begin one, unless one is running (then the new one is skipped: False). `tta`
        holds for this evaluation: a change while it runs applies to the next."""
        if self._pending is not None:
            return False
        frozen = self._frozen
        if frozen is None or frozen.dtype != net.dtype or frozen.spec != net.spec:
            from engine.net import Net
            self._frozen = None     # drop the old copy (and its buffers) before the new one
            frozen = Net(net.spec, dtype=net.dtype)
            self._frozen = frozen
        frozen.copy_weights_from(net)
        evaluation = Evaluation(frozen, split, normalization, batch_size=batch_size,
                                workspace=self.workspace, tta=tta)
        self._pending = (evaluation, step, examples)
        return True

    def advance(self, chunk: int) -> dict[str, Any] | None:
        """Evaluate the next chunk; the result (with the step and examples it started at)
        once the split is done."""
        evaluation, step, examples = self._pending
        if not evaluation.advance(chunk or None):
            return None
        self._pending = None
        result = evaluation.result()
        result.update(step=step, examples=examples)
        return result

    def cancel(self) -> None:
        """Drop a running one (the net was replaced), the frozen copy and its buffers."""
        self._pending = None
        self._frozen = None
        self.workspace.clear()
