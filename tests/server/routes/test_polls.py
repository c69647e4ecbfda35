"""Live questions over HTTP: the presenter asks, browsers answer (one answer per browser per
question, changeable until it closes), the presenter closes and reveals; every bad input is a
4xx in the one error shape naming its field, and changes neither the run nor the question."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.questions import MAX_OPTION_CHARS, MAX_QUESTION_CHARS
from tests.server.conftest import assert_error, fingerprint, presenter


def ask(client, **body):
    response = client.post("/api/poll", json=body, headers=presenter())
    assert response.status_code == 200, response.text
    return response.json()


def answer_as(client, viewer_cookie, option, **extra):
    """Answer as one browser: its cookie jar holds only its own viewer cookie (or none)."""
    client.cookies.clear()
    if viewer_cookie is not None:
        client.cookies.set(*viewer_cookie)
    response = client.post("/api/poll/answer", json={"option": option, **extra})
    cookie = next(((c.name, c.value) for c in client.cookies.jar
                   if c.name.startswith("convnet_viewer")), viewer_cookie)
    client.cookies.clear()
    return response, cookie


@pytest.fixture(autouse=True)
def fresh_limits(client):
    """Each test gets the answer rate limit afresh (the TestClient is one address)."""
    client.app.state.poll_answers = None
    client.app.state.polls = None
    yield


def test_ask_answer_change_and_reveal(client):
    poll = ask(client, kind="output_size", layer=1)
    assert poll["open"] and poll["kind"] == "output_size" and len(poll["options"]) == 4
    assert "answer" not in poll and "explain" not in poll          # revealed only on close
    assert "8×8×3 input" in poll["question"] and "4 filters of 3×3" in poll["question"]
    right = poll["options"].index("8×8×4")
    first, a = answer_as(client, None, right)
    assert first.status_code == 200, first.text
    assert first.json() == {"id": poll["id"], "option": right, "total": 1}
    assert a is not None                               # the browser got its viewer cookie
    wrong = (right + 1) % 4
    second, b = answer_as(client, None, wrong)
    assert second.json()["total"] == 2 and b != a
    changed, same = answer_as(client, a, wrong, poll=poll["id"])   # a changes its mind
    assert changed.json()["total"] == 2 and same == a
    client.cookies.set(*a)
    twin = client.get("/api/poll").json()
    client.cookies.clear()
    assert twin["poll"]["yours"] == wrong and twin["poll"]["counts"][wrong] == 2
    assert twin["poll"]["total"] == 2 and sum(twin["poll"]["counts"]) == 2
    assert twin["choices"]["output_size"] == ["1", "3"]        # the conv and the pool
    closed = client.delete("/api/poll", headers=presenter())
    assert closed.status_code == 200, closed.text
    reveal = closed.json()
    assert reveal["answer"] == right and reveal["counts"][wrong] == 2 and reveal["total"] == 2
    assert "(8 − 3 + 2·1)/1 + 1 = 8" in reveal["explain"]
    late, _ = answer_as(client, a, right)
    assert_error(late, 409, "no_open_question")
    last = client.get("/api/poll").json()["poll"]
    assert not last["open"] and last["answer"] == right and last["yours"] is None


def test_a_new_question_replaces_the_open_one_and_old_answers_are_refused(client):
    old = ask(client, kind="custom", question="Which?", options=["a", "b"], answer=1)
    new = ask(client, kind="params", layer="1")
    response, _ = answer_as(client, None, 0, poll=old["id"])
    body = assert_error(response, 409, "question_changed")
    assert body["field"] == "poll"
    response, _ = answer_as(client, None, 0, poll=new["id"])
    assert response.status_code == 200
    reveal = client.delete("/api/poll", headers=presenter()).json()
    assert new["options"][reveal["answer"]] == "112"           # 4x3x3x3+4 from the calculator


def test_custom_text_is_kept_as_sent_and_answer_may_be_absent(client):
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    poll = ask(client, kind="custom", question=hostile, options=[hostile, "&amp; b"])
    assert poll["question"] == hostile and poll["options"] == [hostile, "&amp; b"]
    reveal = client.delete("/api/poll", headers=presenter()).json()
    assert reveal["answer"] is None


def test_predict_asks_what_the_net_says(client):
    poll = ask(client, kind="predict", index=3)
    assert poll["has_image"] and poll["image"] and "#3" in poll["question"]
    probs = client.app.state.runtime.worker.submit("predict", [3]).result(30)["probs"][0]
    reveal = client.delete("/api/poll", headers=presenter()).json()
    assert poll["options"][reveal["answer"]] == ("dark", "light")[int(np.argmax(probs))]
    assert reveal["truth"] in ("dark", "light") and reveal["position"] == 3


def test_the_stream_event_has_no_picture_and_no_one_answer(client):
    poll = ask(client, kind="predict")
    hub = client.app.state.runtime.hub
    latest = hub.latest["poll"].decode()
    assert poll["id"] in latest and '"image"' not in latest and '"yours"' not in latest
    assert '"has_image":true' in latest.replace(" ", "")


BAD_BODIES = [
    ({"kind": "nonsense", "layer": 1}, "kind"),
    ({"kind": "output_size"}, "layer"),
    ({"kind": "output_size", "layer": -1}, "layer"),
    ({"kind": "output_size", "layer": "1; drop"}, "layer"),
    ({"kind": "output_size", "layer": 1.0}, "layer"),
    ({"kind": "output_size", "layer": 1, "question": "x"}, "question"),
    ({"kind": "params", "layer": 1, "bogus": 1}, "bogus"),
    ({"kind": "predict", "index": -2}, "index"),
    ({"kind": "predict", "layer": 1}, "layer"),
    ({"kind": "custom", "options": ["a", "b"]}, "question"),
    ({"kind": "custom", "question": "   ", "options": ["a", "b"]}, "question"),
    ({"kind": "custom", "question": "q"}, "options"),
    ({"kind": "custom", "question": "q", "options": ["a"]}, "options"),
    ({"kind": "custom", "question": "q", "options": list("abcdefg")}, "options"),
    ({"kind": "custom", "question": "q", "options": ["a", " "]}, "options.1"),
    ({"kind": "custom", "question": "q", "options": ["a", "a "]}, "options.1"),
    ({"kind": "custom", "question": "q", "options": ["a", 3]}, "options.1"),
    ({"kind": "custom", "question": "q", "options": ["a", "b"], "answer": 2}, "answer"),
    ({"kind": "custom", "question": "q" * (MAX_QUESTION_CHARS + 1), "options": ["a", "b"]},
     "question"),
    ({"kind": "custom", "question": "q", "options": ["a", "b" * (MAX_OPTION_CHARS + 1)]},
     "options.1"),
]


@pytest.mark.parametrize("body, field", BAD_BODIES)
def test_bad_questions_are_refused_naming_the_field(client, body, field):
    ask(client, kind="custom", question="still open?", options=["yes", "no"])
    before = fingerprint(client), client.get("/api/poll").json()
    refused = assert_error(client.post("/api/poll", json=body, headers=presenter()), 422)
    assert refused["field"] == field, refused
    assert (fingerprint(client), client.get("/api/poll").json()) == before


@pytest.mark.parametrize("layer, words", [(2, "type relu"), (4, "type fc"), (5, "type softmax"), (99, "no layer 99"),
                                          ("1.layers.0", "no layer 1.layers.0")])
def test_a_layer_the_kind_does_not_fit_is_refused(client, layer, words):
    for kind in ("output_size", "stride_fits"):
        body = assert_error(client.post("/api/poll", json={"kind": kind, "layer": layer},
                                        headers=presenter()), 422, "invalid_layer")
        assert body["field"] == "layer" and words in body["detail"]


def test_predict_index_beyond_the_test_set(client):
    body = assert_error(client.post("/api/poll", json={"kind": "predict", "index": 10},
                                    headers=presenter()), 422, "invalid_example")
    assert body["field"] == "index" and "0..9" in body["detail"]


def test_only_the_presenter_asks_and_closes(client):
    assert_error(client.post("/api/poll", json={"kind": "params", "layer": 1}), 401)
    ask(client, kind="params", layer=1)
    assert_error(client.delete("/api/poll"), 401)
    assert client.get("/api/poll").json()["poll"]["open"]


@pytest.mark.parametrize("body, field", [({"option": 4}, "option"), ({"option": -1}, "option"),
                                         ({"option": "1"}, "option"), ({"option": True}, "option"),
                                         ({"option": 0, "poll": "<b>"}, "poll"),
                                         ({"option": 0, "who": "me"}, "who"), ({}, "option")])
def test_bad_answers_are_refused_naming_the_field(client, body, field):
    ask(client, kind="params", layer=1)
    refused = assert_error(client.post("/api/poll/answer", json=body), 422)
    assert refused["field"] == field
    assert client.get("/api/poll").json()["poll"]["total"] == 0


def test_nothing_to_answer_or_close(client):
    assert_error(client.post("/api/poll/answer", json={"option": 0}), 409, "no_open_question")
    assert_error(client.delete("/api/poll", headers=presenter()), 409, "no_open_question")
    assert client.get("/api/poll").json()["poll"] is None


def test_answers_are_rate_limited_per_address(client):
    ask(client, kind="params", layer=1)
    burst = client.app.state.runtime.settings.poll_answer_burst
    codes = [answer_as(client, None, 0)[0] for _ in range(burst + 3)]
    assert all(r.status_code == 200 for r in codes[:burst])
    refused = assert_error(codes[-1], 429, "too_many_requests")
    assert int(codes[-1].headers["Retry-After"]) >= 1 and "answers" in refused["detail"]
    assert client.get("/api/poll").json()["poll"]["total"] == burst


def test_a_question_holds_a_bounded_number_of_answers(fresh_client):
    with fresh_client(poll_max_answers=3, poll_answer_burst=50) as client:
        from tests.server.conftest import wait_ready
        wait_ready(client)
        ask(client, kind="params", layer=1)
        cookies = [answer_as(client, None, 0)[1] for _ in range(3)]
        assert_error(answer_as(client, None, 1)[0], 409, "poll_full")
        changed, _ = answer_as(client, cookies[0], 1)      # a counted browser may still change
        assert changed.status_code == 200
        assert client.get("/api/poll").json()["poll"]["counts"] == [2, 1, 0, 0]


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=st.text(min_size=1, max_size=MAX_QUESTION_CHARS),
       options=st.lists(st.text(min_size=1, max_size=MAX_OPTION_CHARS), min_size=2,
                        max_size=6, unique_by=str.strip))
def test_any_custom_text_is_asked_or_refused_cleanly(client, question, options):
    client.app.state.polls = None
    response = client.post("/api/poll", headers=presenter(),
                           json={"kind": "custom", "question": question, "options": options})
    if question.strip() and all(o.strip() for o in options):
        assert response.status_code == 200, response.text
        assert response.json()["options"] == [o.strip() for o in options]
    else:
        assert_error(response, 422)
