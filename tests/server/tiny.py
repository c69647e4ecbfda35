"""A tiny data set and net so server tests run in seconds: 2 classes of 8x8 images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.data.dataset import Dataset, SourceInfo, Split
from engine.data.normalize import Normalization, channel_stats

CLASSES = ("dark", "light")
SIZE = (8, 8)
TINY_SPEC = [
    {"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 3},
    {"type": "conv", "sx": 3, "filters": 4, "stride": 1, "pad": 1, "activation": "relu"},
    {"type": "pool", "sx": 2, "stride": 2},
    {"type": "softmax", "num_classes": 2},
]


def tiny_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Half dark, half light noisy images: easy to learn, so a few steps change the loss."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count, dtype=np.int64) % 2
    base = np.where(labels[:, None, None, None] == 1, 170, 70)
    noise = rng.integers(-40, 40, size=(count, *SIZE, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8), labels


def tiny_dataset(train: int = 40, test: int = 10) -> Dataset:
    train_images, train_labels = tiny_images(train, 0)
    test_images, test_labels = tiny_images(test, 1)
    norm = Normalization.from_stats(channel_stats(train_images), SIZE[0] * SIZE[1])
    held_out = np.arange(train) % 10 == 9
    info = SourceInfo("folder", "tests/server/tiny", "sha256:tiny", None, False)

    def split(name, images, labels, indices=None):
        return Split(name, images, labels, indices, CLASSES, norm)

    return Dataset(source=info, class_names=CLASSES, image_size=SIZE, normalization=norm,
                   train=split("train", train_images, train_labels, np.flatnonzero(~held_out)),
                   validation=split("validation", train_images, train_labels,
                                    np.flatnonzero(held_out)),
                   test=split("test", test_images, test_labels))


def write_spec(directory: Path, spec=None) -> Path:
    path = Path(directory) / "tiny_net.json"
    path.write_text(json.dumps(spec or TINY_SPEC))
    return path


# A net and an image folder for `convnet-demo serve` run as a program (it reads --data from
# disk, not a Dataset object): 32x32 PNGs of the tiny images, scaled up.
FOLDER_SPEC = [{"type": "input", "out_sx": 32, "out_sy": 32, "out_depth": 3},
               {"type": "conv", "sx": 4, "filters": 2, "stride": 2, "pad": 1,
                "activation": "relu"},
               {"type": "pool", "sx": 4, "stride": 4},
               {"type": "softmax", "num_classes": 2}]


def tiny_image_folder(root: Path) -> Path:
    """train/<class>/ and test/<class>/ folders of 32x32 PNGs under root; returns root."""
    from PIL import Image
    for split, count, seed in (("train", 20, 0), ("test", 6, 1)):
        images, labels = tiny_images(count, seed)
        for k, (image, label) in enumerate(zip(images, labels)):
            folder = Path(root) / split / CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.repeat(np.repeat(image, 4, 0), 4, 1)).save(folder / f"{k}.png")
    return Path(root)
