"""Snapshot files the server writes: under names it makes (time and step), never from request
input, atomically (engine.fsutil), and only ever so many: after each save the newest
settings.keep_snapshots server-named files stay and older ones are deleted (a presenter
clicking "save" in a loop, or a script, must not fill the disk). Temporary files of saves a
kill interrupted are deleted at start. Files of other names in the folder are never touched.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

# Names this server gives snapshot files, and the temporary files engine.fsutil writes them
# through (".NAME.RANDOM.tmp"): only such files are ever deleted.
SAVED_NAME = re.compile(r"convnet-\d{8}-\d{6}-step\d+\.json")
TEMP_NAME = re.compile(r"\.convnet-\d{8}-\d{6}-step\d+\.json\.[^/]+\.tmp")
STALE_TEMP_S = 60.0          # a temp file this old is no save in progress (any server's)


def write_snapshot_file(directory, name: str, data: bytes) -> Path:
    """Write under a server-made name; returns the path."""
    from engine.fsutil import atomic_write_bytes
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    atomic_write_bytes(path, data)
    return path.resolve()


def prune_snapshots(directory, keep: int) -> list[str]:
    """Delete all but the newest `keep` server-named snapshot files; their names."""
    saved = sorted((p for p in Path(directory).iterdir() if SAVED_NAME.fullmatch(p.name)),
                   key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
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
