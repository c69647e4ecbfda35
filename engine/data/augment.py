"""Training batches: shuffle per epoch, gather, preprocess, augment (flip, shift), seeded.

Augmentation is ConvNetJS's: a random horizontal flip and a random shift of up to +-2 pixels,
the uncovered border filled with 0 after normalisation, i.e. with the training mean colour.
It runs on a whole batch at once: one fancy-indexing gather from a zero-padded copy picks
every image's shifted (and possibly mirrored) window; no Python loop per image.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from engine.data.dataset import Split
from engine.data.normalize import Normalization, preprocess


@dataclass(frozen=True)
class Augmentation:
    flip: bool = True                       # mirror left-right with probability 1/2
    shift: int = 2                          # shift by -shift..shift pixels on each axis

    @property
    def active(self) -> bool:
        return self.flip or self.shift > 0


NO_AUGMENTATION = Augmentation(flip=False, shift=0)


def as_augmentation(augment: bool | Augmentation | None) -> Augmentation:
    if isinstance(augment, Augmentation):
        return augment
    return Augmentation() if augment else NO_AUGMENTATION


def augment_batch(x: np.ndarray, rng: np.random.Generator,
                  augmentation: Augmentation = Augmentation()) -> np.ndarray:
    """float32 (N, C, H, W) -> a new array: each image shifted and maybe mirrored."""
    n, channels, height, width = x.shape
    s = augmentation.shift
    dy = rng.integers(-s, s + 1, size=n) if s else np.zeros(n, dtype=np.int64)
    dx = rng.integers(-s, s + 1, size=n) if s else np.zeros(n, dtype=np.int64)
    rows = s + dy[:, None] + np.arange(height)                   # (N, H) into the padding
    cols = s + dx[:, None] + np.arange(width)                    # (N, W)
    if augmentation.flip:
        mirrored = rng.random(n) < 0.5
        cols = np.where(mirrored[:, None], cols[:, ::-1], cols)
    padded = np.zeros((n, channels, height + 2 * s, width + 2 * s), dtype=x.dtype)
    padded[:, :, s:s + height, s:s + width] = x
    return padded[np.arange(n)[:, None, None, None], np.arange(channels)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def make_batch(split: Split, positions: np.ndarray, rng: np.random.Generator | None = None,
               augment: bool | Augmentation = False,
               normalization: Normalization | None = None) -> tuple[np.ndarray, np.ndarray]:
    """float32 (B, 3, H, W) normalised (and augmented) images + int64 (B,) labels.
    `normalization` defaults to the split's own (a loaded net may expect another)."""
    x = preprocess(split.take(positions), normalization or split.normalization)
    augmentation = as_augmentation(augment)
    if augmentation.active:
        x = augment_batch(x, _as_rng(rng), augmentation)
    return x, split.labels[positions]


def batches(split: Split, batch_size: int, rng: np.random.Generator | int | None = None,
            augment: bool | Augmentation = False, shuffle: bool = True,
            drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of (float32 NCHW, int64 labels) batches; shuffled unless shuffle=False.

    Deterministic for a given seed (or Generator state). The last batch is smaller unless
    drop_last. The order is drawn now; each batch is made when the loop asks for it.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    rng = _as_rng(rng)
    order = rng.permutation(len(split)) if shuffle else np.arange(len(split))
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    return (make_batch(split, order[start:start + batch_size], rng, augment)
            for start in range(0, stop, batch_size))


class BatchIterator:
    """Endless batches across epochs (the trainer pulls one per step); seeded, reshuffled
    at every epoch. `epoch` counts completed passes; `position` is the place in this one."""

    def __init__(self, split: Split, batch_size: int,
                 rng: np.random.Generator | int | None = None,
                 augment: bool | Augmentation = False,
                 normalization: Normalization | None = None):
        if len(split) == 0:
            raise ValueError(f"the {split.name} split is empty")
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        self.split = split
        self.batch_size = batch_size
        self.augment = as_augmentation(augment)
        self.normalization = normalization
        self.rng = _as_rng(rng)
        self.epoch = 0
        self.position = 0
        self._order = self.rng.permutation(len(split))

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        """A full batch; one that crosses an epoch's end continues into the next shuffle."""
        parts = []
        needed = self.batch_size
        while needed:
            taken = self._order[self.position:self.position + needed]
            parts.append(taken)
            needed -= len(taken)
            self.position += len(taken)
            if self.position == len(self._order):
                self.epoch += 1
                self.position = 0
                self._order = self.rng.permutation(len(self.split))
        positions = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return make_batch(self.split, positions, self.rng, self.augment, self.normalization)
