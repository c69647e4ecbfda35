"""`convnet-demo export`: a snapshot (ours, ConvNetJS's, or a shipped one) as an ONNX model, a
ConvNetJS Net.toJSON() file or our own snapshot format."""

from __future__ import annotations

import argparse
import sys

from engine.cli import CliError
from engine.data import add_data_argument

FORMATS = ("onnx", "convnetjs", "ours")
AGREEMENT_PER_CLASS = 20       # test images per class an inexact ConvNetJS export is measured on


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write a snapshot as ONNX, ConvNetJS JSON or our snapshot format",
        description="ONNX (opset 17: the normalisation as the first nodes, class names in the "
                    "metadata; needs the 'export' extra), ConvNetJS's Net.toJSON() (exact "
                    "where ConvNetJS can compute what the net computes; --approximate "
                    "otherwise, with the measured agreement), or our snapshot format (e.g. a "
                    "ConvNetJS file converted, with --convnetjs-dropout).")
    p.add_argument("source", metavar="SNAPSHOT|pretrained[:NAME]",
                   help="a snapshot file (ours or a ConvNetJS Net.toJSON() file), 'pretrained' "
                        "or 'pretrained:NAME'")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--approximate", action="store_true",
                   help="convnetjs: write a net ConvNetJS cannot reproduce exactly (a padded "
                        "first conv trained on the data set's mean) and report how often it "
                        "agrees, on the test set of --data")
    p.add_argument("--convnetjs-dropout", choices=["1-p", "p"],
                   help="when SOURCE is a ConvNetJS file: its dropout layers scale predictions "
                        "by 1 - drop_prob (what its training meant; the default) or by "
                        "drop_prob (what ConvNetJS itself computes)")
    add_data_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.formats.convnetjs import ConvNetJSError, export_convnetjs, export_status
    from engine.fsutil import atomic_write_bytes
    from engine.formats.onnx_export import OnnxExportError, export_onnx
    from engine.formats.pretrained import resolve_snapshot
    from engine.formats.snapshot import SnapshotError, dumps, snapshot_to_json

    try:
        snapshot = resolve_snapshot(args.source, convnetjs_dropout=args.convnetjs_dropout)
    except SnapshotError as exc:
        raise CliError(str(exc)) from None
    net = snapshot.build_net()
    classes = snapshot.classes or [str(k) for k in range(snapshot.spec.num_outputs)]
    note = ""
    try:
        if args.format == "onnx":
            data = export_onnx(net, snapshot.preprocess, classes)
            note = f"ONNX opset 17, input 'pixels' (batch, 3, {net.input_shape[1]}, " \
                   f"{net.input_shape[2]}) RGB 0..255, {len(classes)} classes"
        elif args.format == "convnetjs":
            status = export_status(snapshot.spec, snapshot.preprocess)
            if status["possible"] and not status["exact"] and not args.approximate:
                raise CliError(f"ConvNetJS cannot compute exactly what this net computes: "
                               f"{status['detail']}; --approximate writes it anyway and "
                               "measures how often the two agree")
            data = dumps(export_convnetjs(net, snapshot.preprocess, approximate=True,
                                          classes=classes))
            note = ("exact: ConvNetJS computes what this net computes" if status["exact"]
                    else _agreement(args, net, snapshot))
        else:
            data = dumps(snapshot_to_json(
                net, optimizer_state=snapshot.optimizer, step=snapshot.step,
                preprocess=snapshot.preprocess, classes=classes, metrics=snapshot.metrics,
                meta=snapshot.meta))
    except (ConvNetJSError, OnnxExportError) as exc:
        raise CliError(str(exc)) from None
    try:
        atomic_write_bytes(args.out, data)
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"wrote {args.out} ({len(data):,} bytes, {args.format})" + (f": {note}" if note else ""))
    return 0


def _agreement(args, net, snapshot) -> str:
    """How often ConvNetJS agrees with the net on the first test images of each class."""
    import numpy as np

    from engine.cli.data import dataset_from_args
    from engine.formats.convnetjs import convnetjs_agreement

    print("measuring the approximate export on the test set...", file=sys.stderr)
    dataset = dataset_from_args(args, image_size=tuple(net.input_shape[1:]))
    labels = dataset.test.labels
    picked = np.concatenate([np.flatnonzero(labels == k)[:AGREEMENT_PER_CLASS]
                             for k in range(len(dataset.class_names))])
    result = convnetjs_agreement(net, snapshot.preprocess, dataset.test.take(picked))
    return (f"approximate: ConvNetJS gives the same class on {result['same_class']} of "
            f"{result['images']} test images, outputs within {result['max_abs_diff']:.2g}")
