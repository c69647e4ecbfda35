"""`convnet-demo classify IMAGE...`: what the net sees in each image, top-K classes."""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from engine.cli.common import add_threads_argument, thread_tuner
from engine.cli.evaluate import add_snapshot_argument, class_names, load_snapshot_arg


def register(subparsers) -> None:
    p = subparsers.add_parser("classify", help="classify image files with a snapshot",
                              description="Any PNG/JPEG/GIF/BMP/WebP/TIFF image, any size; each "
                                          "is resized exactly as the server does it.")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_snapshot_argument(p)
    p.add_argument("--top", type=int, default=3, help="classes to show per image (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    add_threads_argument(p)
    p.set_defaults(func=run)


def classify_images(snapshot, net, images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) at the net's size -> class probabilities (N, K)."""
    from engine.data import Normalization, preprocess
    x = preprocess(images, Normalization.from_dict(snapshot.preprocess))
    return net.predict(x).reshape(len(images), -1)


def run(args: argparse.Namespace) -> int:
    from engine.cli import CliError
    from engine.data import DataError, load_image_file

    # One image is a pass of a few milliseconds: short trials, the first (compiling) untimed.
    tuner = thread_tuner(args.threads, skip_first=1, trial_s=0.1)
    if args.top < 1:
        raise CliError("--top must be at least 1")
    snapshot = load_snapshot_arg(args.snapshot)
    net = snapshot.build_net()
    _, height, width = net.input_shape
    classes = class_names(snapshot)
    failures = classified = 0
    started = time.monotonic()
    for path in args.images:
        try:
            image = load_image_file(path, (height, width))
        except DataError as exc:
            # One line per bad file (its message names the file), and on with the rest.
            failures += 1
            message = " ".join(str(exc).split())
            print(f"convnet-demo classify: error: {message}", file=sys.stderr)
            if args.json:
                print(json.dumps({"file": path, "error": message}))
            continue
        probs = tuner.run(lambda: classify_images(snapshot, net, image[None])[0], 1)
        classified += 1
        order = np.argsort(-probs)[:args.top]
        top = [{"label": classes[k], "p": float(probs[k])} for k in order]
        if args.json:
            print(json.dumps({"file": path, "top": top,
                              "probs": {c: float(p) for c, p in zip(classes, probs)}}))
        else:
            print(f"{path}: " + ", ".join(f"{t['label']} {100 * t['p']:.1f}%" for t in top))
    if classified:
        print(f"classified {classified:,} image{'' if classified == 1 else 's'} in "
              f"{time.monotonic() - started:.2f} s; threads: {tuner.summary()}", file=sys.stderr)
    return 1 if failures else 0
