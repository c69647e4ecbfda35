"""The JSON twins: state, history, frame and gallery have the contract's shapes."""

from __future__ import annotations

import json

from tests.server.conftest import presenter
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
    assert state["join_url"] == "http://testserver/"
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
