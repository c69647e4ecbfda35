"""Where the server keeps snapshots (the user's data directory by default), and the saved
run it offers to resume: the newest server-named file of the same net, passing over other
nets, other files and damaged ones."""

from __future__ import annotations

import json
import os
from datetime import datetime

import numpy as np

from engine.net import Net
from engine.formats.snapshot import dumps, snapshot_to_json
from engine.spec.net_spec import parse_spec
from server.settings import Settings
from server.snapshot_files import default_snapshot_dir, newest_saved_run
from tests.server.tiny import TINY_SPEC

OTHER_SPEC = [dict(layer) for layer in TINY_SPEC]
OTHER_SPEC[1] = {**OTHER_SPEC[1], "filters": 6}


def save(folder, name, spec, step, mtime, accuracy=None):
    metrics = {"test": {"accuracy": accuracy}} if accuracy is not None else {}
    net = Net(parse_spec(spec), rng=np.random.default_rng(0))
    path = folder / name
    path.write_bytes(dumps(snapshot_to_json(net, step=step, metrics=metrics)))
    os.utime(path, (mtime, mtime))
    return path


def test_snapshots_go_to_the_users_data_directory_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_snapshot_dir() == tmp_path / "data" / "convnet-demo" / "snapshots"
    assert Settings().snapshot_dir == default_snapshot_dir()
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_snapshot_dir() == (tmp_path / "home" / ".local" / "share" / "convnet-demo"
                                      / "snapshots")
    assert Settings(snapshot_dir=tmp_path / "mine").snapshot_dir == tmp_path / "mine"


def test_the_newest_saved_run_of_the_same_net_is_offered(tmp_path):
    spec = parse_spec(TINY_SPEC)
    assert newest_saved_run(tmp_path / "missing", spec) is None
    save(tmp_path, "convnet-20260101-100000-step10.json", TINY_SPEC, 10, 1e9, 0.5)
    mine = save(tmp_path, "convnet-20260102-100000-step20.json", TINY_SPEC, 20, 1e9 + 10, 0.75)
    save(tmp_path, "convnet-20260103-100000-step30.json", OTHER_SPEC, 30, 1e9 + 20)   # other net
    (tmp_path / "convnet-20260104-100000-step40.json").write_text("{not json")      # damaged
    os.utime(tmp_path / "convnet-20260104-100000-step40.json", (1e9 + 30, 1e9 + 30))
    save(tmp_path, "my-own-name.json", TINY_SPEC, 50, 1e9 + 40)      # not the server's name
    run = newest_saved_run(tmp_path, spec, "tiny")
    assert run.path == mine.resolve() and run.step == 20 and run.test_acc == 0.75
    assert run.offer() == {"file": mine.name, "step": 20, "net": "tiny",
                           "saved_at": datetime.fromtimestamp(1e9 + 10).astimezone()
                           .isoformat(timespec="seconds"), "test_acc": 0.75}
    assert run.describe().startswith(f"{mine.name} (tiny, step 20, test accuracy 75.0%, saved ")
    assert newest_saved_run(tmp_path, parse_spec(OTHER_SPEC)).step == 30
    assert json.loads((tmp_path / mine.name).read_bytes())["step"] == 20
