"""`convnet-demo data verify`: is this source what it should be, image by image?

The checksum is checked when the source is resolved; then every image is decoded afresh
(the cache is neither read nor written) and the counts compared with CIFAR-10's, for the
bundled and official sets, or checked for skipped images, for a folder.
"""

from __future__ import annotations

from engine.data.dataset import Dataset
from engine.data.images import DataError
from engine.data.sources import CIFAR10_CLASSES, CIFAR10_COUNTS, open_source


def verify_source(value, **open_options) -> tuple[Dataset | None, list[str]]:
    """(the freshly decoded data set, or None if it failed to open; the problems found)."""
    try:
        dataset = open_source(value, use_cache=False, validation=0, **open_options)
    except DataError as exc:
        return None, [str(exc)]
    problems = [f"unusable image: {entry}" for entry in dataset.source.skipped]
    if dataset.source.kind in ("bundled", "official"):
        if dataset.class_names != CIFAR10_CLASSES:
            problems.append(f"classes are {', '.join(dataset.class_names)}, expected "
                            f"{', '.join(CIFAR10_CLASSES)}")
        for split in (dataset.train, dataset.test):
            expected = CIFAR10_COUNTS[split.name]
            counts = split.class_counts()
            wrong = [f"{name} {count}" for name, count in zip(dataset.class_names, counts)
                     if count != expected]
            if wrong:
                problems.append(f"{split.name}: expected {expected} images per class, found "
                                f"{', '.join(wrong)}")
    return dataset, problems
