"""`convnet-demo` command line: one module per subcommand, each with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

from engine.cli import CliError

# Subcommand modules under engine.cli; each defines register(subparsers) which adds its parser
# and sets `func` (args -> exit code). Imported lazily so `--help` stays fast.
SUBCOMMANDS = ["summary", "data", "bench", "train", "evaluate", "classify", "export", "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convnet-demo",
        description="Train and explain convolutional networks on CIFAR-10, live.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"engine.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"engine.cli.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"convnet-demo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run as a script this module is __main__; go through engine.cli.main so that there is
    # one module object (and one set of subcommand modules) whichever way it was started.
    from engine.cli.main import main as _main
    sys.exit(_main())
