"""Snapshots: saved under server-made names, downloaded in both formats, uploaded (ours and
ConvNetJS's) after full validation; a corrupt upload changes nothing."""

from __future__ import annotations

import json

import pytest

from tests.server.conftest import assert_error, fingerprint, presenter, run_cosine, wait_ready


def test_save_writes_a_file_named_by_the_server(client, module_dir):
    response = client.post("/api/snapshot", headers=presenter())
    assert response.status_code == 200, response.text
    body = response.json()
    path = module_dir / "snapshots" / body["file"]
    assert path.is_file() and path.stat().st_size == body["bytes"]
    assert body["file"].startswith("convnet-") and "/" not in body["file"]
    assert json.loads(path.read_bytes())["format"] == "convnet-demo-snapshot"


def test_download_in_both_formats(client):
    ours = client.get("/api/snapshot", headers=presenter())
    assert ours.status_code == 200
    assert ours.headers["content-disposition"].startswith("attachment; filename=")
    assert json.loads(ours.content)["format"] == "convnet-demo-snapshot"
    theirs = client.get("/api/snapshot", params={"format": "convnetjs"}, headers=presenter())
    assert theirs.status_code == 200
    assert [layer["layer_type"] for layer in json.loads(theirs.content)["layers"]][:2] == [
        "input", "conv"]
    assert_error(client.get("/api/snapshot", params={"format": "pickle"},
                            headers=presenter()), 422)


def _corrupt_snapshots(good: bytes) -> list[bytes]:
    doc = json.loads(good)
    wrong_shape = json.loads(good)
    name = next(iter(wrong_shape["params"]))
    wrong_shape["params"][name]["shape"] = [1, 2, 3]
    missing = json.loads(good)
    del missing["params"][name]
    other_version = {**doc, "version": 99}
    return [b"", b"{", b"[]", b'{"format": "convnet-demo-snapshot"}',
            json.dumps(wrong_shape).encode(), json.dumps(missing).encode(),
            json.dumps(other_version).encode(), good.replace(b'"step":', b'"step":NaN,"x":'),
            json.dumps({"layers": [{"layer_type": "warp"}]}).encode()]


def test_a_corrupt_snapshot_is_refused_and_changes_nothing(client):
    before = fingerprint(client)
    for data in _corrupt_snapshots(before[1]):
        response = client.put("/api/snapshot", files={"file": ("s.json", data)},
                              headers=presenter())
        assert_error(response, 422, "invalid_snapshot")
    assert fingerprint(client) == before


def test_a_snapshot_of_another_net_that_misfits_is_refused(client):
    from engine.net import Net
    from engine.presets import load_preset
    from engine.snapshot import dumps, snapshot_to_json
    data = dumps(snapshot_to_json(Net(load_preset("convnetjs"))))   # 32x32, 10 classes
    before = fingerprint(client)
    assert_error(client.put("/api/snapshot", content=data, headers=presenter(
        **{"Content-Type": "application/json"})), 422, "snapshot_mismatch")
    assert fingerprint(client) == before


def test_upload_ours_and_convnetjs(fresh_client):
    with fresh_client() as client:
        wait_ready(client)
        for _ in range(2):
            client.post("/api/control", json={"action": "step"}, headers=presenter())
        ours = client.get("/api/snapshot", headers=presenter()).content
        theirs = client.get("/api/snapshot", params={"format": "convnetjs"},
                            headers=presenter()).content
        client.post("/api/control", json={"action": "reset"}, headers=presenter())
        response = client.put("/api/snapshot", files={"file": ("s.json", ours)},
                              headers=presenter())
        assert response.status_code == 200, response.text
        assert client.get("/api/state").json()["metrics"]["step"] == 2
        again = json.loads(client.get("/api/snapshot", headers=presenter()).content)
        for key in ("spec", "params", "buffers", "optimizer", "step", "preprocess"):
            assert again[key] == json.loads(ours)[key], key
        response = client.put("/api/snapshot", files={"file": ("net.json", theirs)},
                              headers=presenter())
        assert response.status_code == 200, response.text
        weights = json.loads(client.get("/api/snapshot", headers=presenter()).content)
        assert weights["params"] == json.loads(ours)["params"]     # float32 exact both ways


def test_an_oversized_snapshot_is_413(fresh_client):
    with fresh_client(max_snapshot_bytes=2000) as client:
        wait_ready(client)
        big = client.get("/api/snapshot", headers=presenter()).content
        assert len(big) > 2000
        assert_error(client.put("/api/snapshot", files={"file": ("s.json", big)},
                                headers=presenter()), 413, "too_large")


@pytest.mark.parametrize("body", [{"name": "imagenet_winner"}, {"name": 3}, {"nom": "x"}])
def test_unknown_pretrained_names_are_refused(client, body):
    before = fingerprint(client)
    assert_error(client.post("/api/pretrained", json=body, headers=presenter()), 422)
    assert fingerprint(client) == before


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'{"name": Infinity}'])
def test_malformed_pretrained_bodies_are_400(client, raw):
    before = fingerprint(client)
    response = client.post("/api/pretrained", content=raw,
                           headers=presenter(**{"Content-Type": "application/json"}))
    assert_error(response, 400, "invalid_json")
    assert fingerprint(client) == before


def test_a_snapshot_upload_needs_a_file(client):
    before = fingerprint(client)
    assert_error(client.put("/api/snapshot", files={"other": ("s.json", b"{}")},
                            headers=presenter()), 400, "missing_field")
    assert_error(client.put("/api/snapshot", content=b"{}",
                            headers=presenter(**{"Content-Type": "text/plain"})), 415)
    assert fingerprint(client) == before


def test_a_snapshot_whose_schedule_ended_loads_paused(fresh_client):
    with fresh_client() as client:
        wait_ready(client)
        run_cosine(client, 2)
        for _ in range(2):
            client.post("/api/control", json={"action": "step"}, headers=presenter())
        assert client.get("/api/state").json()["metrics"]["lr"] == 0
        ended = client.get("/api/snapshot", headers=presenter()).content
        client.post("/api/control", json={"action": "resume"}, headers=presenter())
        response = client.put("/api/snapshot", files={"file": ("s.json", ended)},
                              headers=presenter())
        assert response.status_code == 200, response.text
        assert client.get("/api/state").json()["status"] == "paused"
        recent = b"".join(client.app.state.runtime.hub.recent_logs)
        assert b"schedule has ended" in recent
