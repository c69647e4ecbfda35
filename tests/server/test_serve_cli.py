"""`convnet-demo serve` as a person runs it: addresses printed, page up, Ctrl-C saves.

(Lives here rather than in tests/engine/cli/ because it exercises the whole server.)"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
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
    # The data set by its name, never by the path of a file (site-packages, a temp folder).
    assert "loading the data set: images" in err and str(data) not in err
    assert not (tmp_path / "cache" / "presenter-token").exists()     # --token: not stored


def _start(args, env, cwd) -> tuple[subprocess.Popen, str, str]:
    """`convnet-demo serve ARGS`: (the process, the console so far, the presenter address)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli.main", "serve", "--port", "0", *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    while not any(line.startswith("Ctrl-C") for line in lines):
        line = process.stdout.readline()
        if not line:
            process.kill()
            raise AssertionError(f"serve exited: {process.communicate()[1]}")
        lines.append(line)
    console = "".join(lines)
    return process, console, re.search(r"presenter opens:\s+(\S+)", console).group(1)


def _steps(address: str) -> int:
    with httpx.Client(timeout=30) as http:
        metrics = http.get(address.split("?")[0] + "api/state").json()["metrics"]
    return metrics["step"] if metrics else -1


def _stop(process) -> str:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return err


def test_a_restart_keeps_the_token_and_resumes_the_saved_run(tmp_path):
    data = tiny_image_folder(tmp_path / "images")
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps(FOLDER_SPEC))
    work = tmp_path / "a checkout"                  # where the command is typed
    work.mkdir()
    env = {**os.environ, "CONVNET_DEMO_CACHE": str(tmp_path / "cache"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(ROOT)}
    args = ["--net", str(spec), "--data", str(data), "--threads", "1"]
    snapshots = tmp_path / "data" / "convnet-demo" / "snapshots"
    process, console, first = _start(args, env, work)
    try:
        token_file = tmp_path / "cache" / "presenter-token"
        assert first.endswith(f"?token={token_file.read_text().strip()}")
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert f"snapshots go to: {snapshots}" in console and "kept in" in console
        deadline = time.monotonic() + 90
        while _steps(first) < 3:
            assert time.monotonic() < deadline, "no training steps"
            time.sleep(0.1)
    finally:
        err = _stop(process)
    (saved,) = snapshots.glob("convnet-*.json")
    assert list(work.iterdir()) == []              # nothing written where it was typed
    step = json.loads(saved.read_bytes())["step"]
    # Restarted with --resume: the same presenter address, and the run goes on.
    process, console, second = _start([*args, "--paused", "--resume"], env, work)
    try:
        # (port 0: another port each start; a fixed --port keeps the address as it was)
        assert second.split("?")[1] == first.split("?")[1]
        assert "the same as last time" in console
        deadline = time.monotonic() + 90
        while _steps(second) < step:
            assert time.monotonic() < deadline, "not resumed"
            time.sleep(0.1)
        assert _steps(second) == step
    finally:
        err = _stop(process)
    assert f"resumed the saved run {saved.name}" in err
    # --new-token: another token, kept for the next start.
    process, console, third = _start([*args, "--paused", "--new-token", "--no-save"], env,
                                     work)
    _stop(process)
    assert third.split("?")[1] != first.split("?")[1]
    assert third.endswith(f"?token={token_file.read_text().strip()}")


def test_serve_refuses_bad_arguments_before_listening(tmp_path):
    for args, message in ((["--net", "no-such-net"], "neither a preset"),
                          (["--token", "short"], "at least 16"),
                          (["--token", "x" * 20, "--new-token"], "exclude each other"),
                          (["--resume", "--snapshot", "pretrained"], "exclude each other"),
                          (["--data", str(tmp_path / "missing")], "no such file")):
        result = subprocess.run([sys.executable, "-m", "engine.cli.main", "serve", *args],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and message in result.stderr, result.stderr
