"""The official CIFAR-10 release, cifar-10-python.tar.gz (lossless, 163 MB): find or fetch it,
verify it, read its batches.

    cifar-10-batches-py/data_batch_1 .. data_batch_5   10,000 training images each
    cifar-10-batches-py/test_batch                     10,000 test images
    cifar-10-batches-py/batches.meta                   label names

Each batch is a Python pickle of {b"data": uint8 (10000, 3072) as R, G, B planes of 32x32,
b"labels": [int]}. Unpickling can run arbitrary code, and this is the one place in the project
that unpickles at all, because the release exists only in that form: `_ArraysOnlyUnpickler`
refuses every global except the three numpy needs to rebuild an array (and a scalar), so a
forged archive can at worst fail to load.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data.cache import file_checksum
from engine.data.download import DEFAULT_TIMEOUT_S, DownloadError, Progress, download_file
from engine.data.images import DataError

ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCHES_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
MAX_BATCH_BYTES = 64 * 1024 * 1024          # a real batch is 31 MB


@dataclass(frozen=True)
class OfficialArchive:
    """Where the official archive comes from; tests point it at a local server."""
    url: str = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    md5: str = "c58f30108f718f92721af3b95e74349a"
    timeout: float = DEFAULT_TIMEOUT_S


OFFICIAL = OfficialArchive()


def batches_dir(path: Path) -> Path | None:
    """The extracted batches folder at or directly under path, or None."""
    for candidate in (path, path / BATCHES_DIR):
        if (candidate / META_FILE).is_file() and (candidate / TEST_BATCH).is_file():
            return candidate
    return None


def is_official_archive(path: Path) -> bool:
    """By name, or by a first member inside cifar-10-batches-py/ (a renamed copy)."""
    if path.name == ARCHIVE_NAME:
        return True
    try:
        with tarfile.open(path, "r|*") as tar:
            member = tar.next()
            return member is not None and member.name.split("/")[0] == BATCHES_DIR
    except (tarfile.TarError, OSError, EOFError):
        return False


def verify_archive(path: Path, archive: OfficialArchive, cache: Path | None) -> str:
    """The archive's md5 (memoised in the cache), or DataError if it is not the release."""
    md5 = file_checksum(path, "md5", cache)
    if md5 != archive.md5:
        raise DataError(f"{path}: md5 is {md5}, expected {archive.md5} (the official "
                        f"{ARCHIVE_NAME}); the file is damaged or incomplete: delete it and "
                        f"download again, or use the bundled copy (--data bundled)")
    return md5


def fetch_archive(cache: Path, archive: OfficialArchive, *, allow_download: bool = True,
                  progress: Progress | None = None) -> Path:
    """The archive in the cache's downloads folder, downloaded once if missing."""
    target = cache / "downloads" / ARCHIVE_NAME
    if target.is_file():
        return target
    help_text = (f"with no network, use the bundled copy (--data bundled, the default), point "
                 f"--data at a local {ARCHIVE_NAME} or its extracted {BATCHES_DIR}/ folder, "
                 f"or put the archive at {target}")
    if not allow_download:
        raise DataError(f"the official CIFAR-10 archive is not in {target.parent}; {help_text}")
    try:
        return download_file(archive.url, target, archive.md5, timeout=archive.timeout,
                             progress=progress)
    except DownloadError as exc:
        raise DownloadError(f"cannot download the official CIFAR-10 archive: {exc}; "
                            f"{help_text}") from None


def read_official(path: Path) -> dict:
    """Read a .tar.gz or an extracted folder -> {train_images, train_labels, test_images,
    test_labels: uint8 (N, 32, 32, 3) / int64 (N,), class_names}."""
    wanted = set(TRAIN_BATCHES) | {TEST_BATCH, META_FILE}
    found: dict[str, object] = {}
    if path.is_dir():
        for name in wanted:
            file = path / name
            if file.is_file():
                found[name] = _unpickle(file.read_bytes(), str(file))
    else:
        try:
            with tarfile.open(path, "r|*") as tar:
                for member in tar:
                    name = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and name in wanted and member.size <= MAX_BATCH_BYTES:
                        found[name] = _unpickle(tar.extractfile(member).read(),
                                                f"{path}:{member.name}")
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"{path}: archive is damaged or truncated ({exc})") from None
    missing = sorted(wanted - set(found))
    if missing:
        raise DataError(f"{path}: not a complete CIFAR-10 python release: missing "
                        f"{', '.join(missing)}")
    class_names = _label_names(found[META_FILE], f"{path}:{META_FILE}")
    train = [_batch_arrays(found[name], f"{path}:{name}", len(class_names))
             for name in TRAIN_BATCHES]
    test_images, test_labels = _batch_arrays(found[TEST_BATCH], f"{path}:{TEST_BATCH}",
                                             len(class_names))
    return {"train_images": np.concatenate([images for images, _ in train]),
            "train_labels": np.concatenate([labels for _, labels in train]),
            "test_images": test_images, "test_labels": test_labels,
            "class_names": class_names}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(1))[0],
        ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(1))[0],
        ("numpy.core.multiarray", "scalar"): np.int64(0).__reduce__()[0],
        ("numpy._core.multiarray", "scalar"): np.int64(0).__reduce__()[0],
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def _unpickle(data: bytes, where: str):
    try:
        # encoding="bytes": the release was pickled by Python 2; its str keys become bytes.
        return _ArraysOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # a damaged pickle raises anything from EOFError to TypeError
        raise DataError(f"{where}: not a CIFAR-10 batch ({exc})") from None


def _field(batch, key: str, where: str):
    if isinstance(batch, dict):
        for candidate in (key.encode(), key):
            if candidate in batch:
                return batch[candidate]
    raise DataError(f"{where}: not a CIFAR-10 batch (no {key!r})")


def _label_names(meta, where: str) -> tuple[str, ...]:
    names = _field(meta, "label_names", where)
    if not isinstance(names, list) or not names:
        raise DataError(f"{where}: label_names is not a list of names")
    return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)
                 for n in names)


def _batch_arrays(batch, where: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    data = _field(batch, "data", where)
    labels = np.asarray(_field(batch, "labels", where))
    if labels.size == 0:
        labels = labels.astype(np.int64)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3 * 32 * 32):
        raise DataError(f"{where}: data is not uint8 (N, 3072)")
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu" \
            or (len(labels) and (labels.min() < 0 or labels.max() >= num_classes)):
        raise DataError(f"{where}: labels are not {len(data)} integers below {num_classes}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # planes -> (N, H, W, 3)
    return np.ascontiguousarray(images), labels.astype(np.int64)
