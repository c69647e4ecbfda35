"""Training batches: shuffle per epoch, gather, preprocess, augment (flip, shift), seeded.

The default augmentation is ConvNetJS's: a random horizontal flip and a random shift of up to
+-2 pixels, the uncovered border filled with 0 after normalisation (the training mean colour
with the data set's normalisation). Two variants follow airbench94's recipe:
- flip "alternate": each image is mirrored at random (seeded) in epoch 0 and then exactly when
  it was not in the epoch before, so every image is seen both ways every two epochs
  (derandomised flipping: no image goes several epochs one way round by chance);
- shift_fill "reflect": the uncovered border mirrors the image (without repeating the edge
  pixel, as numpy's and torch's "reflect" padding), so a shift adds no flat band.
It runs on a whole batch at once: one fancy-indexing gather picks every image's shifted (and
possibly mirrored) window; no Python loop per image.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from engine.data.dataset import Split
from engine.data.normalize import Normalization, preprocess


FLIP_MODES = (False, True, "alternate")
SHIFT_FILLS = ("zero", "reflect")


@dataclass(frozen=True)
class Augmentation:
    flip: bool | str = True                 # True: mirror left-right with probability 1/2;
                                            # "alternate": see the module's docstring
    shift: int = 2                          # shift by -shift..shift pixels on each axis
    shift_fill: str = "zero"                # the uncovered border: "zero" or "reflect"

    def __post_init__(self) -> None:
        if not any(self.flip is mode for mode in FLIP_MODES[:2]) and self.flip != "alternate":
            raise ValueError(f"flip must be true, false or \"alternate\", got {self.flip!r}")
        if self.shift_fill not in SHIFT_FILLS:
            raise ValueError(f"shift_fill must be one of {SHIFT_FILLS}, got {self.shift_fill!r}")

    @property
    def active(self) -> bool:
        return bool(self.flip) or self.shift > 0


NO_AUGMENTATION = Augmentation(flip=False, shift=0)


def as_augmentation(augment: bool | Augmentation | None) -> Augmentation:
    if isinstance(augment, Augmentation):
        return augment
    return Augmentation() if augment else NO_AUGMENTATION


def augment_batch(x: np.ndarray, rng: np.random.Generator,
                  augmentation: Augmentation = Augmentation(),
                  mirrored: np.ndarray | None = None) -> np.ndarray:
    """float32 (N, C, H, W) -> a new array: each image shifted and maybe mirrored.
    mirrored: (N,) bool, which images to mirror when augmentation.flip is "alternate" (the
    caller knows each image's epoch); a random flip draws its own."""
    n, channels, height, width = x.shape
    s = augmentation.shift
    dy = rng.integers(-s, s + 1, size=n) if s else np.zeros(n, dtype=np.int64)
    dx = rng.integers(-s, s + 1, size=n) if s else np.zeros(n, dtype=np.int64)
    rows = dy[:, None] + np.arange(height)                       # (N, H), -s .. H - 1 + s
    cols = dx[:, None] + np.arange(width)                        # (N, W)
    if augmentation.flip == "alternate":
        if mirrored is None or mirrored.shape != (n,):
            raise ValueError("alternate flipping needs each image's flip state")
        cols = np.where(mirrored[:, None], cols[:, ::-1], cols)
    elif augmentation.flip:
        mirrored = rng.random(n) < 0.5
        cols = np.where(mirrored[:, None], cols[:, ::-1], cols)
    index = (np.arange(n)[:, None, None, None], np.arange(channels)[None, :, None, None])
    if augmentation.shift_fill == "reflect":
        return x[index + (_reflect(rows, height)[:, None, :, None],
                          _reflect(cols, width)[:, None, None, :])]
    padded = np.zeros((n, channels, height + 2 * s, width + 2 * s), dtype=x.dtype)
    padded[:, :, s:s + height, s:s + width] = x
    return padded[index + ((s + rows)[:, None, :, None], (s + cols)[:, None, None, :])]


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
    """Positions outside 0..size-1 mirrored back in about the edge pixels (-1 -> 1,
    size -> size - 2), as often as a shift wider than the image needs."""
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    index = np.mod(index, period)
    return np.where(index >= size, period - index, index)


def alternate_flips(split_size: int, seed: int) -> np.ndarray:
    """(split_size,) bool: which images flip "alternate" mirrors in even epochs (odd epochs
    mirror the others). Drawn from `seed` alone, so a batch iterator remade in mid-run (a new
    batch size, a loaded snapshot) keeps every image's alternation."""
    flip_stream = 0x666C6970          # "flip": a stream of its own, apart from the shuffles
    return np.random.default_rng([seed, flip_stream]).random(split_size) < 0.5


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def make_batch(split: Split, positions: np.ndarray, rng: np.random.Generator | None = None,
               augment: bool | Augmentation = False,
               normalization: Normalization | None = None,
               mirrored: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """float32 (B, 3, H, W) normalised (and augmented) images + int64 (B,) labels.
    `normalization` defaults to the split's own (a loaded net may expect another);
    `mirrored` as augment_batch's (flip "alternate")."""
    x = preprocess(split.take(positions), normalization or split.normalization)
    augmentation = as_augmentation(augment)
    if augmentation.active:
        x = augment_batch(x, _as_rng(rng), augmentation, mirrored)
    return x, split.labels[positions]


def batches(split: Split, batch_size: int, rng: np.random.Generator | int | None = None,
            augment: bool | Augmentation = False, shuffle: bool = True,
            drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of (float32 NCHW, int64 labels) batches; shuffled unless shuffle=False.

    Deterministic for a given seed (or Generator state). The last batch is smaller unless
    drop_last. The order is drawn now; each batch is made when the loop asks for it. One
    epoch alone: flip "alternate" mirrors as in epoch 0 (use BatchIterator across epochs).
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    rng = _as_rng(rng)
    order = rng.permutation(len(split)) if shuffle else np.arange(len(split))
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    augmentation = as_augmentation(augment)
    flips = alternate_flips(len(split), 0) if augmentation.flip == "alternate" else None
    return (make_batch(split, order[start:start + batch_size], rng, augmentation,
                       mirrored=None if flips is None else flips[order[start:start + batch_size]])
            for start in range(0, stop, batch_size))


class BatchIterator:
    """Endless batches across epochs (the trainer pulls one per step); seeded, reshuffled
    at every epoch. `epoch` counts completed passes; `position` is the place in this one.
    flip_seed: draws flip "alternate"'s epoch-0 flips (see alternate_flips); an image then
    flips in epoch e exactly when e's parity says so, whatever batch its turn falls in."""

    def __init__(self, split: Split, batch_size: int,
                 rng: np.random.Generator | int | None = None,
                 augment: bool | Augmentation = False,
                 normalization: Normalization | None = None, *, flip_seed: int = 0):
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
        self._flips = (alternate_flips(len(split), flip_seed)
                       if self.augment.flip == "alternate" else None)

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        """A full batch; one that crosses an epoch's end continues into the next shuffle."""
        parts, mirrored = [], []
        needed = self.batch_size
        while needed:
            taken = self._order[self.position:self.position + needed]
            parts.append(taken)
            if self._flips is not None:   # this part's epoch decides: odd epochs invert
                mirrored.append(self._flips[taken] ^ bool(self.epoch % 2))
            needed -= len(taken)
            self.position += len(taken)
            if self.position == len(self._order):
                self.epoch += 1
                self.position = 0
                self._order = self.rng.permutation(len(self.split))
        positions = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return make_batch(self.split, positions, self.rng, self.augment, self.normalization,
                          np.concatenate(mirrored) if mirrored else None)
