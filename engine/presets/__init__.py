"""Named nets: the ConvNetJS demo, two CIFAR-10 nets to train here, and the lecture's case
studies (LeNet-5, AlexNet, ZFNet, VGG-16, GoogLeNet, ResNet-18/34) for `summary`.

Each preset is a JSON spec document ({"name", "description", "notes", "layers"}) in this
package, read with importlib.resources so an installed wheel finds them. A name is looked up
in PRESETS before any file is opened: no path is ever built from what a user typed.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from engine.spec import DEFAULT_BUDGET, Budget, NetSpec, parse_spec

# Order: trainable here first, then the case studies in the lecture's order.
PRESETS = ("convnetjs", "cifar_small", "cifar_resnet", "lenet5", "alexnet", "zfnet", "vgg16",
           "googlenet", "resnet18", "resnet34")
TRAINABLE = ("convnetjs", "cifar_small", "cifar_resnet")  # CIFAR-10 sized, within the budget


class UnknownPresetError(ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")


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


# Settings `convnet-demo train` and the server start each trainable preset with (any can be
# overridden). convnetjs: not the demo's own adadelta at batch 4 (from_convnetjs converts that
# exactly: method adadelta, lr 1, batch 4, l2 2.5e-5), which measured here reaches 42% test
# accuracy in its first epoch and then wanders between 35% and 42% for eight more; momentum
# SGD at batch 16 passes 57% in three epochs.
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
