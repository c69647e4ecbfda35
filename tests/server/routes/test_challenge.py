"""Beat the network over HTTP: GET/POST /api/challenge, GET/DELETE /api/leaderboard, and the
`leaderboard` stream event. Bad input gets a 4xx naming its field and changes nothing."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from server.app import create_app
from tests.server.conftest import (
    TestClient,
    assert_error,
    fingerprint,
    presenter,
    tiny_settings,
    wait_ready,
)
from tests.server.tiny import CLASSES, SIZE, tiny_dataset


@pytest.fixture(scope="module")
def client(module_dir):
    """The module's run, with no rate limit for TestClient's address (one test sets one)."""
    app = create_app(tiny_settings(module_dir, unlimited_clients=("testclient",)))
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


def room(client):
    return client.app.state.challenge_room


def position_of(client, round_id: str) -> int:
    """The test image behind an id (the server never says; the test looks inside)."""
    return room(client).rounds._rounds[round_id].position


def truth_of(client, round_id: str) -> str:
    return CLASSES[int(tiny_dataset().test.labels[position_of(client, round_id)])]


def new_image(client) -> dict:
    response = client.get("/api/challenge")
    assert response.status_code == 200, response.text
    return response.json()


def answer(client, round_id: str, label: str, **extra):
    return client.post("/api/challenge", json={"id": round_id, "label": label, **extra})


def board(client) -> dict:
    response = client.get("/api/leaderboard")
    assert response.status_code == 200, response.text
    return response.json()


def latest_event(client, kind: str) -> dict:
    data = client.app.state.runtime.hub.latest[kind].decode()
    assert data.startswith(f"event: {kind}\ndata: ")
    return json.loads(data.split("data: ", 1)[1])


def same(event, twin) -> bool:
    if isinstance(twin, dict):
        return isinstance(event, dict) and set(event) == set(twin) and all(
            same(event[k], twin[k]) for k in twin)
    if isinstance(twin, list):
        return isinstance(event, list) and len(event) == len(twin) and all(
            same(e, t) for e, t in zip(event, twin))
    if isinstance(twin, float):
        return event == pytest.approx(twin, rel=1e-4, abs=1e-3)
    return event == twin


def test_an_image_comes_without_its_label_and_is_answered_once(client):
    response = client.get("/api/challenge")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert any(name.startswith("convnet_viewer_") for name in client.cookies)
    round_ = response.json()
    assert set(round_) == {"id", "image", "classes", "expires_s"}       # no label, no index
    assert round_["classes"] == list(CLASSES)
    png = base64.b64decode(round_["image"].removeprefix("data:image/png;base64,"))
    pixels = np.asarray(Image.open(io.BytesIO(png)))
    expected = tiny_dataset().test.take(np.array([position_of(client, round_["id"])]))[0]
    assert pixels.shape == (*SIZE, 3) and np.array_equal(pixels, expected)

    truth = truth_of(client, round_["id"])
    guess = CLASSES[1] if truth == CLASSES[0] else CLASSES[0]            # a wrong answer
    before = board(client)
    verdict = answer(client, round_["id"], guess)
    assert verdict.status_code == 200, verdict.text
    verdict = verdict.json()
    assert verdict["correct"] is False and verdict["label"] == truth and verdict["guess"] == guess
    net = verdict["net"]
    assert set(net["probs"]) == set(CLASSES)
    assert sum(net["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    assert net["label"] == max(net["probs"], key=net["probs"].get)
    assert net["p"] == net["probs"][net["label"]] and net["correct"] == (net["label"] == truth)
    # the net's own answer: the same as the worker's predict for that image, now
    direct = client.app.state.runtime.worker.submit(
        "predict", [position_of(client, round_["id"])]).result(30)
    assert net["probs"][CLASSES[0]] == pytest.approx(direct["probs"][0][0], abs=1e-6)
    assert net["step"] == direct["step"]
    after = board(client)
    assert after["answers"] == before["answers"] + 1
    assert after["room"]["correct"] == before["room"]["correct"]
    assert after["net"]["correct"] == before["net"]["correct"] + net["correct"]

    again = assert_error(answer(client, round_["id"], truth), 409, "already_answered")
    assert again["field"] == "id"
    assert board(client)["answers"] == after["answers"]                   # counted once


def test_a_right_answer_is_right(client):
    round_ = new_image(client)
    verdict = answer(client, round_["id"], truth_of(client, round_["id"])).json()
    assert verdict["correct"] is True and verdict["you"]["correct"] >= 1


@pytest.mark.parametrize("body, status, code, field", [
    ({"label": "dark"}, 422, "invalid_challenge", "id"),
    ({"id": "not an id", "label": "dark"}, 422, "invalid_challenge", "id"),
    ({"id": "<script>alert(1)</script>", "label": "dark"}, 422, "invalid_challenge", "id"),
    ({"id": 12, "label": "dark"}, 422, "invalid_challenge", "id"),
    ({"id": "A" * 22, "label": "dark"}, 404, "no_challenge", "id"),
    ({"id": "A" * 22}, 422, "invalid_label", "label"),
    ({"id": "A" * 22, "label": "cat"}, 422, "invalid_label", "label"),
    ({"id": "A" * 22, "label": "<b>dark</b>"}, 422, "invalid_label", "label"),
    ({"id": "A" * 22, "label": 0}, 422, "invalid_label", "label"),
    ({"id": "A" * 22, "label": "x" * 101}, 422, "invalid_label", "label"),
    ({"id": "A" * 22, "label": "dark", "nickname": "a\u202eb"}, 422, "invalid_nickname",
     "nickname"),
    ({"id": "A" * 22, "label": "dark", "nickname": "x" * 25}, 422, "invalid_nickname",
     "nickname"),
    ({"id": "A" * 22, "label": "dark", "nickname": ["x"]}, 422, "invalid_nickname",
     "nickname"),
    ({"id": "A" * 22, "label": "dark", "score": 100}, 422, "invalid_request", "score"),
])
def test_bad_answers_are_refused_naming_the_field_and_change_nothing(client, body, status,
                                                                     code, field):
    before, answers = fingerprint(client), board(client)["answers"]
    refusal = assert_error(client.post("/api/challenge", json=body), status, code)
    assert refusal["field"] == field
    assert fingerprint(client) == before and board(client)["answers"] == answers


def test_a_refused_label_or_nickname_leaves_the_image_to_answer(client):
    round_ = new_image(client)
    assert_error(answer(client, round_["id"], "cat"), 422, "invalid_label")
    assert_error(answer(client, round_["id"], "dark", nickname="\x00"), 422, "invalid_nickname")
    assert answer(client, round_["id"], "dark", nickname="Ada").status_code == 200


def test_another_browser_cannot_answer_an_image(client):
    round_ = new_image(client)
    saved = dict(client.cookies)
    client.cookies.clear()
    assert assert_error(answer(client, round_["id"], "dark"), 404, "no_challenge")["field"] == "id"
    client.cookies.update(saved)
    assert answer(client, round_["id"], "dark").status_code == 200


def test_not_json_or_malformed_bodies_are_4xx(client):
    assert_error(client.post("/api/challenge", content=b"id=x", headers={
        "Content-Type": "application/x-www-form-urlencoded"}), 415)
    assert_error(client.post("/api/challenge", content=b"{", headers={
        "Content-Type": "application/json"}), 400, "invalid_json")
    assert_error(client.post("/api/challenge", json=[1]), 400, "invalid_json")
    assert_error(client.put("/api/challenge", json={}), 405)


@given(body=st.dictionaries(st.sampled_from(["id", "label", "nickname", "x"]),
                            st.one_of(st.none(), st.booleans(), st.integers(),
                                      st.floats(allow_nan=False, allow_infinity=False),
                                      st.text(max_size=40), st.lists(st.integers(),
                                                                     max_size=2)),
                            max_size=4))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_body_gets_an_answer_or_a_4xx_never_a_5xx(client, body):
    response = client.post("/api/challenge", json=body)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        refusal = assert_error(response, response.status_code)
        assert refusal.get("field"), refusal


def test_an_unanswered_image_expires(fresh_client):
    with fresh_client(challenge_ttl_s=0.3) as client:
        wait_ready(client)
        round_ = new_image(client)
        time.sleep(0.5)
        refusal = assert_error(answer(client, round_["id"], "dark"), 410, "challenge_expired")
        assert refusal["field"] == "id"
        assert board(client)["answers"] == 0


def test_a_browser_asking_too_often_gets_429_with_retry_after(fresh_client):
    with fresh_client(challenge_rate=0.5, challenge_burst=3) as client:
        wait_ready(client)
        for _ in range(3):
            new_image(client)
        refused = client.get("/api/challenge")
        assert_error(refused, 429, "too_many_requests")
        assert int(refused.headers["retry-after"]) >= 1
        assert_error(client.post("/api/challenge", json={"id": "A" * 22, "label": "dark"}),
                     429, "too_many_requests")


def test_open_images_are_bounded_per_browser_and_in_all(fresh_client):
    with fresh_client(challenge_open=5, challenge_per_viewer=2) as client:
        wait_ready(client)
        first = [new_image(client)["id"] for _ in range(3)]
        assert_error(answer(client, first[0], "dark"), 404, "no_challenge")     # replaced
        assert answer(client, first[2], "dark").status_code == 200
        for _ in range(6):
            client.cookies.clear()                                           # new browsers
            new_image(client)
        assert len(room(client).rounds) == 5


def test_the_leaderboard_event_is_the_json_twin_and_says_what_it_covers(fresh_client):
    with fresh_client(leaderboard_every_s=0.05) as client:
        wait_ready(client)
        for nickname in ("<img src=x onerror=p=1>", None, "Bo"):
            round_ = new_image(client)
            extra = {"nickname": nickname} if nickname else {}
            assert answer(client, round_["id"], "dark", **extra).status_code == 200
            client.cookies.clear()
        twin = board(client)
        time.sleep(0.3)                          # the throttle's last event goes out
        event = latest_event(client, "leaderboard")
        assert twin["answers"] == 3
        assert same(event, twin)                 # floats rounded on the stream (events.py)
        assert {p["nickname"] for p in twin["top"]} == {"<img src=x onerror=p=1>", "Bo"}
        assert twin["players"] == 3
        covers = twin["covers"]
        assert covers["net"] and covers["run"] == "r1" and covers["from_step"] == 0
        assert covers["first_step"] == covers["last_step"] == 0 and covers["nets"] == 1
        sum_class = sum(row["answers"] for row in twin["per_class"])
        assert sum_class == 3


def test_the_presenter_starts_the_leaderboard_over_at_the_current_step(fresh_client):
    with fresh_client() as client:
        wait_ready(client)
        assert answer(client, new_image(client)["id"], "dark").status_code == 200
        assert_error(client.delete("/api/leaderboard"), 401, "unauthorized")
        assert board(client)["answers"] == 1
        for _ in range(3):
            assert client.post("/api/control", json={"action": "step"},
                               headers=presenter()).status_code == 200
        fresh = client.delete("/api/leaderboard", headers=presenter())
        assert fresh.status_code == 200, fresh.text
        out = fresh.json()
        assert out["answers"] == 0 and out["top"] == [] and out["covers"]["from_step"] == 3
        assert latest_event(client, "leaderboard")["version"] == out["version"]
        verdict = answer(client, new_image(client)["id"], "dark").json()
        assert verdict["net"]["step"] == 3
        assert board(client)["covers"]["first_step"] == 3


def test_many_answers_at_once_share_few_predict_commands(fresh_client):
    with fresh_client(unlimited_clients=("testclient", "127.0.0.1")) as client:
        wait_ready(client)
        app = client.app
        game_ids, cookies = [], []
        for _ in range(24):
            client.cookies.clear()
            game_ids.append(new_image(client)["id"])
            cookies.append("; ".join(f"{k}={v}" for k, v in client.cookies.items()))
        batches_before = room(client).net.batches

        async def all_at_once():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await asyncio.gather(*(
                    c.post("/api/challenge", json={"id": i, "label": "dark"},
                           headers={"Cookie": jar})
                    for i, jar in zip(game_ids, cookies)))

        responses = client.portal.call(all_at_once)
        assert [r.status_code for r in responses] == [200] * 24
        batches = room(client).net.batches - batches_before
        assert batches < 24, batches
        assert board(client)["answers"] == 24
        # the same id twice at once: one answer counts, the other is told so
        client.cookies.clear()
        twice = new_image(client)["id"]
        jar = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        game_ids, cookies = [twice, twice], [jar, jar]
        statuses = sorted(r.status_code for r in client.portal.call(all_at_once))
        assert statuses == [200, 409]
        assert board(client)["answers"] == 25


@pytest.mark.parametrize("poison", [np.nan, np.inf])
def test_a_net_without_finite_probabilities_gets_409_and_the_image_stays(fresh_client, poison):
    with fresh_client() as client:
        wait_ready(client)
        round_ = new_image(client)
        net = client.app.state.runtime.worker.trainer.net    # paused: the worker is idle
        for _, weights, _ in net.named_params():
            weights[...] = poison
        for _ in range(2):                  # not used up: the second answer is no reuse
            assert_error(answer(client, round_["id"], "dark"), 409, "not_finite")
        assert board(client)["answers"] == 0
