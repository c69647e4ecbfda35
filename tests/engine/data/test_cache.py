import os

import numpy as np
import pytest

from engine.data import cache


def test_cache_root_prefers_argument_then_env_then_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "env"))
    assert cache.cache_root(tmp_path / "arg") == tmp_path / "arg"
    assert cache.cache_root() == tmp_path / "env"
    monkeypatch.delenv(cache.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "convnet-demo"


def test_atomic_output_replaces_only_on_success(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with cache.atomic_output(target) as f:
            f.write(b"half")
            raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.bin"]     # no temp file left behind
    with cache.atomic_output(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["file.bin"]


def arrays(rng):
    return {"train_images": rng.integers(0, 256, (4, 2, 2, 3), dtype=np.uint8),
            "train_labels": np.arange(4, dtype=np.int64),
            "train_stats": np.zeros((4, 2, 3)),
            "test_images": np.zeros((1, 2, 2, 3), np.uint8),
            "test_labels": np.zeros(1, np.int64)}


def test_entry_round_trip_is_memory_mapped_and_read_only(tmp_path, rng):
    entry = cache.entry_dir(tmp_path, "folder", "ab" * 32, (2, 2))
    assert entry.name == "folder-abababababababab-2x2-v1"
    data = arrays(rng)
    cache.save_entry(entry, data, {"class_names": ["x"]})
    loaded, meta = cache.load_entry(entry)
    assert meta["class_names"] == ["x"] and meta["version"] == cache.CACHE_FORMAT_VERSION
    for name, value in data.items():
        np.testing.assert_array_equal(loaded[name], value)
        assert isinstance(loaded[name], np.memmap) and not loaded[name].flags.writeable


def test_incomplete_or_damaged_entries_are_not_trusted(tmp_path, rng):
    entry = tmp_path / "entry"
    cache.save_entry(entry, arrays(rng), {})
    (entry / "test_labels.npy").write_bytes(b"\x93NUMPY garbage")
    assert cache.load_entry(entry) is None
    cache.save_entry(entry, arrays(rng), {})
    (entry / "meta.json").unlink()                  # a crash before the completion mark
    assert cache.load_entry(entry) is None
    assert cache.load_entry(tmp_path / "missing") is None


def test_npy_with_pickled_objects_is_refused(tmp_path, rng):
    entry = tmp_path / "entry"
    cache.save_entry(entry, arrays(rng), {})
    np.save(entry / "train_labels.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert cache.load_entry(entry) is None


def test_file_checksum_is_memoised_by_size_and_mtime(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    root = tmp_path / "cache"
    sha = cache.file_checksum(path, "sha256", root)
    assert sha == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert cache.file_checksum(path, "md5", root) == "900150983cd24fb0d6963f7d28e17f72"
    memo = (root / "checksums.json").read_text()
    assert sha in memo and "900150983cd24fb0d6963f7d28e17f72" in memo
    path.write_bytes(b"abcd")                       # new size: hashed again
    sha_abcd = cache.file_checksum(path, "sha256", root)
    assert sha_abcd != sha
    stat = path.stat()
    path.write_bytes(b"wxyz")                       # same size and mtime: the memo is trusted
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cache.file_checksum(path, "sha256", root) == sha_abcd
    assert cache.file_checksum(path, "sha256") != sha_abcd   # no memo: hashed afresh
