"""The worker thread: the page answers while data loads; commands wait for a ready run; a
start-up failure is reported, not fatal; shutdown saves a snapshot."""

from __future__ import annotations

import os
import threading
import time

import engine.data
from engine.data import DataError
from server.app import create_app
from tests.server import images
from tests.server.conftest import (TestClient, assert_error, presenter, tiny_dataset,
                                   tiny_settings, wait_ready)


def test_the_page_answers_while_the_data_set_loads(tmp_path, monkeypatch):
    release = threading.Event()

    def slow_open_source(*args, **kwargs):
        release.wait(30)
        return tiny_dataset()

    monkeypatch.setattr(engine.data, "open_source", slow_open_source)
    app = create_app(tiny_settings(tmp_path, dataset=None))
    with TestClient(app) as client:
        started = time.monotonic()
        assert client.get("/").status_code == 200
        while (state := client.get("/api/state").json())["net"] is None:   # parsed first
            assert time.monotonic() - started < 5
            time.sleep(0.01)
        assert state["status"] == "loading" and state["net"]["name"] == "custom"
        refused = client.post("/api/classify", files={"file": ("x.png", images.png())})
        assert_error(refused, 503, "not_ready")
        assert refused.headers["retry-after"] == "1"
        assert_error(client.post("/api/control", json={"action": "resume"},
                                 headers=presenter()), 503, "not_ready")
        assert client.get("/api/frame").json() == {"frame": None}
        release.set()
        assert wait_ready(client)["status"] == "paused"


def test_a_start_up_failure_is_reported(tmp_path, monkeypatch):
    def broken_open_source(*args, **kwargs):
        raise DataError("no-such-folder: no such file or folder")

    monkeypatch.setattr(engine.data, "open_source", broken_open_source)
    app = create_app(tiny_settings(tmp_path, dataset=None))
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while (state := client.get("/api/state").json())["status"] != "error":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert "no such file" in state["error"]
        assert_error(client.post("/api/control", json={"action": "resume"},
                                 headers=presenter()), 503, "not_running")


def test_shutdown_saves_a_snapshot(tmp_path):
    app = create_app(tiny_settings(tmp_path))
    with TestClient(app) as client:
        wait_ready(client)
        client.post("/api/control", json={"action": "step"}, headers=presenter())
    saved = app.state.runtime.worker.published.snapshot_file
    assert saved and (tmp_path / "snapshots").is_dir()
    assert list((tmp_path / "snapshots").iterdir())[0].name.endswith("-step1.json")
    assert app.state.runtime.worker.published.status == "stopped"


def test_training_state_is_untouched_by_frames_and_classification(tmp_path):
    """Frames and uploads run in the inspector's own workspace and gradients."""
    app = create_app(tiny_settings(tmp_path))
    with TestClient(app) as client:
        wait_ready(client)
        client.post("/api/control", json={"action": "step"}, headers=presenter())
        worker = app.state.runtime.worker
        trainer = worker.trainer
        grads_before = [{k: v.copy() for k, v in g.items()} for g in trainer.grads]
        weights = client.get("/api/snapshot", headers=presenter()).content
        for _ in range(3):
            assert client.post("/api/classify", files={"file": ("x.png", images.png())}
                               ).status_code == 200
        assert client.get("/api/snapshot", headers=presenter()).content == weights
        for before, after in zip(grads_before, trainer.grads):
            for name in before:
                assert (before[name] == after[name]).all()
        assert worker.handlers.inspector.workspace is not trainer.ctx.workspace


def test_a_failing_step_pauses_the_run_and_keeps_serving(tmp_path):
    app = create_app(tiny_settings(tmp_path))
    with TestClient(app) as client:
        wait_ready(client)
        trainer = app.state.runtime.worker.trainer

        def broken_step():
            raise ValueError("boom")

        trainer.step = broken_step
        client.post("/api/control", json={"action": "resume"}, headers=presenter())
        deadline = time.monotonic() + 30
        while not any(b"boom" in line for line in app.state.runtime.hub.recent_logs):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert client.get("/api/state").json()["status"] == "paused"
        del trainer.step                                 # the real method again
        assert client.post("/api/classify", files={"file": ("x.png", images.png())}
                           ).status_code == 200
        client.post("/api/control", json={"action": "step"}, headers=presenter())
        assert client.get("/api/state").json()["metrics"]["step"] == 1


def test_a_loaded_snapshot_resets_the_pages_charts_even_when_its_steps_run_higher(tmp_path):
    app = create_app(tiny_settings(tmp_path))
    with TestClient(app) as client:
        wait_ready(client)
        hub = app.state.runtime.hub
        events = []
        publish = hub.publish

        def recording(kind, payload):
            if kind == "history":
                events.append(payload)
            publish(kind, payload)

        hub.publish = recording
        for _ in range(3):
            client.post("/api/control", json={"action": "step"}, headers=presenter())
        three = client.get("/api/snapshot", headers=presenter()).content
        client.post("/api/control", json={"action": "reset"}, headers=presenter())
        client.post("/api/control", json={"action": "step"}, headers=presenter())
        events.clear()
        loaded = client.put("/api/snapshot", files={"file": ("s.json", three)},
                            headers=presenter())
        assert loaded.status_code == 200, loaded.text
        assert events and events[0]["reset"] is True and events[0]["from"] == 0


def test_the_snapshot_saved_at_shutdown_counts_against_the_kept_number(tmp_path):
    folder = tmp_path / "snapshots"
    folder.mkdir()
    for k in range(3):                               # an earlier run's saves
        (folder / f"convnet-20260101-12000{k}-step{k}.json").write_text("{}")
        os.utime(folder / f"convnet-20260101-12000{k}-step{k}.json", (1e9 + k, 1e9 + k))
    app = create_app(tiny_settings(tmp_path, keep_snapshots=2))
    with TestClient(app) as client:
        wait_ready(client)
        client.post("/api/control", json={"action": "step"}, headers=presenter())
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 and names[0] == "convnet-20260101-120002-step2.json"
    assert names[1].endswith("-step1.json")
    assert app.state.runtime.worker.published.snapshot_file.endswith(names[1])
