"""ConvNetJS itself, run in node: the reference our ConvNetJS import and export are checked
against (tests/naive/convnetjs.py is our plain-loop rewrite of its forward pass; this is the
library). The library is vendored as tests/naive/convnetjs.js (MIT, see its header), so no
npm install runs at test time; CONVNETJS_JS=path/to/convnet.js runs the same tests against
another build (e.g. `npm install convnetjs@0.3.0`'s node_modules/convnetjs/build/convnet.js).

Without node these tests skip, except under CI (CONVNET_DEMO_CI set, as .ci/run does, or
CI=true, as CI services set it), where a missing node fails them: CI installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

DRIVER = Path(__file__).with_name("convnetjs_driver.js")


def under_ci() -> bool:
    return bool(os.environ.get("CONVNET_DEMO_CI")) or os.environ.get("CI", "").lower() == "true"


def node() -> str:
    """The node executable, or skip (fail under CI) saying why."""
    found = shutil.which("node")
    if found is None:
        message = "node is not installed: ConvNetJS itself cannot run (apt-get install nodejs)"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


def _run(job: dict, timeout: float) -> object:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "job.json"
        path.write_text(json.dumps(job))
        done = subprocess.run([node(), str(DRIVER), str(path)], capture_output=True, text=True,
                              timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"ConvNetJS in node failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def _images(images: np.ndarray) -> dict:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"expected uint8 (N, H, W, 3) images, got {images.dtype} "
                         f"{images.shape}")
    return {"images": images.reshape(len(images), -1).tolist(), "width": images.shape[2],
            "height": images.shape[1]}


def predict(net_json: dict, images: np.ndarray, timeout: float = 300) -> np.ndarray:
    """ConvNetJS's prediction-mode output of its last layer for each uint8 (H, W, 3) image,
    fed as its demos feed images (pixel/255 - 0.5): float64 (N, outputs)."""
    return np.array(_run({"op": "predict", "net": net_json, **_images(images)}, timeout))


def train(net_json: dict, options: dict, images: np.ndarray, labels, timeout: float = 300
          ) -> dict:
    """Net.toJSON() after a ConvNetJS Trainer with `options` ran trainer.train(image, label)
    on each image in order (so every batch_size images make one update)."""
    return _run({"op": "train", "net": net_json, "options": options,
                 "labels": [int(y) for y in labels], **_images(images)}, timeout)
