"""The cache directory: downloads, checksums and decoded arrays, written so a crash never
leaves a torn file that a later start would trust.

    $CONVNET_DEMO_CACHE (or $XDG_CACHE_HOME/convnet-demo, or ~/.cache/convnet-demo)
      downloads/cifar-10-python.tar.gz       the official archive, once verified
      checksums.json                         {path: {size, mtime_ns, md5|sha256}} memo
      arrays/<kind>-<checksum>-<H>x<W>-v1/   one decoded source:
        train_images.npy  train_labels.npy  train_stats.npy  test_images.npy  test_labels.npy
        meta.json                            written last: its presence marks a complete entry

Arrays are plain .npy files, loaded with allow_pickle=False (and memory-mapped), so reading
the cache can never run code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

CACHE_ENV = "CONVNET_DEMO_CACHE"
CACHE_FORMAT_VERSION = 1                    # bump when decoding changes the arrays it makes
ARRAY_NAMES = ("train_images", "train_labels", "train_stats", "test_images", "test_labels")


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: the argument, else $CONVNET_DEMO_CACHE, else the XDG cache."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "convnet-demo"


@contextlib.contextmanager
def atomic_output(path: Path):
    """Open a temp file beside `path` for writing; on success fsync, rename over it, fsync dir.

    A streaming twin of engine.fsutil.atomic_write_bytes: the arrays are written by np.save
    without first being copied into one bytes object.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def entry_dir(root: Path, kind: str, checksum: str, size: tuple[int, int]) -> Path:
    return root / "arrays" / f"{kind}-{checksum[:16]}-{size[0]}x{size[1]}-v{CACHE_FORMAT_VERSION}"


def save_entry(directory: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write every array of ARRAY_NAMES atomically, then meta.json (the completion mark)."""
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (directory / "meta.json").unlink()  # an entry being rewritten is incomplete meanwhile
    for name in ARRAY_NAMES:
        with atomic_output(directory / f"{name}.npy") as f:
            np.save(f, np.ascontiguousarray(arrays[name]), allow_pickle=False)
    meta = dict(meta, version=CACHE_FORMAT_VERSION)
    with atomic_output(directory / "meta.json") as f:
        f.write(json.dumps(meta, indent=1).encode())


def load_entry(directory: Path) -> tuple[dict[str, np.ndarray], dict] | None:
    """The arrays (read-only memory maps) and meta of a complete entry, or None."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("version") != CACHE_FORMAT_VERSION:
            return None
        arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                  for name in ARRAY_NAMES}
    except (OSError, ValueError):
        return None                         # missing, torn or foreign: decode again
    return arrays, meta


def file_checksum(path: Path, algorithm: str, root: Path | None = None) -> str:
    """Hex digest of a file, remembered in root/checksums.json by (path, size, mtime)."""
    path = Path(path).resolve()
    stat = path.stat()
    memo_path = root / "checksums.json" if root is not None else None
    memo = _read_memo(memo_path)
    entry = memo.get(str(path), {})
    if (entry.get("size"), entry.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns) \
            and algorithm in entry:
        return entry[algorithm]
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    if memo_path is not None:
        if (entry.get("size"), entry.get("mtime_ns")) != (stat.st_size, stat.st_mtime_ns):
            entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        memo[str(path)] = dict(entry, **{algorithm: digest.hexdigest()})
        with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash
            root.mkdir(parents=True, exist_ok=True)
            with atomic_output(memo_path) as f:
                f.write(json.dumps(memo, indent=1).encode())
    return digest.hexdigest()


def _read_memo(memo_path: Path | None) -> dict:
    if memo_path is None:
        return {}
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}
