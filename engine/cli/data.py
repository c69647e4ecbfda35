"""`convnet-demo data info|verify [--data bundled|official|PATH]`: the data set, and is it intact.

`dataset_from_args` is how every command that takes --data (train, serve, ...) opens it.
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.cli import CliError
from engine.data import DataError, Dataset, add_data_argument, open_source
from engine.data.splits import parse_validation
from engine.data.verify import verify_source


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="show or verify the data set",
        description="Show what --data names (counts, normalisation, cache) or verify it.")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True
    info = actions.add_parser("info", help="source, counts per class and split, mean/std, "
                                           "cache location and checksum")
    add_data_argument(info)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=run_info)
    verify = actions.add_parser("verify", help="check the checksum and counts and decode "
                                               "every image afresh; exit 1 on a problem")
    add_data_argument(verify)
    verify.set_defaults(func=run_verify)


def _status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def dataset_from_args(args: argparse.Namespace, **options) -> Dataset:
    """Open the data set named by --data/--validation; bad input becomes a CliError."""
    try:
        validation = parse_validation(getattr(args, "validation", None))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        return open_source(args.data, validation=validation, log=_status, **options)
    except DataError as exc:
        raise CliError(str(exc)) from None


def run_info(args: argparse.Namespace) -> int:
    dataset = dataset_from_args(args)
    info = dataset.info()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    cache = info["cache"] or "(not cached)"
    height, width = info["image_size"]
    print(f"source:     {info['source']} ({info['location']})")
    print(f"checksum:   {info['checksum']}")
    print(f"cache:      {cache}{' (read from cache)' if info['from_cache'] else ''}")
    print(f"images:     {height}x{width} RGB, stored uint8 (N, H, W, 3); the net gets "
          f"float32 (N, 3, H, W)")
    splits = ("train", "validation", "test")
    width_name = max(len(name) for name in [*info["classes"], "total"])
    print(f"\n{'class':<{width_name}} " + " ".join(f"{s:>10}" for s in splits))
    for index, name in enumerate(info["classes"]):
        counts = (info["counts_per_class"][s][index] for s in splits)
        print(f"{name:<{width_name}} " + " ".join(f"{c:>10,}" for c in counts))
    print(f"{'total':<{width_name}} " + " ".join(f"{info['counts'][s]:>10,}" for s in splits))
    norm = info["normalization"]
    print(f"\nmean (RGB): {' '.join(f'{m:.2f}' for m in norm['mean'])}  (pixel units, "
          f"training split)")
    print(f"std (RGB):  {' '.join(f'{s:.2f}' for s in norm['std'])}")
    if info["skipped"]:
        print(f"skipped:    {info['skipped']} unusable images, e.g.")
        for entry in info["skipped_examples"]:
            print(f"  {entry}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    _status(f"verifying {args.data}: decoding every image...")
    dataset, problems = verify_source(args.data, log=_status)
    if problems:
        for problem in problems[:20]:
            print(f"convnet-demo data verify: {problem}", file=sys.stderr)
        if len(problems) > 20:
            print(f"... and {len(problems) - 20} more", file=sys.stderr)
        print(f"verify failed: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    total = len(dataset.train) + len(dataset.test)
    print(f"ok: {dataset.source.kind} ({dataset.source.location}), {dataset.source.checksum}, "
          f"{total:,} images decoded, {len(dataset.class_names)} classes")
    return 0
