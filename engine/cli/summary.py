"""`convnet-demo summary NET`: the architecture calculator's table for a preset or a spec file.

Shapes, parameters (with formulas), FLOPs, activations, receptive fields and memory, computed
by arithmetic only: VGG-16 or ResNet-34 are summarised without allocating a single weight.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from engine.calculator import render_summary, summarize
from engine.cli import CliError
from engine.presets import PRESETS, preset_document
from engine.spec.net_spec import SpecError, decode_spec_text, parse_spec

INPUT_PATTERN = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*$", re.IGNORECASE)
PUBLIC_ROW_KEYS = ("index", "type", "out_shape", "params", "formula", "flops", "activations",
                   "bytes", "receptive_field", "jump")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "summary", help="print a net's shapes, parameters, FLOPs and memory",
        description="Print a net's layer table: output shapes, parameters with their formulas, "
                    "FLOPs, activations, receptive fields and memory per image. NET is a "
                    f"preset ({', '.join(PRESETS)}) or a JSON spec file.")
    parser.add_argument("net", metavar="NET", help="preset name or path to a JSON spec file")
    parser.add_argument("--input", metavar="HxWxC", help="override the input size, e.g. 224x224x3")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def _read_document(net: str):
    if net in PRESETS:
        return preset_document(net)
    path = Path(net)
    if not path.is_file():
        if net.endswith(".json") or "/" in net or "\\" in net:
            raise CliError(f"no such file: {net}")
        raise CliError(f"unknown preset {net!r} and no such file; presets: {', '.join(PRESETS)}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {net}: {exc.strerror}") from None
    try:
        return decode_spec_text(data)
    except SpecError as exc:
        raise CliError(f"{net}: {exc}") from None


def _override_input(doc, text: str):
    match = INPUT_PATTERN.match(text)
    if not match:
        raise CliError(f"--input must look like 224x224x3 (height x width x channels), "
                       f"got {text!r}")
    h, w, c = (int(g) for g in match.groups())
    layers = doc.get("layers") if isinstance(doc, dict) else doc
    if isinstance(layers, list) and layers and isinstance(layers[0], dict) \
            and layers[0].get("type") == "input":
        layers[0].update(out_sx=w, out_sy=h, out_depth=c)
    return doc


def _public_rows(rows: list[dict]) -> list[dict]:
    """The JSON rows: engine bookkeeping (stored values, buffers, depth) left out."""
    out = []
    for row in rows:
        public = {k: row[k] for k in PUBLIC_ROW_KEYS}
        if "children" in row:
            public["children"] = _public_rows(row["children"])
        out.append(public)
    return out


def run(args: argparse.Namespace) -> int:
    doc = _read_document(args.net)
    if args.input is not None:
        doc = _override_input(doc, args.input)
    try:
        # Summaries are arithmetic only, so no trainable-size budget applies.
        spec = parse_spec(doc, budget=None)
    except SpecError as exc:
        raise CliError(f"{args.net}: {exc}") from None
    summary = summarize(spec)
    if spec.name is None and args.net not in PRESETS:
        summary["name"] = Path(args.net).stem
    if args.json:
        summary["layers"] = _public_rows(summary["layers"])
        print(json.dumps(summary, indent=1))
    else:
        print(render_summary(summary), end="")
    return 0
