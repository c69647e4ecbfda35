"""Runs, forks and races: GET /api/runs, POST /api/fork, PUT /api/runs/active,
DELETE /api/runs/{id}, POST/GET/DELETE /api/race, GET /api/history?run=ID."""

from __future__ import annotations

import time
from contextlib import contextmanager

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.conftest import assert_error, fingerprint, presenter, wait_ready

WAIT_S = 120


@contextmanager
def ready(fresh_client, **changes):
    with fresh_client(**changes) as client:
        wait_ready(client)
        yield client


def steps(client, count: int) -> None:
    for _ in range(count):
        response = client.post("/api/control", json={"action": "step"}, headers=presenter())
        assert response.status_code == 200, response.text


def runs(client) -> dict:
    response = client.get("/api/runs")
    assert response.status_code == 200, response.text
    return response.json()


def fork(client, **body):
    return client.post("/api/fork", json=body, headers=presenter())


def filters_at(client, run: str, step: int) -> str:
    frame = client.get("/api/frame", params={"run": run, "step": step, "example": 0}).json()
    return frame["layers"][1]["filters"]["grid"]


def wait_race(client) -> dict:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        race = client.get("/api/race").json()["race"]
        if race["status"] != "running":
            return race
        time.sleep(0.05)
    raise AssertionError("the race did not end")


def test_a_fork_goes_on_from_its_checkpoint_with_its_own_settings(fresh_client):
    with ready(fresh_client) as client:
        steps(client, 5)
        listing = runs(client)
        assert listing["active"] == "r1" and len(listing["runs"]) == 1
        response = fork(client, step=3, params={"learning_rate": 0.2})
        assert response.status_code == 200, response.text
        assert response.json()["run"] == "r2" and response.json()["from_step"] == 3
        listing = runs(client)
        assert listing["active"] == "r2"
        r1, r2 = listing["runs"]
        assert r2["parent"] == "r1" and r2["from_step"] == 3
        assert r2["params"] == {"learning_rate": 0.2}
        assert r1["status"] == "parked" and r1["last"]["step"] == 5
        assert r2["last"]["step"] == 3
        state = client.get("/api/state").json()
        assert state["settings"]["learning_rate"] == 0.2
        # the fork starts from the parent's weights at step 3, then goes its own way
        assert filters_at(client, "r2", 3) == filters_at(client, "r1", 3)
        steps(client, 2)
        assert runs(client)["runs"][1]["last"]["step"] == 5
        assert filters_at(client, "r2", 5) != filters_at(client, "r1", 5)
        # the parent's history stays whole; the fork's starts at the branch
        parent = client.get("/api/history", params={"run": "r1"}).json()
        assert [p["step"] for p in parent["points"]][-1] == 5
        mine = client.get("/api/history").json()
        assert [p["step"] for p in mine["points"]] == [4, 5]
        assert any("fork of r1 at step 3" in m["text"] for m in mine["markers"])


def test_any_run_can_be_active_again_and_parked_runs_can_be_deleted(fresh_client):
    with ready(fresh_client) as client:
        steps(client, 2)
        assert fork(client, step=1, params={"momentum": 0.5}).status_code == 200
        response = client.put("/api/runs/active", json={"run": "r1"}, headers=presenter())
        assert response.status_code == 200, response.text
        assert runs(client)["active"] == "r1"
        assert client.get("/api/state").json()["settings"]["momentum"] != 0.5
        body = assert_error(client.delete("/api/runs/r1", headers=presenter()), 409,
                            "active_run")
        assert body["field"] == "run"
        assert client.delete("/api/runs/r2", headers=presenter()).status_code == 200
        assert [r["id"] for r in runs(client)["runs"]] == ["r1"]
        assert_error(client.get("/api/history", params={"run": "r2"}), 404, "unknown_run")
        assert_error(client.get("/api/checkpoints", params={"run": "r2"}), 404, "unknown_run")


def test_bad_forks_name_the_field_and_change_nothing(fresh_client):
    with ready(fresh_client, max_runs=2) as client:
        steps(client, 2)
        before = fingerprint(client), runs(client)
        cases = [
            ({"step": 50}, 404, "unknown_step", "step"),
            ({"step": -1}, 422, "invalid_step", "step"),
            ({"step": 1.5}, 422, "invalid_step", "step"),
            ({}, 422, "invalid_step", "step"),
            ({"step": 1, "params": {"learning_rate": -1}}, 422, "invalid_setting",
             "params.learning_rate"),
            ({"step": 1, "params": {"warp": 9}}, 422, "invalid_request", "params.warp"),
            ({"step": 1, "params": {"method": "magic"}}, 422, "invalid_setting",
             "params.method"),
            ({"step": 1, "run": "r9"}, 404, "unknown_run", "run"),
            ({"step": 1, "run": "<script>"}, 422, "invalid_run", "run"),
            ({"step": 1, "params": {"batch_size": 10**9}}, 422, "invalid_setting",
             "params.batch_size"),
        ]
        for body, status, code, field in cases:
            error = assert_error(fork(client, **body), status, code)
            assert error["field"] == field, (body, error)
        assert (fingerprint(client), runs(client)) == before
        assert fork(client, step=1).status_code == 200        # the second of two runs
        error = assert_error(fork(client, step=1), 409, "too_many_runs")
        assert error["field"] == "step"
        assert_error(client.put("/api/runs/active", json={"run": "r7"}, headers=presenter()),
                     404, "unknown_run")
        assert_error(client.put("/api/runs/active", json={"run": 7}, headers=presenter()),
                     422, "invalid_run")
        assert_error(client.delete("/api/runs/x1", headers=presenter()), 422)
        assert_error(fork(client, step=1).__class__ and client.post(
            "/api/fork", json={"step": 1}), 401)


def test_a_fork_past_the_memory_bound_is_refused(fresh_client):
    with ready(fresh_client) as client:
        handlers = client.app.state.runtime.worker.handlers
        one = handlers.past.checkpoints.list("r1")[0].nbytes
        handlers.past.checkpoints.max_bytes = 3 * one      # room for one run's two only
        error = assert_error(fork(client, step=0), 409, "memory_bound")
        assert error["field"] == "step" and "checkpoint-mb" in error["detail"]
        assert len(runs(client)["runs"]) == 1


def test_a_race_trains_its_runs_in_turns_and_names_a_winner(fresh_client):
    with ready(fresh_client) as client:
        response = client.post("/api/race", json={"steps": 6}, headers=presenter())
        assert response.status_code == 200, response.text
        race = response.json()["race"]
        assert [r["name"] for r in race["runs"]] == ["sgd", "momentum", "nesterov", "adagrad",
                                                     "adadelta", "adam"]
        ids = [r["run"] for r in race["runs"]]
        assert runs(client)["active"] == ids[0]
        # the same initial weights for every racer
        first = filters_at(client, ids[0], 0)
        assert all(filters_at(client, run, 0) == first for run in ids[1:])
        race = wait_race(client)
        assert race["status"] == "finished"
        assert all(r["steps"] == 6 and r["status"] == "done" for r in race["runs"])
        assert all(0 <= r["test_acc"] <= 1 for r in race["runs"])
        best = max(r["test_acc"] for r in race["runs"])      # ties: the lower test loss
        assert {r["run"]: r["test_acc"] for r in race["runs"]}[race["winner"]] == best
        listing = runs(client)
        assert {r["id"]: r["last"]["step"] for r in listing["runs"]}[ids[-1]] == 6
        methods = {r["id"]: r["params"].get("method") for r in listing["runs"]}
        assert methods[ids[-1]] == "adam"
        assert client.get("/api/state").json()["status"] == "paused"


def test_a_race_of_chosen_runs_for_equal_time_can_be_stopped(fresh_client):
    with ready(fresh_client) as client:
        body = {"equal": "time", "seconds": 600, "runs": [
            {"name": "slow", "params": {"learning_rate": 0.001}},
            {"name": "fast", "params": {"learning_rate": 0.1}}]}
        response = client.post("/api/race", json=body, headers=presenter())
        assert response.status_code == 200, response.text
        assert_error(client.post("/api/race", json=body, headers=presenter()), 409,
                     "race_running")
        assert_error(client.post("/api/control", json={"action": "reset"},
                                 headers=presenter()), 409, "race_running")
        assert_error(client.put("/api/net", json={"preset": "convnetjs"},
                                headers=presenter()), 409, "race_running")
        deadline = time.monotonic() + WAIT_S
        while min(r["steps"] for r in client.get("/api/race").json()["race"]["runs"]) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stopped = client.delete("/api/race", headers=presenter())
        assert stopped.status_code == 200, stopped.text
        race = client.get("/api/race").json()["race"]
        assert race["status"] == "stopped" and race["winner"] is None
        assert_error(client.delete("/api/race", headers=presenter()), 409, "no_race")


def test_bad_races_name_the_field_and_change_nothing(fresh_client):
    with ready(fresh_client, max_train_bytes=2_000_000) as client:
        before = runs(client)
        one = {"params": {"learning_rate": 0.01}}
        cases = [
            ({"runs": [one]}, 422, "invalid_race", "runs"),
            ({"runs": [one] * 7}, 422, "invalid_race", "runs"),
            ({"runs": [one, {"params": {"learning_rate": 0}}]}, 422, "invalid_race",
             "runs.1.params.learning_rate"),
            ({"runs": [one, {"name": ""}]}, 422, "invalid_race", "runs.1.name"),
            ({"runs": [one, {"net": [{"type": "input"}]}]}, 422, "invalid_spec",
             "runs.1.net"),
            ({"equal": "distance"}, 422, "invalid_race", "equal"),
            ({"steps": 0}, 422, "invalid_race", "steps"),
            ({"seconds": -1, "equal": "time"}, 422, "invalid_race", "seconds"),
            ({"runs": [one] * 6}, 422, "over_budget", "runs"),
        ]
        for body, status, code, field in cases:
            error = assert_error(client.post("/api/race", json=body, headers=presenter()),
                                 status, code)
            assert error["field"] == field, (body, error)
        assert runs(client) == before


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["step", "params", "run", "x"]),
                            st.one_of(st.integers(-2**60, 2**60),
                                      st.floats(allow_nan=False, allow_infinity=False),
                                      st.text(max_size=8),
                                      st.none(), st.dictionaries(
                                          st.sampled_from(["learning_rate", "momentum", "y"]),
                                          st.one_of(st.floats(allow_nan=False,
                                                              allow_infinity=False),
                                                    st.integers(), st.text(
                                              max_size=4))))))
def test_any_fork_body_is_an_answer_or_a_4xx(client, body):
    response = client.post("/api/fork", json=body, headers=presenter())
    assert response.status_code in (200, 400, 404, 409, 422), response.text


def test_a_single_runs_figures_stay_current(fresh_client):
    with ready(fresh_client) as client:
        steps(client, 3)
        deadline = time.monotonic() + WAIT_S
        while runs(client)["runs"][0]["last"]["step"] != 3:
            assert time.monotonic() < deadline, runs(client)
            time.sleep(0.05)
        assert len(runs(client)["runs"]) == 1


def test_whenever_a_run_is_active_its_checkpoints_are_published(fresh_client):
    with ready(fresh_client) as client:
        steps(client, 3)
        handlers = client.app.state.runtime.worker.handlers
        published = client.app.state.runtime.published
        seen = []
        publish_all = handlers.publish_all

        def checked_publish_all(*args, **kwargs):
            # what a request arriving now would read: the active run and its checkpoints
            seen.append(published.active_run in published.checkpoints)
            return publish_all(*args, **kwargs)

        handlers.publish_all = checked_publish_all
        assert fork(client, step=2, params={"learning_rate": 0.2}).status_code == 200
        active = client.put("/api/runs/active", json={"run": "r1"}, headers=presenter())
        assert active.status_code == 200, active.text
        assert seen and all(seen), seen
        assert client.get("/api/checkpoints").status_code == 200
