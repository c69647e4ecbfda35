"""Options and helpers shared by several subcommands."""

from __future__ import annotations

from engine.cli import CliError


def add_threads_argument(parser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for the engine's parallel kernels (default: measured "
                             "while it runs, all cores against one: when another program keeps "
                             "a core busy, one thread can be many times faster)")


def thread_tuner(threads: int | None, **options):
    """The shared ThreadTuner (engine/threads.py) for --threads: that count alone when given,
    else measured. A bad count is a CliError."""
    from engine.threads import ThreadTuner
    try:
        return ThreadTuner.for_machine(threads, **options)
    except ValueError as exc:
        raise CliError(f"--threads: {exc}") from None


def open_spec(value: str):
    """A preset name or a JSON spec file -> (NetSpec, preset name or None)."""
    from engine.presets import NetSourceError, open_net
    try:
        return open_net(value)
    except NetSourceError as exc:
        raise CliError(str(exc)) from None


class StatusLine:
    """A progress line on stderr: redrawn in place on a terminal (at most every 0.2 s), a new
    line every `piped_every_s` when stderr is a file or a pipe."""

    def __init__(self, piped_every_s: float = 10.0) -> None:
        import sys
        self.stream = sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = 0.2 if self.tty else piped_every_s
        self.last = -float("inf")
        self.dirty = False

    def due(self) -> bool:
        """Whether a line would be shown now (then build it and call show)."""
        import time
        return time.monotonic() - self.last >= self.every_s

    def show(self, line: str) -> None:
        import time
        self.last = time.monotonic()
        if self.tty:
            self.stream.write("\r" + line.ljust(100)[:130])
            self.dirty = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def newline(self) -> None:
        if self.dirty:
            self.stream.write("\n")
            self.dirty = False
