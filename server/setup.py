"""Turning the operator's --net and --snapshot into engine objects (CLI and worker share it).

These values come from the command line, not from requests: a path here is the operator's.
Errors are SetupError with a one-line message.
"""

from __future__ import annotations

from pathlib import Path


class SetupError(ValueError):
    pass


def resolve_net(value: str):
    """A preset name or a JSON spec file -> (NetSpec, preset name or None)."""
    from engine.presets import PRESETS, load_preset
    from engine.spec import SpecError, load_spec_text
    if value in PRESETS:
        try:
            return load_preset(value), value
        except SpecError as exc:
            raise SetupError(f"{value}: {exc}") from None
    path = Path(value)
    if not path.is_file():
        raise SetupError(f"--net {value!r} is neither a preset ({', '.join(PRESETS)}) nor a "
                         f"spec file")
    try:
        return load_spec_text(path.read_bytes()), None
    except OSError as exc:
        raise SetupError(f"cannot read {path}: {exc.strerror or exc}") from None
    except SpecError as exc:
        raise SetupError(f"{path}: {exc}") from None


def resolve_snapshot(value: str):
    """A snapshot file, "pretrained" or "pretrained:NAME" -> Snapshot."""
    from engine.pretrained import resolve_snapshot as resolve
    from engine.snapshot import SnapshotError
    try:
        return resolve(value)
    except SnapshotError as exc:
        raise SetupError(str(exc)) from None
