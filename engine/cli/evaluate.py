"""`convnet-demo evaluate`: accuracy, per-class accuracy and confusion matrix of a snapshot."""

from __future__ import annotations

import argparse
import json

from engine.cli import CliError
from engine.cli.common import add_threads_argument, set_threads
from engine.cli.data import dataset_from_args
from engine.data import add_data_argument


def add_snapshot_argument(parser) -> None:
    parser.add_argument("--snapshot", default="pretrained",
                        help="a snapshot file (ours or a ConvNetJS Net.toJSON() file), "
                             "'pretrained' or 'pretrained:NAME' (default: pretrained)")


def load_snapshot_arg(value: str):
    from engine.pretrained import resolve_snapshot
    from engine.snapshot import SnapshotError
    try:
        snapshot = resolve_snapshot(value)
    except SnapshotError as exc:
        raise CliError(str(exc)) from None
    if snapshot.spec.input_shape[0] != 3:
        raise CliError(f"{value}: the net takes {snapshot.spec.input_shape[0]}-channel input; "
                       "images here are RGB, so only 3-channel nets can read them")
    return snapshot


def class_names(snapshot) -> list[str]:
    """The snapshot's class names, or 0..K-1 when it has none."""
    return snapshot.classes or [str(k) for k in range(snapshot.spec.num_outputs)]


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="test-set accuracy of a snapshot",
                              description="Accuracy, per-class accuracy and confusion matrix.")
    add_snapshot_argument(p)
    add_data_argument(p)
    p.add_argument("--split", choices=["test", "validation", "train"], default="test")
    p.add_argument("--limit", type=int, help="evaluate only the first N images")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_threads_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.data import Normalization
    from engine.evaluation import evaluate

    set_threads(args.threads)
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be at least 1")
    snapshot = load_snapshot_arg(args.snapshot)
    if snapshot.spec.loss_type == "regression":
        raise CliError("this net ends in a regression layer: evaluate scores classifiers")
    # At the net's own input size (the cache keeps one decoded copy per size).
    dataset = dataset_from_args(args, image_size=tuple(snapshot.spec.input_shape[1:]))
    net = snapshot.build_net()
    if tuple(net.input_shape) != (3,) + tuple(dataset.image_size):
        raise CliError(f"the snapshot's net takes {net.input_shape} inputs; the data set has "
                       f"{dataset.image_size} RGB images")
    if snapshot.spec.num_classes != len(dataset.class_names):
        raise CliError(f"the snapshot has {snapshot.spec.num_classes} classes, the data set "
                       f"{len(dataset.class_names)}")
    placeholder = [str(k) for k in range(len(dataset.class_names))]
    if snapshot.classes not in ([], placeholder, list(dataset.class_names)):
        # The net's k-th output means the snapshot's k-th class: scoring it against another
        # list would print a meaningless accuracy.
        raise CliError(f"the snapshot's classes ({', '.join(snapshot.classes)}) are not the "
                       f"data set's ({', '.join(dataset.class_names)})")
    split = dataset.split(args.split)
    if len(split) == 0:
        raise CliError(f"the {args.split} split of this data set is empty"
                       + (" (see --validation)" if args.split == "validation" else ""))
    result = evaluate(net, split, Normalization.from_dict(snapshot.preprocess), limit=args.limit)
    if args.json:
        print(json.dumps(result))
        return 0
    classes = result["classes"]
    print(f"{args.split} accuracy: {100 * result['accuracy']:.2f}% on {result['images']:,} images")
    width = max(len(c) for c in classes)
    print("\nper class:")
    for name in classes:
        acc = result["per_class"][name]
        print(f"  {name:<{width}}  {'-' if acc is None else f'{100 * acc:.1f}%'}")
    print("\nconfusion matrix (rows: true class, columns: predicted):")
    print(" " * (width + 2) + " ".join(f"{c[:5]:>5}" for c in classes))
    for name, row in zip(classes, result["confusion"]):
        print(f"  {name:<{width}}" + " ".join(f"{v:>5}" for v in row))
    return 0
