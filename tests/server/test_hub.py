"""The hub: one encoding per event, latest-value slots, bounded logs, NaN as null."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from server.hub import KINDS, LOG_BACKLOG, Hub, encode_event


def _parse(chunk: bytes) -> list[tuple[str, object]]:
    events = []
    for block in chunk.decode().split("\n\n"):
        lines = block.splitlines()
        if lines and lines[0].startswith("event: "):
            events.append((lines[0][7:], json.loads(lines[1][6:])))
    return events


def test_events_are_encoded_once_as_sse_with_null_for_non_finite():
    data = encode_event("metrics", {"loss": float("nan"), "lr": float("inf"), "step": 3})
    assert data == b'event: metrics\ndata: {"loss":null,"lr":null,"step":3}\n\n'
    with pytest.raises(ValueError):
        encode_event("secrets", {})


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


def test_the_stream_wakes_on_publish_from_another_thread_and_ends_on_close():
    async def scenario():
        hub = Hub(ping_every_s=0.05)
        hub.bind(asyncio.get_running_loop())
        hub.publish("state", {"status": "loading"})
        stream = hub.stream()
        assert await anext(stream) == b"retry: 2000\n\n"
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
