"""Tiny data sets the tests build themselves: image folders (as folders, tar.gz, zip) and
archives in the official CIFAR-10 python layout."""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("cat", "dog", "frog")


def solid_image(label: int, index: int, size=(32, 32)) -> Image.Image:
    """An RGB image whose colour encodes (label, index), so tests can check where it went."""
    return Image.new("RGB", size, (40 + 60 * label, 10 + index, 200))


def make_image_folder(root: Path, classes=CLASSES, train_per_class: int = 4,
                      test_per_class: int = 2, size=(32, 32), prefix: str = "") -> Path:
    """root/[prefix/]{train,test}/<class>/<i>.png; returns the data set's top folder."""
    top = root / prefix if prefix else root
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for label, name in enumerate(classes):
            folder = top / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                solid_image(label, index, size).save(folder / f"{index:03d}.png")
    return top


def tar_folder(folder: Path, archive: Path, arcname: str = "") -> Path:
    with tarfile.open(archive, "w:gz" if archive.name.endswith(".gz") else "w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(Path(arcname) / path.relative_to(folder)),
                    recursive=False)
    return archive


def zip_folder(folder: Path, archive: Path, arcname: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, str(Path(arcname) / path.relative_to(folder)))
    return archive


OFFICIAL_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                    "dog", "frog", "horse", "ship", "truck")


def official_batch(rng: np.random.Generator, count: int) -> tuple[np.ndarray, list[int]]:
    """uint8 (count, 3072) in the release's plane order, and labels 0..9 cycling."""
    images = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
    data = images.transpose(0, 3, 1, 2).reshape(count, 3072).copy()
    return data, [i % 10 for i in range(count)]


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 str opcodes, as the release's pickles have them (a Python 3
    protocol-2 pickle would instead call _codecs.encode, which the loader refuses)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def python2_pickle(obj) -> bytes:
    """A pickle shaped like the release's: py2 strings, numpy.core.multiarray globals."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def official_files(per_batch: int = 20, seed: int = 0) -> tuple[dict[str, bytes], dict]:
    """The 7 pickles of a tiny release ({name: bytes}) and the images (N, 32, 32, 3) in it."""
    rng = np.random.default_rng(seed)
    files, expected = {}, {"train_images": [], "train_labels": []}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data, labels = official_batch(rng, per_batch)
        # Keys as bytes, as the Python 2 pickles read with encoding="bytes" give them.
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [b"x.png"] * per_batch}
        files[name] = python2_pickle(batch)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        if name == "test_batch":
            expected["test_images"], expected["test_labels"] = images, np.array(labels)
        else:
            expected["train_images"].append(images)
            expected["train_labels"].append(np.array(labels))
    expected["train_images"] = np.concatenate(expected["train_images"])
    expected["train_labels"] = np.concatenate(expected["train_labels"])
    meta = {b"label_names": [n.encode() for n in OFFICIAL_CLASSES], b"num_cases_per_batch": 20}
    files["batches.meta"] = python2_pickle(meta)
    return files, expected


def write_official_archive(path: Path, files: dict[str, bytes]) -> str:
    """Write cifar-10-batches-py/<files> as a .tar.gz; returns its md5."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_official_dir(path: Path, files: dict[str, bytes]) -> Path:
    folder = path / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder
