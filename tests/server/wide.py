"""A tiny net (for the tiny data set's 8x8 images, 2 classes) wide enough for the network
view to cut and to page: a conv of 40 channels (a frame shows 32), a conv of 7 filters over
those 40 (a grid with one empty cell; each filter drawn as its mean over 40 inputs), a
residual block (its inner conv's window), an fc of 50 (bars, 32 shown) and the softmax's fc
of 2 (bars with the class names)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.server.conftest import tiny_settings

WIDE_SPEC = [
    {"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 3},
    {"type": "conv", "sx": 3, "filters": 40, "stride": 1, "pad": 1, "activation": "relu"},
    {"type": "pool", "sx": 2, "stride": 2},
    {"type": "conv", "sx": 3, "sy": 1, "filters": 7, "pad_x": 1},
    {"type": "residual", "layers": [{"type": "conv", "sx": 3, "filters": 7, "pad": 1}],
     "shortcut": []},
    {"type": "fc", "num_neurons": 50, "activation": "relu"},
    {"type": "softmax", "num_classes": 2},
]
# Top-level layer indices of WIDE_SPEC once normalised (activations and the softmax's fc are
# layers of their own).
INPUT, CONV1, RELU1, POOL, CONV2, BLOCK, FC50, RELU50, FC2, SOFTMAX = range(10)


def wide_settings(directory, **changes):
    path = Path(directory) / "wide_net.json"
    path.write_text(json.dumps(WIDE_SPEC))
    return tiny_settings(directory, net=str(path), **changes)
