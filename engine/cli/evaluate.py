"""`convnet-demo evaluate`: accuracy, per-class accuracy and confusion matrix of a snapshot."""

from __future__ import annotations

import argparse
import json
import sys
import time

from engine.cli import CliError
from engine.cli.common import StatusLine, add_threads_argument, thread_tuner
from engine.cli.data import dataset_from_args
from engine.data import add_data_argument


def add_snapshot_argument(parser) -> None:
    parser.add_argument("--snapshot", default="pretrained",
                        help="a snapshot file (ours or a ConvNetJS Net.toJSON() file), "
                             "'pretrained' or 'pretrained:NAME' (default: pretrained)")


def load_snapshot_arg(value: str):
    from engine.formats.pretrained import resolve_snapshot
    from engine.formats.snapshot import SnapshotError
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
    p.add_argument("--tta", choices=["none", "flip", "flip_translate"], default="none",
                   help="test-time augmentation: average the net's output over the image and "
                        "its mirror (flip, 2 passes), and also both moved one pixel each way "
                        "diagonally (flip_translate, 6 passes); default none")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_threads_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.data import Normalization

    # Short trials: a whole evaluation takes seconds. The first batch compiles: not timed.
    tuner = thread_tuner(args.threads, skip_first=1, trial_s=0.5)
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
    result = evaluate_with_progress(net, split, Normalization.from_dict(snapshot.preprocess),
                                    args.limit, tuner, args.tta)
    if args.json:
        print(json.dumps(result))
        return 0
    classes = result["classes"]
    tta = "" if args.tta == "none" else f" (test-time augmentation: {args.tta})"
    print(f"{args.split} accuracy: {100 * result['accuracy']:.2f}% on {result['images']:,} "
          f"images{tta}")
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


def evaluate_with_progress(net, split, normalization, limit, tuner, tta="none") -> dict:
    """engine.train.evaluation's Evaluation a batch at a time, each batch at the thread count the
    tuner picks, with a progress line (images done, images/s, threads) on stderr."""
    from engine.train.evaluation import Evaluation
    evaluation = Evaluation(net, split, normalization, limit=limit, tta=tta)
    line = StatusLine()
    started = time.monotonic()
    while not evaluation.done:
        batch = min(evaluation.batch_size, evaluation.images - evaluation.position)
        tuner.run(lambda: evaluation.advance(batch), batch)
        if line.due() or evaluation.done:
            rate = evaluation.position / max(time.monotonic() - started, 1e-9)
            line.show(f"evaluating the {split.name} split: {evaluation.position:,}/"
                      f"{evaluation.images:,} images, {rate:,.0f} img/s, {tuner.label()}")
    line.newline()
    print(f"threads: {tuner.summary()}", file=sys.stderr)
    return evaluation.result()
