"""`convnet-demo bench`: with --data, data loading times; otherwise the engine benchmark."""

from __future__ import annotations

import argparse

from engine.cli import CliError
from engine.data import DataError


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="measure speed (engine, or --data loading)")
    parser.add_argument("--data", action="store_true",
                        help="time opening the data set, from scratch and from the cache")
    parser.add_argument("--source", default="bundled", metavar="bundled|official|PATH",
                        help="the data set --data times (default: bundled)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    from engine.bench.compare import add_arguments  # engine options: --net, --batch, --threads, ...
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.data:
        from engine.data.bench import run_data_bench
        try:
            return run_data_bench(args)
        except DataError as exc:
            raise CliError(str(exc)) from None
    from engine.bench.compare import BenchError
    from engine.bench.compare import run as run_engine_bench
    try:
        return run_engine_bench(args)
    except BenchError as exc:
        raise CliError(str(exc)) from None
