"""Options and helpers shared by several subcommands."""

from __future__ import annotations

from pathlib import Path

from engine.cli import CliError


def add_threads_argument(parser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for the engine's parallel kernels (default: all cores)")


def set_threads(threads: int | None) -> None:
    import numba
    if threads is None:
        return
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= threads <= limit:
        raise CliError(f"--threads must be between 1 and {limit} (the cores Numba sees)")
    numba.set_num_threads(threads)


def open_spec(value: str):
    """A preset name or a JSON spec file -> (NetSpec, preset name or None)."""
    from engine.presets import PRESETS, load_preset
    from engine.spec import SpecError, load_spec_text
    if value in PRESETS:
        try:
            return load_preset(value), value
        except SpecError as exc:
            raise CliError(f"{value}: {exc}") from None
    path = Path(value)
    if not path.exists():
        raise CliError(f"{value!r} is neither a preset ({', '.join(PRESETS)}) nor a file")
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return load_spec_text(text), None
    except SpecError as exc:
        raise CliError(f"{path}: {exc}") from None
