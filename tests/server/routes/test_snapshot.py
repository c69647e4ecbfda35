"""Snapshots: saved under server-made names, downloaded in both formats, uploaded (ours and
ConvNetJS's) after full validation; a corrupt upload changes nothing."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from engine.formats.snapshot import decode_array, encode_array
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
    from engine.formats.snapshot import dumps, snapshot_to_json
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


def _hostile_snapshots(good: bytes) -> list[tuple[str, bytes]]:
    """Snapshots that parse but must not load; each would change the run half way, or load
    a net that diverges at once, if any check came late."""
    doc = json.loads(good)
    name = next(iter(doc["params"]))

    def changed(**parts):
        return json.dumps({**doc, **parts}).encode()

    huge_weights = np.full(decode_array(doc["params"][name], name).shape, 1e39, np.float64)
    return [
        ("meta.epoch 10**400", changed(meta={**doc["meta"], "epoch": 10**400})),
        ("meta.examples_seen 10**400", changed(meta={**doc["meta"], "examples_seen": 10**400})),
        ("step 10**400", changed(step=10**400)),
        ("version true", changed(version=True)),
        ("an unknown top-level key", changed(colour="blue")),
        ("preprocess.std 1e-300", changed(preprocess={**doc["preprocess"], "std": [1e-300] * 3})),
        ("preprocess.mean 1e308", changed(preprocess={**doc["preprocess"], "mean": [1e308] * 3})),
        ("float64 weights of 1e39", changed(params={**doc["params"],
                                                    name: encode_array(huge_weights)})),
    ]


def test_a_hostile_snapshot_is_refused_and_the_run_is_unchanged(client):
    earlier = client.get("/api/snapshot", headers=presenter()).content
    client.post("/api/control", json={"action": "step"}, headers=presenter())
    before = fingerprint(client)        # other weights than `earlier`: a half load would show
    for what, data in _hostile_snapshots(earlier):
        response = client.put("/api/snapshot", content=data, headers=presenter(
            **{"Content-Type": "application/json"}))
        assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
        assert_error(response, response.status_code)
        assert fingerprint(client) == before, what


def test_saving_is_rate_limited(fresh_client):
    with fresh_client(save_min_interval_s=30) as client:
        wait_ready(client)
        assert client.post("/api/snapshot", headers=presenter()).status_code == 200
        refused = client.post("/api/snapshot", headers=presenter())
        assert_error(refused, 429, "too_many_saves")
        assert 1 <= int(refused.headers["retry-after"]) <= 30


def test_only_the_newest_snapshots_stay(fresh_client, tmp_path):
    folder = tmp_path / "snapshots"
    folder.mkdir()
    (folder / "my-best-net.json").write_text("{}")            # not the server's: stays
    with fresh_client(keep_snapshots=3, save_min_interval_s=0) as client:
        wait_ready(client)
        answers = []
        for _ in range(5):
            client.post("/api/control", json={"action": "step"}, headers=presenter())
            answers.append(client.post("/api/snapshot", headers=presenter()).json())
        kept = sorted(p.name for p in folder.iterdir() if p.name.startswith("convnet-"))
        assert kept == sorted(a["file"] for a in answers[-3:])
        assert answers[-1]["kept"] == 3 and answers[-1]["deleted"] == [answers[1]["file"]]
        assert answers[3]["deleted"] == [answers[0]["file"]] and answers[2]["deleted"] == []
        assert (folder / "my-best-net.json").is_file()
        logs = b"".join(client.app.state.runtime.hub.recent_logs)
        assert b"the server keeps the newest 3" in logs


def test_temporary_files_of_interrupted_saves_are_removed_at_start(fresh_client, tmp_path):
    folder = tmp_path / "snapshots"
    folder.mkdir()
    stale = [folder / f".convnet-20260101-12000{k}-step{k}.json.a1b2c3d{k}.tmp" for k in range(3)]
    young = folder / ".convnet-20260101-130000-step9.json.zzzzzzzz.tmp"   # a save under way
    other = folder / ".notes.tmp"
    for path in (*stale, young, other):
        path.write_bytes(b"{")
    for path in stale + [other]:
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    with fresh_client() as client:
        wait_ready(client)
        assert not any(path.exists() for path in stale)
        assert young.exists() and other.exists()
        logs = b"".join(client.app.state.runtime.hub.recent_logs)
        assert b"removed 3 temporary file(s)" in logs


def _a_saved_run(fresh_client, steps: int = 3) -> None:
    """A run that trained `steps` steps and was stopped: it saved itself on exit."""
    with fresh_client() as client:
        wait_ready(client)
        for _ in range(steps):
            client.post("/api/control", json={"action": "step"}, headers=presenter())


def test_no_saved_run_no_offer(fresh_client):
    with fresh_client() as client:
        assert wait_ready(client)["resumable"] is None
        assert_error(client.post("/api/resume", headers=presenter()), 404, "no_saved_run")
        assert client.post("/api/resume").status_code == 401


def test_a_restart_offers_the_saved_run_and_one_click_resumes_it(fresh_client, caplog):
    import logging
    _a_saved_run(fresh_client)
    with fresh_client() as client:
        state = wait_ready(client)
        offer = state["resumable"]
        assert offer["step"] == 3 and offer["net"] == "custom" and offer["test_acc"] is None
        assert offer["file"].startswith("convnet-") and offer["file"].endswith("-step3.json")
        assert "T" in offer["saved_at"] and state["metrics"]["step"] == 0
        with caplog.at_level(logging.INFO, "server"):
            response = client.post("/api/resume", headers=presenter())
        assert response.status_code == 200, response.text
        assert response.json()["resumed"] == offer
        state = client.get("/api/state").json()
        assert state["metrics"]["step"] == 3 and state["resumable"] is None
        assert any(m.startswith(f"resumed the saved run {offer['file']} (custom, step 3")
                   for m in caplog.messages)
        assert_error(client.post("/api/resume", headers=presenter()), 404, "no_saved_run")


def test_serve_resume_starts_from_the_saved_run(fresh_client, caplog):
    import logging
    _a_saved_run(fresh_client, steps=2)
    with caplog.at_level(logging.INFO, "server"):
        with fresh_client(resume=True) as client:
            state = wait_ready(client)
            assert state["metrics"]["step"] == 2 and state["resumable"] is None
    assert any(m.startswith("resumed the saved run convnet-") for m in caplog.messages)


def test_a_saved_run_that_changed_since_is_refused_and_changes_nothing(fresh_client, tmp_path):
    _a_saved_run(fresh_client)
    with fresh_client() as client:
        offer = wait_ready(client)["resumable"]
        (tmp_path / "snapshots" / offer["file"]).write_bytes(b"\x89PNG\r\n\x1a\n....")
        before = _run_of(client)
        body = assert_error(client.post("/api/resume", headers=presenter()), 422,
                            "invalid_snapshot")
        assert "this is a PNG image" in body["detail"]
        assert _run_of(client) == before


def _run_of(client) -> tuple:
    """The net, settings, step and weights (a fresh run's page figures may still arrive)."""
    state = client.get("/api/state").json()
    weights = client.get("/api/snapshot", headers=presenter()).content
    return state["net"], state["settings"], state["metrics"]["step"], weights


def test_another_net_withdraws_the_offer(fresh_client):
    _a_saved_run(fresh_client)
    with fresh_client() as client:
        assert wait_ready(client)["resumable"] is not None
        changed = client.put("/api/net", json={"spec": [
            {"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 3},
            {"type": "softmax", "num_classes": 2}]}, headers=presenter())
        assert changed.status_code == 200, changed.text
        assert client.get("/api/state").json()["resumable"] is None
        assert_error(client.post("/api/resume", headers=presenter()), 404, "no_saved_run")


@pytest.mark.parametrize("name, data, says", [
    ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "this is a PNG image"),
    ("photo.jpg", b"\xff\xd8\xff\xe0" + bytes(64), "this is a JPEG image"),
    ("runs.zip", b"PK\x03\x04" + bytes(64), "this is a zip archive"),
    ("notes.txt", b"my notes about the run", "this is text, not a snapshot"),
])
def test_a_file_that_is_no_snapshot_is_named_for_what_it_is(client, name, data, says):
    before = fingerprint(client)
    body = assert_error(client.put("/api/snapshot", files={"file": (name, data)},
                                   headers=presenter()), 422, "invalid_snapshot")
    assert says in body["detail"]
    assert ("a snapshot is a .json file saved by convnet-demo (Save snapshot) or ConvNetJS's "
            "Net.toJSON()") in body["detail"]
    assert "codec" not in body["detail"]
    assert fingerprint(client) == before
