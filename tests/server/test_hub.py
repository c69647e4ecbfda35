"""The hub: one encoding per event, latest-value slots, bounded logs, NaN as null; what each
client asked for at the rate it asked, compact events, and nothing kept per closed client."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from server.events import (KINDS, SubscriptionError, compact, format_subscription,
                           parse_subscription)
from server.hub import LOG_BACKLOG, Hub, encode_event


def _parse(chunk: bytes) -> list[tuple[str, object]]:
    events = []
    for block in chunk.decode().split("\n\n"):
        lines = block.splitlines()
        if lines and lines[0].startswith("event: "):
            events.append((lines[0][7:], json.loads(lines[1][6:])))
    return events


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_events_are_encoded_once_as_sse_with_null_for_non_finite():
    data = encode_event("metrics", {"loss": float("nan"), "lr": float("inf"), "step": 3})
    assert data == b'event: metrics\ndata: {"loss":null,"lr":null,"step":3}\n\n'
    with pytest.raises(ValueError):
        encode_event("secrets", {})


def test_floats_keep_the_digits_a_chart_shows_and_the_time_its_milliseconds():
    data = encode_event("metrics", {"loss": 1.8944348184764386, "reg_loss": 0.006239781123693855,
                                    "train_acc": 0.30875, "images_per_s": 2207.7407065085827,
                                    "server_time": 1796607733.484325, "step": 304, "lr": 0.01,
                                    "tiny": -1.234567e-9, "zero": 0.0})
    assert json.loads(data.decode().split("data: ")[1]) == {
        "loss": 1.8944, "reg_loss": 0.0062398, "train_acc": 0.30875, "images_per_s": 2207.741,
        "server_time": 1796607733.484, "step": 304, "lr": 0.01, "tiny": -1.2346e-9, "zero": 0.0}
    assert compact({"a": [0.1 + 0.2, True, None, "x"]}) == {"a": [0.3, True, None, "x"]}


def test_a_slow_client_keeps_only_the_latest_of_each_kind():
    hub = Hub()
    client = hub.connect()
    client.take()
    for step in range(100):
        hub.publish("metrics", {"step": step})
    for k in range(LOG_BACKLOG + 30):
        hub.publish("log", {"text": f"line {k}"})
    hub.publish("frame", {"step": 99})
    events = _parse(b"".join(client.take()))
    metrics = [data for kind, data in events if kind == "metrics"]
    logs = [data["text"] for kind, data in events if kind == "log"]
    assert metrics == [{"step": 99}]
    assert logs == [f"line {k}" for k in range(30, LOG_BACKLOG + 30)]
    assert [kind for kind, _ in events if kind != "log"] == ["metrics", "frame"]
    assert client.skipped == 99
    assert client.take() == []


def test_every_client_gets_the_same_bytes_object():
    hub = Hub()
    a, b = hub.connect(), hub.connect()
    a.take(), b.take()
    hub.publish("net", {"name": "x"})
    assert a.slots["net"] is b.slots["net"]


def test_a_new_client_gets_the_latest_of_each_kind_in_order():
    hub = Hub()
    for kind in reversed(KINDS):
        hub.publish(kind, {"kind": kind})
    hub.publish("metrics", {"kind": "metrics", "newer": True})
    events = _parse(b"".join(hub.connect().take()))
    assert [kind for kind, _ in events] == list(KINDS)
    assert {"kind": "metrics", "newer": True} in [data for _, data in events]


def test_a_client_gets_only_the_kinds_it_asked_for():
    hub = Hub()
    hub.publish("frame", {"step": 1})
    client = hub.connect(parse_subscription("state,metrics"))
    assert client.take() == []               # the latest frame is not handed to it either
    for kind in ("frame", "gallery", "metrics", "history", "state"):
        hub.publish(kind, {"kind": kind})
    assert [kind for kind, _ in _parse(b"".join(client.take()))] == ["state", "metrics"]


def test_a_kind_asked_for_at_a_rate_comes_no_faster_and_always_the_latest():
    hub = Hub()
    clock = FakeClock()
    client = hub.connect(parse_subscription("metrics,frame:10"))
    client.clock = clock
    hub.publish("frame", {"step": 1})
    assert _parse(b"".join(client.take())) == [("frame", {"step": 1})]
    for step in range(2, 6):
        clock.now += 1
        hub.publish("frame", {"step": step})
        hub.publish("metrics", {"step": step})
        assert _parse(b"".join(client.take())) == [("metrics", {"step": step})]
    assert client.next_due() == pytest.approx(1010.0)
    clock.now = 1010.0
    assert _parse(b"".join(client.take())) == [("frame", {"step": 5})]
    assert client.next_due() is None


def test_a_new_subscription_brings_the_latest_of_what_it_adds_and_drops_the_rest():
    hub = Hub()
    hub.publish("frame", {"step": 7})
    hub.publish("log", {"text": "hello"})
    client = hub.connect(parse_subscription("metrics,gallery"))
    hub.publish("gallery", {"items": [], "step": 7})
    assert hub.subscribe(client.id, parse_subscription("metrics,frame,log")) is client
    events = _parse(b"".join(client.take()))
    assert events == [("log", {"text": "hello"}), ("frame", {"step": 7})]
    hub.publish("gallery", {"items": [], "step": 8})
    assert client.take() == []
    assert hub.subscribe("no-such-stream", {"metrics": 0.0}) is None


def test_history_markers_travel_apart_and_only_when_they_change():
    hub = Hub()
    client = hub.connect()
    marks = [{"step": 5, "examples": 80, "text": "lr 0.1"}]
    hub.publish("history", {"points": [{"step": 6}], "markers": marks, "from": 5})
    hub.publish("history", {"points": [{"step": 7}], "markers": marks, "from": 6})
    events = _parse(b"".join(client.take()))
    assert events == [("markers", {"markers": marks}),
                      ("history", {"from": 6, "columns": ["step"], "rows": [[7]]})]
    hub.publish("history", {"points": [{"step": 8}], "markers": marks, "from": 7})
    assert [kind for kind, _ in _parse(b"".join(client.take()))] == ["history"]
    newcomer = _parse(b"".join(hub.connect().take()))
    assert ("markers", {"markers": marks}) in newcomer


def test_history_points_travel_as_rows_under_their_columns():
    hub = Hub()
    client = hub.connect(parse_subscription("history"))
    points = [{"step": 1, "examples": 16, "loss": 2.302585092994046, "val_acc": None},
              {"step": 2, "examples": 32, "loss": 2.2, "test_acc": 0.5}]
    hub.publish("history", {"points": points, "tests": [], "reset": False, "from": 0,
                            "markers": []})
    [(kind, data)] = _parse(b"".join(client.take()))
    assert data == {"tests": [], "reset": False, "from": 0,
                    "columns": ["step", "examples", "loss", "val_acc", "test_acc"],
                    "rows": [[1, 16, 2.3026, None, None], [2, 32, 2.2, None, 0.5]]}


def test_gallery_events_leave_the_unchanging_images_to_the_json_twin():
    hub = Hub()
    client = hub.connect()
    gallery = {"step": 3, "items": [{"index": 4, "label": "cat", "image": "iVBOR" * 500,
                                     "top": [], "correct": True}], "test": None}
    hub.publish("gallery", gallery)
    [(kind, data)] = _parse(b"".join(client.take()))
    assert data == {"step": 3, "items": [{"index": 4, "label": "cat", "top": [],
                                          "correct": True}], "test": None}
    assert gallery["items"][0]["image"]      # the publisher's object is left alone


@pytest.mark.parametrize("text, problem", [
    ("", "at least one"), ("metrics,secrets", "unknown event kind 'secrets'"),
    ("metrics,metrics", "named twice"), ("frame:-1", "0..3600"), ("frame:nan", "0..3600"),
    ("frame:inf", "0..3600"), ("frame:soon", "0..3600"), ("metrics," * 40, "at most 200"),
])
def test_a_bad_subscription_is_refused_with_the_reason(text, problem):
    with pytest.raises(SubscriptionError, match=problem):
        parse_subscription(text)


def test_a_subscription_has_one_canonical_text():
    assert format_subscription(parse_subscription("frame:10, metrics:0.5,state")) == \
        "state,metrics:0.5,frame:10"


def test_the_stream_says_hello_wakes_on_publish_from_another_thread_and_ends_on_close():
    async def scenario():
        hub = Hub(ping_every_s=0.05)
        hub.bind(asyncio.get_running_loop())
        hub.publish("state", {"status": "loading"})
        stream = hub.stream(parse_subscription("state,metrics"))
        first = await anext(stream)
        assert first.startswith(b"retry: 2000\n\n")
        [(kind, hello)] = _parse(first)
        assert kind == "hello" and hello["events"] == "state,metrics"
        assert hub.clients[hello["id"]].wants == {"state": 0.0, "metrics": 0.0}
        assert b"loading" in await anext(stream)
        assert await anext(stream) == b"event: ping\ndata: {}\n\n"
        threading.Thread(target=hub.publish, args=("state", {"status": "training"})).start()
        assert b"training" in await anext(stream)
        assert len(hub.clients) == 1
        hub.close()
        with pytest.raises(StopAsyncIteration):
            while True:
                await anext(stream)
        assert not hub.clients
    asyncio.run(scenario())


def test_a_rate_limited_kind_is_sent_when_due_without_another_event_to_wake_it():
    async def scenario():
        hub = Hub(ping_every_s=30)
        hub.bind(asyncio.get_running_loop())
        stream = hub.stream(parse_subscription("frame:0.2"))
        await anext(stream)                  # hello
        hub.publish("frame", {"step": 1})
        assert b'"step":1' in await anext(stream)
        hub.publish("frame", {"step": 2})
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert b'"step":2' in await asyncio.wait_for(anext(stream), 5)
        assert 0.1 < loop.time() - started < 2
        await stream.aclose()
        assert not hub.clients
    asyncio.run(scenario())


def test_closed_streams_leave_nothing_behind():
    async def scenario():
        hub = Hub()
        hub.bind(asyncio.get_running_loop())
        for _ in range(300):
            stream = hub.stream()
            await anext(stream)
            await stream.aclose()
        assert hub.clients == {}
    asyncio.run(scenario())
