"""Shared builders for the trainer, snapshot and command-line tests: tiny specs and a tiny
image folder a net can learn in a few dozen steps (the class sets the red channel)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.engine.data.builders import CLASSES, make_image_folder

REPO = Path(__file__).resolve().parents[1]

INPUT = {"type": "input", "out_sx": 32, "out_sy": 32, "out_depth": 3}
# conv-relu-pool-fc-softmax, small enough that a step takes a few milliseconds.
TINY_LAYERS = [
    INPUT,
    {"type": "conv", "sx": 4, "filters": 4, "stride": 4, "activation": "relu"},
    {"type": "pool", "sx": 2, "stride": 2},
    {"type": "fc", "num_neurons": 8, "activation": "relu"},
    {"type": "softmax", "num_classes": len(CLASSES)},
]
# The same with batch norm (running statistics are buffers) and dropout (uses the rng).
BN_LAYERS = [
    INPUT,
    {"type": "conv", "sx": 4, "filters": 4, "stride": 4, "bias": False},
    {"type": "batchnorm"},
    {"type": "relu"},
    {"type": "pool", "sx": 2, "stride": 2},
    {"type": "dropout", "drop_prob": 0.25},
    {"type": "softmax", "num_classes": len(CLASSES)},
]


def tiny_spec(layers=None, classes: int = len(CLASSES)):
    from engine.spec.net_spec import parse_spec
    layers = [dict(layer) for layer in (layers or TINY_LAYERS)]
    if "num_classes" in layers[-1]:
        layers[-1]["num_classes"] = classes
    return parse_spec(layers)


def tiny_net(layers=None, seed: int = 0, classes: int = len(CLASSES)):
    from engine.net import Net
    return Net(tiny_spec(layers, classes), rng=np.random.default_rng(seed))


def learnable_folder(root: Path, train_per_class: int = 30, test_per_class: int = 10) -> Path:
    """root/{train,test}/{cat,dog,frog}/NNN.png, 32x32 solid colours, red set by the class."""
    return make_image_folder(root, train_per_class=train_per_class,
                             test_per_class=test_per_class)


def open_folder(folder: Path, cache_dir: Path, validation: str = "10"):
    from engine.data import open_source
    return open_source(str(folder), cache_dir=cache_dir, validation=validation)


def cli_command(*args: str) -> list[str]:
    """`convnet-demo ARGS` as installed beside this Python, else through the module."""
    script = Path(sys.executable).with_name("convnet-demo")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "engine.cli.main", *args]


def cli_env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ, CONVNET_DEMO_CACHE=str(cache_dir), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_cli(*args: str, cache_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*args), cwd=REPO, env=cli_env(cache_dir),
                          capture_output=True, text=True, timeout=timeout)


def write_spec(path: Path, layers=None) -> Path:
    import json
    path.write_text(json.dumps({"layers": layers or TINY_LAYERS}))
    return path


def train_snapshot(folder: Path, cache_dir: Path, out: Path, steps: int = 60, seed: int = 1):
    """Train the tiny net on `folder` with the Trainer and save a snapshot (what
    `convnet-demo train` would write, without the command line)."""
    from engine.formats.snapshot import save_snapshot
    from engine.train.trainer import Trainer, TrainOptions
    dataset = open_folder(folder, cache_dir)
    trainer = Trainer(tiny_net(seed=seed), dataset,
                      {"method": "adam", "learning_rate": 0.01, "batch_size": 8},
                      TrainOptions(seed=seed))
    for _ in range(steps):
        trainer.step()
    trainer.evaluate_test()
    save_snapshot(out, trainer.net, **trainer.snapshot_kwargs())
    return trainer
