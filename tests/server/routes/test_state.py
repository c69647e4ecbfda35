"""The JSON twins: state, history, frame and gallery have the contract's shapes."""

from __future__ import annotations

import json

import httpx

from server.models import MAX_HISTORY_POINTS
from server.routes import state as state_route
from tests.server.conftest import presenter, tiny_settings, wait_ready
from tests.server.live import live_server
from tests.server.probe import in_threads, state_latencies_while, wait_ready_live
from tests.server.tiny import CLASSES

STATE_KEYS = {"version", "status", "role", "net", "settings", "metrics", "classes", "join_url",
              "presets", "pretrained", "limits", "image_size", "data_title", "run_id",
              "join_local_only"}
METRIC_KEYS = {"step", "examples", "epoch", "time", "loss", "reg_loss", "train_acc", "val_acc",
               "test_acc", "test_step", "images_per_s", "forward_ms_per_image",
               "backward_ms_per_image", "batch_size", "layer_ms", "diverged", "status", "lr",
               "threads"}
TILE_KEYS = {"min", "max", "grid", "cols", "tile"}


def test_state_has_the_contract_keys(client):
    state = client.get("/api/state").json()
    assert STATE_KEYS <= set(state)
    assert state["role"] == "viewer" and state["status"] == "paused"
    assert state["classes"] == list(CLASSES)
    assert METRIC_KEYS <= set(state["metrics"])
    assert {"name", "spec", "summary", "params"} <= set(state["net"])
    assert state["settings"]["batch_size"] == 4
    assert state["limits"] == {"max_upload_bytes": 4 * 2**20, "max_pixels": 4096 * 4096,
                               "max_snapshot_bytes": 64 * 2**20}
    assert {"name": "vgg16", "trainable": False} .items() <= next(
        p for p in state["presets"] if p["name"] == "vgg16").items()
    assert state["join_url"] == "http://127.0.0.1:8000/"   # the server's own, not the Host
    assert state["join_local_only"] is True          # the tests listen on 127.0.0.1
    assert state["image_size"] == [8, 8] and state["data_title"] == "tiny"   # its folder
    assert state["run_id"] == client.get("/api/state").json()["run_id"]
    assert "adam" in state["optimizers"]


def test_history_frame_and_gallery_after_some_steps(client):
    for _ in range(10):                          # an epoch here is 9 steps: a test run too
        client.post("/api/control", json={"action": "step"}, headers=presenter())
    history = client.get("/api/history").json()
    assert history["points"][-1]["step"] == client.get("/api/state").json()["metrics"]["step"]
    assert {"step", "examples", "epoch", "time", "loss", "train_acc", "lr"} <= set(
        history["points"][-1])
    frame = client.get("/api/frame").json()
    assert {"index", "label", "image", "top"} <= set(frame["example"])
    assert frame["example"]["label"] in CLASSES
    for layer in frame["layers"]:
        assert {"index", "type", "shape", "act", "grad", "filters", "filter_grads"} <= set(layer)
        if layer["values"] is None:                  # one value per channel: bars instead
            assert TILE_KEYS <= set(layer["act"])
    gallery = client.get("/api/gallery").json()
    assert len(gallery["items"]) == 2 * len(CLASSES)
    item = gallery["items"][0]
    assert {"index", "label", "image", "top", "correct"} <= set(item)
    test = gallery["test"]
    assert test is not None and set(test) == {"accuracy", "per_class", "confusion", "classes",
                                              "step"}
    assert len(test["confusion"]) == len(CLASSES)
    assert "NaN" not in json.dumps(gallery)


def test_each_published_value_is_encoded_once_for_every_client(client, monkeypatch):
    encodings = []
    real = state_route.encode_once
    monkeypatch.setattr(state_route, "encode_once",
                        lambda value: encodings.append(1) or real(value))
    client.post("/api/control", json={"action": "step"}, headers=presenter())  # new versions
    for path in ("/api/history", "/api/frame", "/api/gallery"):
        before = len(encodings)
        first = client.get(path).content
        assert len(encodings) == before + 1, path
        for _ in range(20):
            assert client.get(path).content == first
        assert len(encodings) == before + 1, path
    history = client.get("/api/history").json()
    client.post("/api/control", json={"action": "step"}, headers=presenter())
    assert client.get("/api/history").json() != history      # a new version, encoded anew


def test_state_answers_while_many_clients_fetch_the_longest_history(tmp_path):
    with live_server(tiny_settings(tmp_path)) as (base, app):
        wait_ready_live(base)
        point = {"step": 0, "examples": 3_950_000, "epoch": 79.1234, "time": 1234.567,
                 "loss": 0.123456789, "reg_loss": 0.0012345, "train_acc": 0.87654321,
                 "val_acc": 0.81234, "lr": 0.001}
        # What a run at the largest history_points allowed publishes (paused: it stays).
        app.state.runtime.worker.published.history = (
            [dict(point, step=k) for k in range(MAX_HISTORY_POINTS)], [], [])

        def fetch(_):   # bytes only: parsing here would compete with the server for the GIL
            response = httpx.get(f"{base}/api/history", timeout=60)
            assert response.content.count(b'"train_acc"') == MAX_HISTORY_POINTS

        seconds = state_latencies_while(base, in_threads(100, fetch))
        # Before: each request encoded the 5,000 points on the event loop (~35 ms each), and
        # /api/state waited up to 5.6-7.5 s behind 50 of them on a quiet 2-core machine;
        # since, 0.3-0.8 s behind 50 (up to 4 s with the machine 6x oversubscribed).
        assert max(seconds) < 5.0, sorted(seconds)[-5:]


def test_a_long_history_is_gzipped_once_per_version(fresh_client, monkeypatch):
    import gzip
    compressions = []
    real = gzip.compress
    monkeypatch.setattr(gzip, "compress", lambda *a, **k: compressions.append(1) or real(*a, **k))
    with fresh_client() as client:
        wait_ready(client)
        point = {"step": 0, "loss": 0.5, "train_acc": 0.75}
        client.app.state.runtime.worker.published.history = (
            [dict(point, step=k) for k in range(MAX_HISTORY_POINTS)], [], [])
        plain = client.get("/api/history", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        for _ in range(10):
            zipped = client.get("/api/history", headers={"Accept-Encoding": "gzip"})
            assert zipped.headers["content-encoding"] == "gzip"
            assert zipped.json() == plain.json()          # httpx decompressed it
        assert len(compressions) == 1
