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

from tests.server.tiny import FOLDER_SPEC, tiny_image_folder

TOKEN = "cli-test-token-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]



def test_serve_prints_addresses_trains_and_saves_on_ctrl_c(tmp_path):
    data = tiny_image_folder(tmp_path / "images")
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps(FOLDER_SPEC))
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
