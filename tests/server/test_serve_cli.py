"""`convnet-demo serve` as a person runs it: addresses printed, page up, Ctrl-C saves.

(Lives here rather than in tests/engine/cli/ because it exercises the whole server.)"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from tests.server.tiny import tiny_images

TOKEN = "cli-test-token-0123456789abcdef"
SPEC = [{"type": "input", "out_sx": 32, "out_sy": 32, "out_depth": 3},
        {"type": "conv", "sx": 4, "filters": 2, "stride": 2, "pad": 1, "activation": "relu"},
        {"type": "pool", "sx": 4, "stride": 4},
        {"type": "softmax", "num_classes": 2}]
ROOT = Path(__file__).resolve().parents[2]


def _image_folder(root: Path) -> Path:
    for split, count, seed in (("train", 20, 0), ("test", 6, 1)):
        images, labels = tiny_images(count, seed)
        for k, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / ("dark", "light")[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.repeat(np.repeat(image, 4, 0), 4, 1)).save(folder / f"{k}.png")
    return root


def test_serve_prints_addresses_trains_and_saves_on_ctrl_c(tmp_path):
    data = _image_folder(tmp_path / "images")
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps(SPEC))
    env = {**os.environ, "CONVNET_DEMO_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli.main", "serve", "--port", "0", "--net", str(spec),
         "--data", str(data), "--token", TOKEN, "--snapshot-dir", str(tmp_path / "snaps"),
         "--threads", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any("presenter opens" in line for line in lines):
            line = process.stdout.readline()
            assert line, f"serve exited: {process.stderr.read()}"
            lines.append(line)
        viewer = re.search(r"viewers open:\s+(\S+)", "".join(lines)).group(1)
        presenter = re.search(r"presenter opens:\s+(\S+)", "".join(lines)).group(1)
        assert presenter == f"{viewer}?token={TOKEN}"
        deadline = time.monotonic() + 90
        with httpx.Client(base_url=viewer, timeout=30) as http:
            assert http.get("/").status_code == 200
            while http.get("/api/state").json()["metrics"] is None or (
                    http.get("/api/state").json()["metrics"]["step"] < 3):
                assert time.monotonic() < deadline, "no training steps"
                time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    assert process.returncode == 0, err
    saved = list((tmp_path / "snaps").glob("convnet-*.json"))
    assert len(saved) == 1 and "snapshot saved to" in err
    assert json.loads(saved[0].read_bytes())["format"] == "convnet-demo-snapshot"


def test_serve_refuses_bad_arguments_before_listening(tmp_path):
    for args, message in ((["--net", "no-such-net"], "neither a preset"),
                          (["--token", "short"], "at least 16"),
                          (["--data", str(tmp_path / "missing")], "no such file")):
        result = subprocess.run([sys.executable, "-m", "engine.cli.main", "serve", *args],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and message in result.stderr, result.stderr
