"""GET /api/checkpoints, and past frames and galleries (GET /api/frame?step=K,
GET /api/gallery?step=K): what a scrubber shows, made on a checkpoint's weights without
touching training."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.conftest import assert_error, fingerprint, presenter, wait_ready


def steps(client, count: int) -> None:
    for _ in range(count):
        response = client.post("/api/control", json={"action": "step"}, headers=presenter())
        assert response.status_code == 200, response.text


@contextmanager
def ready(fresh_client, **changes):
    with fresh_client(**changes) as client:
        wait_ready(client)
        yield client


def checkpoints(client, **params) -> list[dict]:
    response = client.get("/api/checkpoints", params=params)
    assert response.status_code == 200, response.text
    return response.json()["checkpoints"]


def test_a_run_keeps_a_checkpoint_at_the_start_and_at_every_early_step(client):
    kept = checkpoints(client)
    start = kept[-1]["step"]
    steps(client, 3)
    kept = checkpoints(client)
    assert [c["step"] for c in kept][-4:] == [start, start + 1, start + 2, start + 3]
    for c in kept:
        assert set(c) == {"id", "step", "examples", "seconds", "test_acc"}
        assert c["examples"] == 4 * c["step"]          # batch size 4, from a fresh run
    assert client.get("/api/checkpoints").json()["run"] == "r1"


def test_a_past_frame_shows_the_weights_of_its_checkpoint_and_changes_nothing(client):
    steps(client, 2)
    kept = checkpoints(client)
    before = fingerprint(client)
    live = client.get("/api/frame").json()
    first = client.get("/api/frame", params={"step": kept[0]["step"]})
    assert first.status_code == 200, first.text
    past = first.json()
    assert past["step"] == kept[0]["step"] and past["run"] == "r1"
    assert past["checkpoint"] == kept[0]
    # one test image for every checkpoint (the live frames' first), so only the weights differ
    assert past["example"]["index"] == client.app.state.runtime.worker.handlers.inspector \
        .frame_positions[0]
    assert client.get("/api/frame", params={"step": kept[-1]["step"]}).json()[
        "example"]["index"] == past["example"]["index"]
    assert [layer["type"] for layer in past["layers"]] == [
        layer["type"] for layer in live["layers"]]
    latest = client.get("/api/frame", params={"step": kept[-1]["step"]}).json()
    assert latest["layers"][1]["filters"]["grid"] != past["layers"][1]["filters"]["grid"]
    assert fingerprint(client) == before


def test_a_step_between_checkpoints_is_answered_by_the_nearest(fresh_client):
    with ready(fresh_client) as client:
        steps(client, 30)
        kept = [c["step"] for c in checkpoints(client)]
        assert kept[:11] == list(range(11))             # every step at first, then log-spaced
        assert len(kept) < 31
        gap = next(i for i in range(len(kept) - 1) if kept[i + 1] - kept[i] > 1)
        asked = kept[gap] + 1
        nearest = min(kept, key=lambda s: (abs(s - asked), s))
        frame = client.get("/api/frame", params={"step": asked}).json()
        assert frame["step"] == nearest
        gallery = client.get("/api/gallery", params={"step": asked}).json()
        assert gallery["step"] == nearest and len(gallery["items"]) == 4


def test_a_past_frame_of_a_chosen_image_and_its_details(client):
    kept = checkpoints(client)
    frame = client.get("/api/frame", params={"step": kept[0]["step"], "example": 3}).json()
    assert frame["example"]["index"] == 3
    conv = frame["layers"][1]
    slices = client.get(conv["filters"]["slices_url"] + "&index=0")
    assert slices.status_code == 200, slices.text
    assert slices.json()["step"] == kept[0]["step"]


def test_a_test_evaluation_is_recorded_on_the_checkpoint_where_it_started(fresh_client):
    with ready(fresh_client, options={"test_every": 3, "test_chunk": 0}) as client:
        steps(client, 4)
        kept = {c["step"]: c for c in checkpoints(client)}
        assert kept[3]["test_acc"] is not None
        history = client.get("/api/history").json()
        assert kept[3]["test_acc"] == next(t["test_acc"] for t in history["tests"]
                                           if t["step"] == 3)
        gallery = client.get("/api/gallery", params={"step": 3}).json()
        assert gallery["test"]["step"] == 3


def test_a_reset_starts_the_checkpoints_over(fresh_client):
    with ready(fresh_client) as client:
        steps(client, 3)
        client.post("/api/control", json={"action": "reset"}, headers=presenter())
        client.post("/api/control", json={"action": "pause"}, headers=presenter())
        kept = checkpoints(client)
        assert kept[0]["step"] == 0
        assert all(c["step"] <= 1 or c["examples"] > 0 for c in kept)


def test_checkpoints_stay_within_their_memory_bound(fresh_client):
    with ready(fresh_client, checkpoint_mb=1) as client:
        handlers = client.app.state.runtime.worker.handlers
        one = handlers.past.checkpoints.list("r1")[0].nbytes
        handlers.past.checkpoints.resize(10 * one)         # ten of the tiny net's checkpoints
        steps(client, 40)
        kept = checkpoints(client)
        assert len(kept) == 10
        assert kept[0]["step"] == 0 and kept[-1]["step"] == 40
        assert handlers.past.checkpoints.nbytes <= 10 * one


def test_bad_past_requests_name_the_field(client):
    before = fingerprint(client)
    last = checkpoints(client)[-1]["step"]
    assert_error(client.get("/api/frame", params={"step": -1}), 422)
    assert_error(client.get("/api/frame", params={"step": "soon"}), 422)
    body = assert_error(client.get("/api/frame", params={"step": last + 1000}), 404,
                        "unknown_step")
    assert body["field"] == "step"
    body = assert_error(client.get("/api/frame", params={"step": 0, "run": "r99"}), 404,
                        "unknown_run")
    assert body["field"] == "run"
    assert_error(client.get("/api/checkpoints", params={"run": "<script>"}), 422)
    body = assert_error(client.get("/api/frame", params={"step": 0, "example": 10**6}), 422,
                        "invalid_example")
    assert body["field"] == "example"
    assert_error(client.get("/api/gallery", params={"step": 2**60}), 422)
    assert fingerprint(client) == before


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(step=st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                      st.text(max_size=12)),
       kind=st.sampled_from(["frame", "gallery"]))
def test_any_step_is_an_answer_or_a_4xx(client, step, kind):
    response = client.get(f"/api/{kind}", params={"step": step})
    assert response.status_code in (200, 404, 422), response.text
    if response.status_code == 200:
        assert isinstance(response.json()["step"], int)


def test_checkpoint_weights_are_copies(client):
    handlers = client.app.state.runtime.worker.handlers
    first = handlers.past.checkpoints.list("r1")[0]
    net = handlers.trainer.net
    for (_, live, _), kept in zip(net.named_params(), first.params):
        assert not np.shares_memory(live, kept)


def test_a_run_that_starts_over_is_never_shown_an_old_checkpoints_view(fresh_client):
    with ready(fresh_client) as client:
        steps(client, 3)
        before = client.get("/api/frame", params={"step": 2, "example": 0}).json()
        client.post("/api/control", json={"action": "reset"}, headers=presenter())
        client.post("/api/control", json={"action": "pause"}, headers=presenter())
        client.patch("/api/params", json={"learning_rate": 0.5}, headers=presenter())
        steps(client, 3 - checkpoints(client)[-1]["step"])
        after = client.get("/api/frame", params={"step": 2, "example": 0}).json()
        assert after["step"] == 2
        assert after["checkpoint"]["id"] != before["checkpoint"]["id"]
        assert after["layers"][1]["filters"]["grid"] != before["layers"][1]["filters"]["grid"]


def test_a_client_that_takes_no_gzip_gets_the_same_answers(client):
    kept = checkpoints(client)
    for path, params in (("/api/frame", {"step": kept[0]["step"]}),
                         ("/api/gallery", {"step": kept[0]["step"]}),
                         ("/api/checkpoints", {})):
        zipped = client.get(path, params=params, headers={"Accept-Encoding": "gzip"})
        plain = client.get(path, params=params, headers={"Accept-Encoding": "identity"})
        assert zipped.status_code == plain.status_code == 200
        assert "content-encoding" not in plain.headers
        if path != "/api/checkpoints":          # larger than the settings' gzip_min_bytes
            assert zipped.headers["content-encoding"] == "gzip", path
        assert zipped.json() == plain.json(), path
