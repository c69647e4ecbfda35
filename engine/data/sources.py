"""Choosing and opening a data set: `--data bundled|official|PATH`, decoded once, then cached.

    bundled    CIFAR-10 as JPEGs inside the package (the default; works offline)
    official   cifar-10-python.tar.gz, from the cache or downloaded into it once
    PATH       a copy of the official archive (.tar.gz or extracted cifar-10-batches-py/),
               or an image folder / .tar(.gz) / .zip with train/<class>/ and test/<class>/

(A folder literally named "bundled" or "official" is given as ./bundled.)
The decoded arrays are cached under the source's checksum, so every start after the first
only memory-maps them.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from engine.data import cache, folders, official
from engine.data.dataset import Dataset, SourceInfo, Split
from engine.data.download import Progress, StderrProgress
from engine.data.images import NET_IMAGE_SIZE, DataError, to_net_image
from engine.data.normalize import Normalization, channel_stats
from engine.data.splits import parse_validation, validation_mask

BUNDLED_ARCHIVE = Path(__file__).parent / "bundled" / "cifar10-jpeg.tar.gz"
BUNDLED_SHA256 = "45b041e867f5a40f79bfde38d3dd1fd511103d50068c1afecf6445e25234d4db"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
CIFAR10_COUNTS = {"train": 5000, "test": 1000}   # images per class
DATA_HELP = ("bundled (default: CIFAR-10 shipped with the package, offline), official (the "
             "original cifar-10-python.tar.gz, downloaded once into the cache), or a PATH: "
             "a local copy of that archive or its cifar-10-batches-py/ folder, or your own "
             "images as a folder, .tar.gz or .zip holding train/<class>/ and test/<class>/")

logger = logging.getLogger("engine.data")


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """Add --data and --validation, as every command that reads a data set has them."""
    parser.add_argument("--data", default="bundled", metavar="bundled|official|PATH",
                        help=DATA_HELP)
    parser.add_argument("--validation", default="10", metavar="K|FRACTION",
                        help="training images held out for validation, per class: every "
                             "K-th (default 10, as ConvNetJS), a fraction like 0.2, or 0")


@dataclass(frozen=True)
class ResolvedSource:
    kind: str                               # "bundled" | "official" | "folder"
    location: Path
    algorithm: str                          # of the checksum: "sha256" | "md5"
    checksum: str                           # hex
    read: Callable[[tuple[int, int]], dict]  # size -> arrays (see folders.read_image_folder)

    @property
    def label(self) -> str:
        return f"{self.algorithm}:{self.checksum}"


def source_title(value: str | Path | None, kind: str | None = None) -> str:
    """What a person calls the data set `--data value` names, for a log line or a page: never
    the path of a file inside the installed package. kind: the ResolvedSource's, when known
    (a path can hold the official archive)."""
    value = "bundled" if value is None else value
    if value == "bundled" or kind == "bundled":
        return "CIFAR-10 (bundled)"
    if value == "official":
        return "CIFAR-10 (the official archive)"
    name = Path(value).expanduser().name or str(value)
    return f"CIFAR-10 ({name})" if kind == "official" else name


def resolve_source(value: str | Path | None = "bundled", *, cache_dir=None,
                   archive: official.OfficialArchive = official.OFFICIAL,
                   allow_download: bool = True, progress: Progress | None = None,
                   workers: int | None = None) -> ResolvedSource:
    """What `value` names, verified by checksum (downloading the official archive if asked)."""
    root = cache.cache_root(cache_dir)
    value = "bundled" if value is None else value
    if value == "bundled":
        checksum = cache.file_checksum(BUNDLED_ARCHIVE, "sha256")
        if checksum != BUNDLED_SHA256:
            raise DataError(f"{BUNDLED_ARCHIVE}: the bundled data set is damaged (sha256 "
                            f"{checksum}, expected {BUNDLED_SHA256}); reinstall the package")
        return ResolvedSource("bundled", BUNDLED_ARCHIVE, "sha256", checksum,
                              lambda size: folders.read_image_folder(BUNDLED_ARCHIVE, size,
                                                                     workers))
    if value == "official":
        if progress is None:
            progress = StderrProgress(f"downloading {official.ARCHIVE_NAME}")
        path = official.fetch_archive(root, archive, allow_download=allow_download,
                                      progress=progress)
    else:
        path = Path(value).expanduser()
        if not path.exists():
            raise DataError(f"{value}: no such file or folder; --data takes bundled, official, "
                            f"or the path of a {official.ARCHIVE_NAME} (or its "
                            f"{official.BATCHES_DIR}/ folder), or of an image folder, .tar.gz "
                            f"or .zip with train/<class>/ and test/<class>/")
    try:
        return _resolve_path(path.resolve(), root, archive, workers)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _resolve_path(path: Path, root: Path, archive, workers) -> ResolvedSource:
    batches = official.batches_dir(path) if path.is_dir() else None
    if batches is not None:
        digest = hashlib.sha256()
        for name in (*official.TRAIN_BATCHES, official.TEST_BATCH, official.META_FILE):
            if (batches / name).is_file():
                digest.update(cache.file_checksum(batches / name, "sha256", root).encode())
        return ResolvedSource("official", batches, "sha256", digest.hexdigest(),
                              lambda size: _official_at_size(batches, size))
    if path.is_file() and official.is_official_archive(path):
        md5 = official.verify_archive(path, archive, root)
        return ResolvedSource("official", path, "md5", md5,
                              lambda size: _official_at_size(path, size))
    if path.is_dir():
        checksum = folders.folder_fingerprint(path)
    else:
        checksum = cache.file_checksum(path, "sha256", root)
    return ResolvedSource("folder", path, "sha256", checksum,
                          lambda size: folders.read_image_folder(path, size, workers))


def _official_at_size(path: Path, size: tuple[int, int]) -> dict:
    arrays = official.read_official(path)
    if size != (32, 32):
        for split in ("train", "test"):
            arrays[f"{split}_images"] = np.stack([to_net_image(Image.fromarray(image), size)
                                                  for image in arrays[f"{split}_images"]])
    return arrays


def open_source(value: str | Path | None = "bundled", *, cache_dir=None,
                image_size: tuple[int, int] = NET_IMAGE_SIZE,
                validation: str | int | float | Fraction | None = None,
                use_cache: bool = True, allow_download: bool = True,
                archive: official.OfficialArchive = official.OFFICIAL,
                progress: Progress | None = None, workers: int | None = None,
                log: Callable[[str], None] | None = None) -> Dataset:
    """Open a data set (see the module docstring for `value`); DataError on bad input.

    use_cache=False decodes from the source and neither reads nor writes the cache.
    `log` gets one-line status messages (default: the "engine.data" logger).
    """
    log = log or logger.info
    fraction = parse_validation(validation)
    source = resolve_source(value, cache_dir=cache_dir, archive=archive,
                            allow_download=allow_download, progress=progress, workers=workers)
    size = tuple(int(s) for s in image_size)
    entry = cache.entry_dir(cache.cache_root(cache_dir), source.kind, source.checksum, size)
    loaded = cache.load_entry(entry) if use_cache else None
    if loaded is not None and _consistent(*loaded, size):
        arrays, meta = loaded
        info = SourceInfo(source.kind, str(source.location), source.label, entry, True,
                          tuple(meta["skipped"]))
        return _build(arrays, tuple(meta["class_names"]), size, info, fraction)
    log(f"decoding {source_title(value, source.kind)}: the first use only, later starts read "
        "the cache")
    arrays = source.read(size)
    arrays["train_stats"] = channel_stats(arrays["train_images"])
    meta = {"kind": source.kind, "location": str(source.location), "checksum": source.label,
            "image_size": list(size), "class_names": list(arrays["class_names"]),
            "skipped": list(arrays.get("skipped", []))}
    cache_path = None
    if use_cache:
        try:
            cache.save_entry(entry, arrays, meta)
            cache_path = entry
        except OSError as exc:
            log(f"cannot cache the decoded images in {entry} ({exc}); "
                f"they will be decoded again at the next start")
    info = SourceInfo(source.kind, str(source.location), source.label, cache_path, False,
                      tuple(meta["skipped"]))
    return _build(arrays, tuple(meta["class_names"]), size, info, fraction)


def _consistent(arrays: dict, meta: dict, size: tuple[int, int]) -> bool:
    """A cache entry that does not add up is decoded again rather than trusted."""
    try:
        classes = len(meta["class_names"])
        checks = [meta["image_size"] == list(size), isinstance(meta["skipped"], list)]
        for split in ("train", "test"):
            images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
            checks += [images.dtype == np.uint8, images.shape[1:] == (*size, 3),
                       labels.dtype == np.int64, labels.shape == (len(images),),
                       len(labels) > 0 and 0 <= labels.min() and labels.max() < classes]
        stats = arrays["train_stats"]
        checks.append(stats.shape == (len(arrays["train_images"]), 2, 3))
        return all(checks)
    except (KeyError, TypeError, ValueError):
        return False


def _build(arrays: dict, class_names: tuple[str, ...], size: tuple[int, int],
           info: SourceInfo, fraction: Fraction) -> Dataset:
    train_labels = np.asarray(arrays["train_labels"])
    held_out = validation_mask(train_labels, fraction)
    train_indices = np.flatnonzero(~held_out)
    if len(train_indices) == 0:
        raise DataError(f"{info.location}: the validation split leaves no training images")
    normalization = Normalization.from_stats(np.asarray(arrays["train_stats"])[train_indices],
                                             size[0] * size[1])

    def split(name, images, labels, indices=None):
        return Split(name, images, labels, indices, class_names, normalization)

    images = arrays["train_images"]
    return Dataset(
        source=info, class_names=class_names, image_size=size, normalization=normalization,
        train=split("train", images, train_labels,
                    None if len(train_indices) == len(train_labels) else train_indices),
        validation=split("validation", images, train_labels, np.flatnonzero(held_out)),
        test=split("test", arrays["test_images"], np.asarray(arrays["test_labels"])))
