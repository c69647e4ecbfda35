"""Named nets: the ConvNetJS demo, two CIFAR-10 nets to train here, and the lecture's case
studies (LeNet-5, AlexNet, ZFNet, VGG-16, GoogLeNet, ResNet-18/34) for `summary`.

Each preset is a JSON spec document ({"name", "description", "notes", "layers"}) in this
package, read with importlib.resources so an installed wheel finds them. A name is looked up
in PRESETS before any file is opened: no path is ever built from what a user typed.

May import: engine.spec."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from engine.spec.net_spec import (DEFAULT_BUDGET, Budget, NetSpec, SpecError, load_spec_text,
                                  parse_spec)

# Order: trainable here first, then the case studies in the lecture's order.
PRESETS = ("convnetjs", "cifar_small", "cifar_resnet", "lenet5", "alexnet", "zfnet", "vgg16",
           "googlenet", "resnet18", "resnet34")
TRAINABLE = ("convnetjs", "cifar_small", "cifar_resnet")  # CIFAR-10 sized, within the budget


class UnknownPresetError(ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")


class NetSourceError(ValueError):
    """A --net value that names no preset and no readable spec file, or a spec that does not
    parse; the message is one line naming the preset or the file."""


def preset_document(name: str) -> dict[str, Any]:
    """The preset's JSON document, freshly decoded (callers may change it)."""
    if name not in PRESETS:
        raise UnknownPresetError(name)
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


def load_preset(name: str, *, budget: Budget | None = DEFAULT_BUDGET) -> NetSpec:
    """A preset as a NetSpec. The default budget refuses the ImageNet case studies, which are
    for summaries only: pass budget=None to compute their tables."""
    return parse_spec(preset_document(name), budget=budget)


def open_net(value: str) -> tuple[NetSpec, str | None]:
    """What a --net option names, a preset or a JSON spec file (an operator's path, never a
    request's) -> (NetSpec, the preset's name or None). Every command and the server's start
    read --net here; NetSourceError otherwise."""
    if value in PRESETS:
        try:
            return load_preset(value), value
        except SpecError as exc:
            raise NetSourceError(f"{value}: {exc}") from None
    path = Path(value)
    if not path.is_file():
        raise NetSourceError(f"{value!r} is neither a preset ({', '.join(PRESETS)}) nor a "
                             "spec file")
    try:
        return load_spec_text(path.read_bytes()), None
    except OSError as exc:
        raise NetSourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    except SpecError as exc:
        raise NetSourceError(f"{path}: {exc}") from None


# Settings `convnet-demo train` and the server start each trainable preset with (any can be
# overridden). convnetjs: not the demo's own adadelta at batch 4 (from_convnetjs converts that
# exactly, with ConvNetJS's eps 1e-8: method adadelta, lr 1, batch 4, l2 2.5e-5), which measured
# here reaches 51.0% test accuracy after one epoch and 57.1% after two, at a quarter of the
# batch size (slower per image); momentum SGD at batch 16 gives 52.2% and 57.4%, and 73.1%
# after twenty epochs with the cosine schedule (the shipped pretrained:convnetjs).
TRAINING_DEFAULTS: dict[str, dict[str, Any]] = {
    "convnetjs": {"method": "momentum", "learning_rate": 0.01, "momentum": 0.9,
                  "batch_size": 16, "l2_decay": 1e-4},
    "cifar_small": {"method": "momentum", "learning_rate": 0.01, "momentum": 0.9,
                    "batch_size": 32, "l2_decay": 5e-4},
    "cifar_resnet": {"method": "nesterov", "learning_rate": 0.05, "momentum": 0.9,
                     "batch_size": 64, "l2_decay": 5e-4, "warmup_steps": 200},
}


def training_defaults(name: str | None) -> dict[str, Any]:
    return dict(TRAINING_DEFAULTS.get(name or "", {"method": "momentum", "learning_rate": 0.01,
                                                  "batch_size": 32, "l2_decay": 5e-4}))
