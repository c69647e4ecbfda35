"""Atomic writes: temp file beside the target, fsync, rename, fsync the directory."""

import os
import stat

import pytest

from engine import fsutil
from engine.fsutil import atomic_write_bytes


@pytest.fixture
def umask():
    def set_umask(value):
        old = os.umask(value)
        restore.append(old)
    restore = []
    yield set_umask
    for old in reversed(restore):
        os.umask(old)


def test_writes_replaces_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_bare_file_name_writes_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    atomic_write_bytes("b.json", b"x")
    assert (tmp_path / "b.json").read_bytes() == b"x"


def test_the_data_is_synced_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.dirname(src) == str(tmp_path)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write_bytes(tmp_path / "c.json", b"data")
    # file fsync, then rename from a temp file in the same directory, then directory fsync
    assert events == [("fsync", False), ("replace", True), ("fsync", True)]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch):
    path = tmp_path / "d.json"
    path.write_bytes(b"old")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]


def test_missing_directory_raises_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "no" / "e.json", b"x")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)],
                         ids=["umask-022", "umask-077", "umask-002"])
def test_a_new_file_gets_the_usual_permissions_not_mkstemps_0600(tmp_path, umask, mask, mode):
    umask(mask)
    path = tmp_path / "f.json"
    atomic_write_bytes(path, b"x")
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert fsutil._umask() == mask


def test_a_replaced_file_keeps_its_permissions(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "g.json"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write_bytes(path, b"new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_bytes() == b"new"


def test_a_given_mode_wins_even_over_a_wider_file_it_replaces(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "secret"
    path.write_bytes(b"old")
    path.chmod(0o644)
    atomic_write_bytes(path, b"token", mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == b"token"
