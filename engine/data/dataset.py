"""A decoded data set: uint8 images, int64 labels, class names, three splits, normalisation.

Layout: images are uint8 (N, H, W, 3) RGB, "NHWC", as decoded and as the page draws them;
`preprocess` turns them into the engine's float32 (N, 3, H, W). Labels are int64 indices into
`class_names` (sorted folder names; for CIFAR-10 that is also the official label order).

The arrays usually are read-only memory maps of the cache, so opening a data set copies
nothing: a split is its parent array plus the indices it owns, and batches gather from the
parent directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data.normalize import Normalization, preprocess


@dataclass(frozen=True)
class SourceInfo:
    kind: str                               # "bundled" | "official" | "folder"
    location: str                           # archive or folder it was read from
    checksum: str                           # "sha256:..." / "md5:..." of the source
    cache_path: Path | None                 # decoded arrays (None: could not cache)
    from_cache: bool                        # this open read the cache (no decoding)
    skipped: tuple[str, ...] = ()           # "file: reason" for images that were unusable


class Split:
    """One split ("train", "validation" or "test"): a view of a parent image array."""

    def __init__(self, name: str, parent_images: np.ndarray, parent_labels: np.ndarray,
                 indices: np.ndarray | None, class_names: tuple[str, ...],
                 normalization: Normalization):
        self.name = name
        self.class_names = class_names
        self.normalization = normalization
        self._parent = parent_images
        self._indices = indices             # None: the whole parent, in order
        labels = parent_labels if indices is None else parent_labels[indices]
        self.labels = np.array(labels, dtype=np.int64)
        self.labels.flags.writeable = False
        self._images = parent_images if indices is None else None

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"Split({self.name!r}, {len(self)} images)"

    @property
    def images(self) -> np.ndarray:
        """uint8 (N, H, W, 3), read-only; a subset is gathered (copied) on first use."""
        if self._images is None:
            images = self._parent[self._indices]
            images.flags.writeable = False
            self._images = images
        return self._images

    def take(self, positions: np.ndarray) -> np.ndarray:
        """uint8 images at these positions of the split (a copy), without copying the rest."""
        positions = np.asarray(positions, dtype=np.int64)
        if self._indices is not None:
            positions = self._indices[positions]
        return self._parent[positions]

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.class_names))

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        return preprocess(images, self.normalization)


@dataclass(frozen=True)
class Dataset:
    source: SourceInfo
    class_names: tuple[str, ...]
    image_size: tuple[int, int]             # (height, width)
    normalization: Normalization            # of the train split
    train: Split
    validation: Split
    test: Split

    def split(self, name: str) -> Split:
        if name not in ("train", "validation", "test"):
            raise ValueError(f"no split {name!r}: use train, validation or test")
        return getattr(self, name)

    def preprocess(self, images) -> np.ndarray:
        """uint8 NHWC / HWC / PIL image -> float32 NCHW, normalised like the training data."""
        return preprocess(images, self.normalization, self.image_size)

    def info(self) -> dict:
        """Everything `convnet-demo data info` shows, JSON-ready."""
        splits = (self.train, self.validation, self.test)
        return {
            "source": self.source.kind,
            "location": self.source.location,
            "checksum": self.source.checksum,
            "cache": str(self.source.cache_path) if self.source.cache_path else None,
            "from_cache": self.source.from_cache,
            "image_size": list(self.image_size),
            "layout": "uint8 (N, H, W, 3) RGB; preprocess -> float32 (N, 3, H, W)",
            "classes": list(self.class_names),
            "counts": {split.name: len(split) for split in splits},
            "counts_per_class": {split.name: split.class_counts().tolist() for split in splits},
            "normalization": self.normalization.to_dict(),
            "skipped": len(self.source.skipped),
            "skipped_examples": list(self.source.skipped[:10]),
        }
