"""A few real CIFAR-10 test images, read straight from the bundled archive (no cache, no
decoding of the other 59,800): the interop tests compare engines on real pictures, whose
activations look like a trained net's inputs, not like noise."""

from __future__ import annotations

import functools
import io
import re
import tarfile

import numpy as np
from PIL import Image

from engine.data.sources import BUNDLED_ARCHIVE, CIFAR10_CLASSES

_TEST_IMAGE = re.compile(r"test/([a-z]+)/(\d+)\.jpg$")


@functools.lru_cache(maxsize=2)
def cifar_test_images(per_class: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (10 * per_class, 32, 32, 3), int64 labels): the first `per_class` test images
    of each class by file name, class by class. Reading through the archive takes ~5 s."""
    found: dict[tuple[int, int], np.ndarray] = {}
    with tarfile.open(BUNDLED_ARCHIVE) as archive:
        for member in archive:
            match = _TEST_IMAGE.search(member.name)
            if not match or int(match[2]) >= per_class:
                continue
            data = archive.extractfile(member).read()
            with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
            found[(CIFAR10_CLASSES.index(match[1]), int(match[2]))] = pixels
    keys = sorted(found)
    assert len(keys) == 10 * per_class, f"the bundled archive gave {len(keys)} test images"
    return (np.stack([found[k] for k in keys]),
            np.array([label for label, _ in keys], dtype=np.int64))
