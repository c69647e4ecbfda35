"""Finding a net to classify with: a snapshot file (ours or ConvNetJS's) or a shipped one.

Shipped nets live in engine/formats/pretrained_nets/ and are named here; a name is looked up in
PRETRAINED before any file is opened, so no path is ever built from what a user typed.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from engine.formats.convnetjs import import_convnetjs
from engine.data.sources import CIFAR10_CLASSES
from engine.formats.snapshot import (Snapshot, SnapshotError, decode_json, read_capped,
                                     snapshot_from_json)

# name -> file in pretrained_nets/, the default first: "pretrained" alone means the first one
# shipped. speedrun is the most accurate, but it costs 4.4x cifar_resnet's compute per image
# (237 against 54 MFLOP), and the page trains on from whatever it loads: it is asked for by
# name (README.md, "Pretrained nets").
PRETRAINED = {"cifar_resnet": "cifar_resnet.json", "convnetjs": "convnetjs.json",
              "speedrun": "speedrun.json"}
DEFAULT_PRETRAINED = "cifar_resnet"


def pretrained_folder():
    """Where shipped nets live (a Traversable: works from a wheel or a source tree)."""
    return resources.files("engine.formats").joinpath("pretrained_nets")


def available_pretrained() -> list[str]:
    folder = pretrained_folder()
    return [name for name, file in PRETRAINED.items() if folder.joinpath(file).is_file()]


def load_pretrained(name: str = DEFAULT_PRETRAINED) -> Snapshot:
    if name not in PRETRAINED:
        raise SnapshotError(f"no pretrained net {name!r}; shipped: "
                            f"{', '.join(available_pretrained()) or 'none'}")
    file = pretrained_folder().joinpath(PRETRAINED[name])
    if not file.is_file():
        raise SnapshotError(f"the pretrained net {name!r} is not in this installation; "
                            f"shipped: {', '.join(available_pretrained()) or 'none'}")
    return parse_snapshot_bytes(file.read_bytes())


def parse_snapshot_bytes(data: bytes, *, convnetjs_dropout: str | None = None) -> Snapshot:
    """Our snapshot format or a ConvNetJS Net.toJSON() document, told apart by content.
    convnetjs_dropout: how a ConvNetJS file's dropout layers scale when predicting, "1-p" or
    "p" (engine.convnetjs.import_convnetjs's dropout_scale; None: the file's own note, else
    "1-p")."""
    doc = decode_json(data)
    if isinstance(doc, dict) and "format" not in doc and isinstance(doc.get("layers"), list):
        return import_convnetjs(doc, classes=list(CIFAR10_CLASSES),
                                dropout_scale=convnetjs_dropout)
    return snapshot_from_json(doc)


def resolve_snapshot(value: str, *, convnetjs_dropout: str | None = None) -> Snapshot:
    """`pretrained` (the default shipped net, cifar_resnet), `pretrained:NAME` or a snapshot file
    (ours, or ConvNetJS's read with `convnetjs_dropout`: see parse_snapshot_bytes)."""
    if value == "pretrained":
        shipped = available_pretrained()
        return load_pretrained(shipped[0] if shipped else DEFAULT_PRETRAINED)
    if value.startswith("pretrained:"):
        return load_pretrained(value.split(":", 1)[1])
    path = Path(value)
    data = read_capped(path)
    try:
        return parse_snapshot_bytes(data, convnetjs_dropout=convnetjs_dropout)
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from None
