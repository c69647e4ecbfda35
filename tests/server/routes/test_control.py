"""POST /api/control and PATCH /api/params: changes apply between steps, all or nothing."""

from __future__ import annotations

import json
import logging
import time

import pytest

from server.auth import flat_routes
from server.models import ParamsBody
from tests.server.conftest import assert_error, fingerprint, presenter, wait_ready

BAD_CONTROL = [
    ({"action": "jump"}, 422, "invalid_action"),
    ({"action": 5}, 422, "invalid_action"),
    ({"action": ["pause"]}, 422, "invalid_action"),
    ({}, 422, "invalid_action"),
    ({"action": "pause", "force": True}, 422, "invalid_request"),
]
BAD_PARAMS = [
    ({"learning_rate": -1}, "learning_rate"),
    ({"learning_rate": 0}, "learning_rate"),
    ({"learning_rate": "fast"}, "learning_rate"),
    ({"learning_rate": True}, "learning_rate"),
    ({"learning_rate": None}, "learning_rate"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"momentum": 1.5}, "momentum"),
    ({"method": "magic"}, "method"),
    ({"warp_speed": 9}, "warp_speed"),
    ({"seed": 3}, "seed"),
    ({"learning_rate": 0.5, "batch_size": -4}, "batch_size"),   # nothing of it applies
]


@pytest.mark.parametrize("body,status,code", BAD_CONTROL)
def test_bad_control_is_refused_and_changes_nothing(client, body, status, code):
    before = fingerprint(client)
    assert_error(client.post("/api/control", json=body, headers=presenter()), status, code)
    assert fingerprint(client) == before


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'{"action": NaN}', b"null",
                                 b'{"action": "pause"'])
def test_malformed_bodies_are_400(client, raw):
    before = fingerprint(client)
    for method, path in (("POST", "/api/control"), ("PATCH", "/api/params")):
        response = client.request(method, path, content=raw,
                                  headers=presenter(**{"Content-Type": "application/json"}))
        assert_error(response, 400, "invalid_json")
    assert fingerprint(client) == before


@pytest.mark.parametrize("body,field", BAD_PARAMS)
def test_bad_params_are_refused_naming_the_field(client, body, field):
    before = fingerprint(client)
    error = assert_error(client.patch("/api/params", json=body, headers=presenter()), 422)
    assert error["field"] == field
    assert fingerprint(client) == before


def test_non_finite_numbers_are_refused(client):
    before = fingerprint(client)
    response = client.patch("/api/params", content=b'{"learning_rate": 1e400}',
                            headers=presenter(**{"Content-Type": "application/json"}))
    assert assert_error(response, 422)["field"] == "learning_rate"
    assert_error(client.patch("/api/params", json={}, headers=presenter()), 422)
    assert fingerprint(client) == before


def test_params_change_the_settings(client):
    old = client.get("/api/state").json()["settings"]["learning_rate"]
    response = client.patch("/api/params", json={"learning_rate": 0.02, "momentum": 0.5},
                            headers=presenter())
    assert response.status_code == 200, response.text
    settings = response.json()["settings"]
    assert settings["learning_rate"] == 0.02 and settings["momentum"] == 0.5
    assert client.get("/api/state").json()["settings"]["learning_rate"] == 0.02
    client.patch("/api/params", json={"learning_rate": old, "momentum": 0.9}, headers=presenter())


def test_lookahead_and_a_linear_schedule_are_settings(client):
    before = client.get("/api/state").json()["settings"]
    response = client.patch("/api/params", json={"lookahead": 0.774, "lookahead_every": 80,
                                                  "schedule": "linear", "total_steps": 500},
                            headers=presenter())
    assert response.status_code == 200, response.text
    settings = response.json()["settings"]
    assert (settings["lookahead"], settings["lookahead_every"]) == (0.774, 80)
    assert (settings["schedule"], settings["total_steps"]) == ("linear", 500)
    for body in ({"lookahead": 1.0}, {"lookahead_every": 0}, {"schedule": "linearly"}):
        assert_error(client.patch("/api/params", json=body, headers=presenter()), 422)
    client.patch("/api/params", json={k: before[k] for k in ("lookahead", "lookahead_every",
                                                             "schedule", "total_steps")},
                 headers=presenter())


def test_step_pause_resume(client):
    step = client.get("/api/state").json()["metrics"]["step"]
    response = client.post("/api/control", json={"action": "step"}, headers=presenter())
    assert response.json() == {"status": "paused"}
    state = client.get("/api/state").json()
    assert state["metrics"]["step"] == step + 1 and state["status"] == "paused"
    assert client.get("/api/frame").json()["step"] == step + 1
    assert client.post("/api/control", json={"action": "resume"},
                       headers=presenter()).json() == {"status": "training"}
    deadline = time.monotonic() + 30
    while client.get("/api/state").json()["metrics"]["step"] < step + 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert client.post("/api/control", json={"action": "pause"},
                       headers=presenter()).json() == {"status": "paused"}
    paused_at = client.get("/api/state").json()["metrics"]["step"]
    time.sleep(0.2)
    assert client.get("/api/state").json()["metrics"]["step"] == paused_at


def test_reset_clears_the_run(fresh_client):
    with fresh_client() as client:
        wait_ready(client)
        for _ in range(3):
            client.post("/api/control", json={"action": "step"}, headers=presenter())
        assert client.get("/api/history").json()["points"]
        client.post("/api/control", json={"action": "reset"}, headers=presenter())
        state = client.get("/api/state").json()
        assert state["metrics"]["step"] == 0 and state["status"] == "paused"
        assert client.get("/api/history").json()["points"] == []


def test_divergence_pauses_and_keeps_finite_weights(fresh_client):
    with fresh_client(hyperparams={"batch_size": 4, "learning_rate": 1e30,
                                   "method": "sgd"}) as client:
        wait_ready(client)
        client.post("/api/control", json={"action": "resume"}, headers=presenter())
        deadline = time.monotonic() + 30
        while (state := client.get("/api/state").json())["status"] != "diverged":
            assert time.monotonic() < deadline, state["status"]
            time.sleep(0.02)
        metrics = state["metrics"]
        assert metrics["diverged"]["message"].startswith("training diverged")
        step = metrics["step"]
        time.sleep(0.2)
        assert client.get("/api/state").json()["metrics"]["step"] == step   # paused
        assert b"NaN" not in client.get("/api/snapshot", headers=presenter()).content
        # a lower learning rate clears it; the weights a step at 1e30 left are finite but
        # huge, so a reset comes first, then training goes on
        client.patch("/api/params", json={"learning_rate": 0.01}, headers=presenter())
        assert client.get("/api/state").json()["status"] == "paused"
        client.post("/api/control", json={"action": "reset"}, headers=presenter())
        client.post("/api/control", json={"action": "resume"}, headers=presenter())
        deadline = time.monotonic() + 30
        while client.get("/api/state").json()["metrics"]["step"] < 5:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert client.get("/api/state").json()["status"] == "training"


@pytest.mark.parametrize("body,code", [
    ({}, "invalid_example"), ({"index": 0, "extra": 1}, "invalid_request"),
    ({"index": "3"}, "invalid_example"), ({"index": True}, "invalid_example"),
    ({"index": 2.5}, "invalid_example"), ({"index": -1}, "invalid_example"),
    ({"index": 10**9}, "invalid_example"),
])
def test_a_bad_example_is_refused_and_changes_nothing(client, body, code):
    before = fingerprint(client)
    frame = client.get("/api/frame").json()
    assert_error(client.put("/api/example", json=body, headers=presenter()), 422, code)
    assert fingerprint(client) == before
    assert client.get("/api/frame").json()["pinned"] == frame["pinned"]


def test_the_presenter_pins_the_network_view_to_a_test_image(client):
    assert client.put("/api/example", json={"index": 5}).status_code == 401
    response = client.put("/api/example", json={"index": 5}, headers=presenter())
    assert response.status_code == 200, response.text
    assert response.json()["frame"]["example"]["index"] == 5
    frame = client.get("/api/frame").json()
    assert frame["pinned"] is True and frame["example"]["index"] == 5
    response = client.put("/api/example", json={"index": None}, headers=presenter())
    assert response.status_code == 200 and response.json()["frame"]["pinned"] is False


JSON_ROUTES = [("POST", "/api/control", {"action": "resume"}),
               ("PATCH", "/api/params", {"learning_rate": 0.5}),
               ("PUT", "/api/example", {"index": 1}),
               ("PUT", "/api/net", {"preset": "convnetjs"}),
               ("POST", "/api/net/check", {"preset": "convnetjs"}),
               ("POST", "/api/pretrained", {"name": "convnetjs"})]


@pytest.mark.parametrize("method,path,body", JSON_ROUTES)
def test_json_routes_refuse_other_content_types(client, method, path, body):
    # A web page can make any visitor's browser send a text/plain or form POST without
    # asking ("simple requests"): one such body resumed the presenter's paused run.
    before = fingerprint(client)
    raw = json.dumps(body).encode()
    for content_type in ("text/plain", "text/plain;charset=UTF-8",
                         "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                         None):
        headers = presenter(**({"Content-Type": content_type} if content_type else {}))
        response = client.request(method, path, content=raw, headers=headers)
        assert_error(response, 415, "unsupported_media_type")
    assert fingerprint(client) == before
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        headers = presenter(**{"Content-Type": content_type})
        response = client.request(method, path, content=b"{\"nope\": 1}", headers=headers)
        assert_error(response, 422)                       # read as JSON, then refused


PARAM_FIELDS = sorted(ParamsBody.model_fields)


@pytest.mark.parametrize("field", PARAM_FIELDS)
def test_numbers_out_of_range_are_422_naming_the_field(client, field):
    before = fingerprint(client)
    for number in (b"1" + b"0" * 400, b"-" + b"9" * 4301, b"9007199254740993", b"1e400",
                   b"-1e309"):
        response = client.patch("/api/params", content=b'{"%s": %s}' % (field.encode(), number),
                                headers=presenter(**{"Content-Type": "application/json"}))
        assert assert_error(response, 422)["field"] == field, (field, number)
    assert fingerprint(client) == before


@pytest.mark.parametrize("body,field", [({"batch_size": 4.0}, "batch_size"),
                                        ({"shift": True}, "shift"), ({"flip": 1}, "flip"),
                                        ({"history_points": 100_000}, "history_points"),
                                        ({"method": "adam", "warp": 9}, "warp"),
                                        ({"eps": "1e-8"}, "eps"), ({"window": None}, "window")])
def test_params_have_exact_types_and_bounds(client, body, field):
    before = fingerprint(client)
    error = assert_error(client.patch("/api/params", json=body, headers=presenter()), 422)
    assert error["field"] == field, error
    assert fingerprint(client) == before


def test_every_setting_of_the_engine_has_a_field_and_eps_may_be_null(client):
    from engine.optim.hyperparams import FIELDS
    from engine.train.options import OPTION_FIELDS
    assert set(ParamsBody.model_fields) == set(FIELDS) | OPTION_FIELDS
    response = client.patch("/api/params", json={"eps": None}, headers=presenter())
    assert response.status_code == 200 and response.json()["settings"]["eps"] is None


def test_the_openapi_schema_documents_every_body_exactly(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]

    def body_of(path, method):
        content = spec["paths"][path][method]["requestBody"]["content"]
        assert list(content) == ["application/json"], (path, content)
        ref = content["application/json"]["schema"]
        ref = ref.get("$ref") or next(s["$ref"] for s in ref["anyOf"] if "$ref" in s)
        return schemas[ref.rsplit("/", 1)[1]]

    control = body_of("/api/control", "post")
    assert control["additionalProperties"] is False and control["required"] == ["action"]
    assert control["properties"]["action"]["enum"] == ["pause", "resume", "step", "reset",
                                                       "restart_schedule"]
    params = body_of("/api/params", "patch")
    assert params["additionalProperties"] is False
    batch = params["properties"]["batch_size"]["anyOf"][0]
    assert batch == {"type": "integer", "minimum": 1, "maximum": 1024}
    assert "adam" in params["properties"]["method"]["anyOf"][0]["enum"]
    assert params["properties"]["schedule"]["anyOf"][0]["enum"] == ["constant", "step", "cosine",
                                                                    "linear"]
    assert params["properties"]["learning_rate"]["anyOf"][0]["exclusiveMinimum"] == 0
    net = body_of("/api/net", "put")
    assert net["additionalProperties"] is False and set(net["properties"]) == {"spec", "preset"}
    assert len(net["properties"]["spec"]["oneOf"]) == 3
    assert body_of("/api/example", "put")["required"] == ["index"]
    assert set(body_of("/api/pretrained", "post")["properties"]["name"]["enum"]) == {
        "cifar_resnet", "convnetjs", "speedrun"}
    assert set(body_of("/api/net/check", "post")) == set(net)
    assert not [path for path, route in flat_routes(client.app.routes)   # no hand-written
                if getattr(route, "openapi_extra", None)]                # documents left


def test_a_batch_over_the_servers_training_budget_is_refused_with_what_fits(fresh_client):
    # The tiny net needs about 12 kB per image: a 5 MB budget fits about 300 of them.
    with fresh_client(max_train_bytes=5_000_000) as client:
        wait_ready(client)
        before = fingerprint(client)
        response = client.patch("/api/params", json={"batch_size": 1000}, headers=presenter())
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["field"] == "batch_size"
        assert "the largest batch that fits is" in body["detail"]
        largest = int(body["detail"].rsplit("the largest batch that fits is", 1)[1]
                      .split()[0].strip(".,:;").replace(",", ""))
        assert 4 <= largest < 1000
        assert fingerprint(client) == before
        fits = client.patch("/api/params", json={"batch_size": largest}, headers=presenter())
        assert fits.status_code == 200, fits.text


def _steps(client, count: int) -> dict:
    for _ in range(count):
        client.post("/api/control", json={"action": "step"}, headers=presenter())
    return client.get("/api/state").json()


def test_a_typed_rate_after_the_schedule_ended_is_the_rate_used(fresh_client, caplog):
    # As after loading a shipped net: its cosine has ended and the rate is 0.
    with fresh_client(hyperparams={"batch_size": 4, "learning_rate": 0.05,
                                   "schedule": "cosine", "total_steps": 3}) as client:
        wait_ready(client)
        state = _steps(client, 5)
        assert state["metrics"]["lr"] == 0 and state["settings"]["schedule_start"] == 0
        with caplog.at_level(logging.INFO, "server"):
            response = client.patch("/api/params", json={"learning_rate": 0.005},
                                    headers=presenter())
        assert response.status_code == 200, response.text
        assert response.json()["settings"]["schedule_start"] == 5
        state = client.get("/api/state").json()
        assert state["metrics"]["lr"] == state["settings"]["learning_rate"] == 0.005
        assert state["settings"]["schedule_start"] == 5
        assert ("set learning_rate to 0.005; the cosine schedule restarts at step 5, without "
                "warmup, so that the learning rate is 0.005 from here") in caplog.messages
        state = _steps(client, 1)                 # and the cosine decays from there
        assert 0 < state["metrics"]["lr"] < 0.005


def test_restart_schedule_counts_from_the_current_step(fresh_client, caplog):
    with fresh_client(hyperparams={"batch_size": 4, "learning_rate": 0.05, "warmup_steps": 2,
                                   "schedule": "cosine", "total_steps": 4}) as client:
        wait_ready(client)
        assert _steps(client, 6)["metrics"]["lr"] == 0
        with caplog.at_level(logging.INFO, "server"):
            response = client.post("/api/control", json={"action": "restart_schedule"},
                                   headers=presenter())
        assert response.status_code == 200 and response.json() == {"status": "paused"}
        state = client.get("/api/state").json()
        assert state["settings"]["schedule_start"] == 6
        assert state["metrics"]["lr"] == 0.025                 # warmup again: 1 of 2
        assert any(m.startswith("the cosine learning-rate schedule restarts from step 6")
                   for m in caplog.messages)
        assert _steps(client, 1)["metrics"]["lr"] == 0.05      # then the cosine's start


def test_the_schedule_control_switches_and_sizes_the_schedule(fresh_client):
    with fresh_client() as client:
        wait_ready(client)
        _steps(client, 3)
        response = client.patch("/api/params", json={"schedule": "step", "step_size": 2,
                                                      "gamma": 0.5}, headers=presenter())
        assert response.status_code == 200, response.text
        assert response.json()["settings"]["schedule_start"] == 3
        assert client.get("/api/state").json()["metrics"]["lr"] == 0.05
        assert _steps(client, 2)["metrics"]["lr"] == 0.025
        response = client.patch("/api/params", json={"schedule": "cosine", "total_steps": 50},
                                headers=presenter())
        settings = response.json()["settings"]
        assert (settings["schedule"], settings["total_steps"]) == ("cosine", 50)
        assert settings["schedule_start"] == 5


def test_reset_after_a_divergence_trains_and_a_presenters_pause_stays(fresh_client, caplog):
    with fresh_client(hyperparams={"batch_size": 4, "learning_rate": 1e30,
                                   "method": "sgd"}) as client:
        wait_ready(client)
        client.post("/api/control", json={"action": "resume"}, headers=presenter())
        deadline = time.monotonic() + 30
        while client.get("/api/state").json()["status"] != "diverged":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with caplog.at_level(logging.INFO, "server"):
            response = client.post("/api/control", json={"action": "reset"},
                                   headers=presenter())
        assert response.json() == {"status": "training"}       # no second click needed
        assert "reset: fresh weights; training" in caplog.messages
        # (at 1e30 it diverges again at once: a lower rate, and it trains on)
        client.patch("/api/params", json={"learning_rate": 0.01}, headers=presenter())
        client.post("/api/control", json={"action": "reset"}, headers=presenter())
        deadline = time.monotonic() + 30
        while client.get("/api/state").json()["metrics"]["step"] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # The presenter pauses, then resets: it stays paused, and the log says why.
        client.post("/api/control", json={"action": "pause"}, headers=presenter())
        caplog.clear()
        with caplog.at_level(logging.INFO, "server"):
            response = client.post("/api/control", json={"action": "reset"},
                                   headers=presenter())
        assert response.json() == {"status": "paused"}
        assert "reset: fresh weights; paused (press Resume)" in caplog.messages
        state = client.get("/api/state").json()
        assert state["status"] == "paused" and state["metrics"]["step"] == 0
