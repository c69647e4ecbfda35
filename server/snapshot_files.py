"""Snapshot files the server writes: under names it makes (time and step), never from request
input, atomically (engine.fsutil), and only ever so many: after each save the newest
settings.keep_snapshots server-named files stay and older ones are deleted (a presenter
clicking "save" in a loop, or a script, must not fill the disk). Temporary files of saves a
kill interrupted are deleted at start. Files of other names in the folder are never touched.

They go to the user's data directory unless `--snapshot-dir` says otherwise, and the newest
of them that holds the net a server starts with is the run it offers to resume (SavedRun).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

# Names this server gives snapshot files, and the temporary files engine.fsutil writes them
# through (".NAME.RANDOM.tmp"): only such files are ever deleted.
SAVED_NAME = re.compile(r"convnet-\d{8}-\d{6}-step\d+\.json")
TEMP_NAME = re.compile(r"\.convnet-\d{8}-\d{6}-step\d+\.json\.[^/]+\.tmp")
STALE_TEMP_S = 60.0          # a temp file this old is no save in progress (any server's)


def default_snapshot_dir() -> Path:
    """XDG_DATA_HOME (else ~/.local/share), then convnet-demo/snapshots."""
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "convnet-demo" / "snapshots"


def write_snapshot_file(directory, name: str, data: bytes) -> Path:
    """Write under a server-made name; returns the path."""
    from engine.fsutil import atomic_write_bytes
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    atomic_write_bytes(path, data)
    return path.resolve()


def saved_files(directory) -> list[Path]:
    """The server-named snapshot files in `directory`, newest first."""
    dated = []
    for path in Path(directory).iterdir():
        if SAVED_NAME.fullmatch(path.name):
            try:
                dated.append((path.stat().st_mtime, path.name, path))
            except FileNotFoundError:     # deleted meanwhile (another server pruned it)
                pass
    return [path for _, _, path in sorted(dated, reverse=True)]


def prune_snapshots(directory, keep: int) -> list[str]:
    """Delete all but the newest `keep` server-named snapshot files; their names."""
    saved = saved_files(directory)
    deleted = []
    for path in saved[keep:]:
        try:
            path.unlink()
            deleted.append(path.name)
        except FileNotFoundError:         # another server sharing the folder was quicker
            pass
    return deleted


def save_snapshot_file(settings, name: str, data: bytes, log=None) -> list[str]:
    """Write a snapshot, then keep only the newest settings.keep_snapshots; says both in the
    log. Returns the names deleted. (A worker or request thread: files only.)"""
    path = write_snapshot_file(settings.snapshot_dir, name, data)
    deleted = prune_snapshots(settings.snapshot_dir, settings.keep_snapshots)
    if log is not None:
        log("info", f"snapshot saved to {path}" + (
            f"; deleted {len(deleted)} older one(s) ({', '.join(deleted)}): the server keeps "
            f"the newest {settings.keep_snapshots}" if deleted else ""))
    return deleted


def remove_stale_temp_files(directory) -> int:
    """Delete the temporary files of saves that never finished (the process was killed);
    a younger one may be another server's save in progress, and stays."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    removed, now = 0, time.time()
    for path in directory.iterdir():
        try:
            if TEMP_NAME.fullmatch(path.name) and now - path.stat().st_mtime > STALE_TEMP_S:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


@dataclass(frozen=True)
class SavedRun:
    """A snapshot file the server saved, as /api/state offers it ("resumable")."""

    path: Path
    step: int
    net: str
    saved_at: str                  # ISO 8601, local time with its offset
    test_acc: float | None

    def offer(self) -> dict[str, Any]:
        return {"file": self.path.name, "step": self.step, "net": self.net,
                "saved_at": self.saved_at, "test_acc": self.test_acc}

    def describe(self) -> str:
        acc = "" if self.test_acc is None else f", test accuracy {100 * self.test_acc:.1f}%"
        return (f"{self.path.name} ({self.net}, step {self.step:,}{acc}, saved "
                f"{self.saved_at.replace('T', ' ')[:16]}) from {self.path.parent}")


def newest_saved_run(directory, spec, net_name: str | None = None) -> SavedRun | None:
    """The newest server-named snapshot in `directory` whose net is `spec` (same layers and
    settings); None when there is none. Reads the files newest first and stops at the first
    of the same net; a file that is no snapshot (or a damaged one) is passed over."""
    from engine.formats.snapshot import SnapshotError, decode_json, read_capped
    from engine.spec.net_spec import SpecError, parse_spec
    if not Path(directory).is_dir():
        return None
    for path in saved_files(directory):
        try:
            doc = decode_json(read_capped(path))
            if not isinstance(doc, dict) or parse_spec(doc.get("spec")) != spec:
                continue
            stamp = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        except (OSError, SnapshotError, SpecError, RecursionError):
            continue
        step = doc.get("step")
        test = (doc.get("metrics") or {}).get("test") if isinstance(doc.get("metrics"),
                                                                     dict) else None
        accuracy = test.get("accuracy") if isinstance(test, dict) else None
        return SavedRun(path=path.resolve(), step=step if type(step) is int else 0,
                        net=net_name or spec.name or "custom",
                        saved_at=stamp.isoformat(timespec="seconds"),
                        test_acc=float(accuracy) if type(accuracy) in (int, float) else None)
    return None


def load_saved_run(run: SavedRun):
    """The Snapshot in a saved run's file, checked in full (engine.formats.snapshot); SnapshotError
    when it cannot be used (changed or damaged since it was offered)."""
    from engine.formats.pretrained import resolve_snapshot
    return resolve_snapshot(str(run.path))
