"""Data sets for the demo: bundled CIFAR-10 (offline), the official archive, image folders.

    dataset = open_source("bundled")          # or "official", or a path; see sources.py
    x, y = next(BatchIterator(dataset.train, 32, rng=0, augment=True))
    # x: float32 (32, 3, 32, 32) normalised; y: int64 (32,)

Images are stored as uint8 (N, H, W, 3) RGB; `preprocess` is the one way to turn them (or a
PIL image, or an upload decoded by `load_image_file`) into the float32 (N, 3, H, W) a net
takes. Bad input raises DataError (a ValueError) with a message that names the file.

May import: nothing."""

from engine.data.augment import (Augmentation, BatchIterator, augment_batch, batches,
                                 make_batch)
from engine.data.dataset import Dataset, SourceInfo, Split
from engine.data.images import NET_IMAGE_SIZE, DataError, load_image_file, to_net_image
from engine.data.normalize import Normalization, preprocess
from engine.data.sources import (CIFAR10_CLASSES, add_data_argument, open_source,
                                 resolve_source, source_title)

__all__ = [
    "Augmentation", "BatchIterator", "CIFAR10_CLASSES", "DataError", "Dataset",
    "NET_IMAGE_SIZE", "Normalization", "SourceInfo", "Split", "add_data_argument",
    "augment_batch", "batches", "load_image_file", "make_batch", "open_source",
    "preprocess", "resolve_source", "source_title", "to_net_image",
]
