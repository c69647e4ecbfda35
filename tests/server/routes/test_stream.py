"""GET /api/stream through a real uvicorn: latest values on connect, order within a kind,
no bare NaN, slow clients skip without slowing anyone, reconnects see the latest state; a
stream carries only the kinds its page asked for, changed in place by PUT /api/stream/{id};
never compressed (the rest is)."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time

import httpx
import pytest

from server.events import compact
from server.measure import VIEWER_ALL, StreamClient, client_address
from tests.server.conftest import assert_error, presenter, tiny_settings
from tests.server.live import EventReader, live_server

ON_CONNECT = {"state", "net", "metrics", "history", "frame", "gallery"}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    directory = tmp_path_factory.mktemp("live")
    with live_server(tiny_settings(directory, frame_every_steps=1)) as (base, app):
        with httpx.Client(base_url=base, timeout=30) as http:
            deadline = time.monotonic() + 60
            while http.get("/api/state").json()["status"] != "paused":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            yield base, app, http


def _control(http, action):
    response = http.post("/api/control", json={"action": action}, headers=presenter())
    assert response.status_code == 200, response.text
    return response.json()


def test_the_latest_of_each_kind_arrives_on_connect(live):
    base, _, _ = live
    reader = EventReader(base)
    try:
        kinds = set()
        while not ON_CONNECT <= kinds:
            kinds.add(reader.next()[1])
    finally:
        reader.close()


def test_events_keep_their_order_and_have_no_bare_nan(live):
    base, _, http = live
    reader = EventReader(base)
    try:
        _control(http, "resume")
        steps = []
        deadline = time.monotonic() + 30
        while len(steps) < 10:
            assert time.monotonic() < deadline
            steps.append(reader.next("metrics")[2]["step"])
        frames = [reader.next("frame")[2]["step"] for _ in range(3)]
        _control(http, "pause")
        assert steps == sorted(steps) and steps[-1] > steps[0]
        assert frames == sorted(frames)
        assert not any("NaN" in line or "Infinity" in line for line in reader.raw_lines)
    finally:
        reader.close()


def test_history_events_are_deltas_from_a_step_with_the_test_results(live):
    # Each event says which step it continues from, so a page that missed one can tell, and
    # carries the whole-test-set results that came since (every epoch: ~4 steps here).
    base, _, http = live
    reader = EventReader(base)
    try:
        _control(http, "resume")
        events, tests = [], []
        deadline = time.monotonic() + 60
        while not tests or len(events) < 3:
            assert time.monotonic() < deadline
            event = reader.next("history")[2]
            events.append(event)
            tests += event["tests"]
        _control(http, "pause")
        for before, after in zip(events[1:], events[2:]):
            if not after["reset"] and before["rows"]:
                step = before["columns"].index("step")
                assert after["from"] == before["rows"][-1][step]
        assert all(0 <= t["test_acc"] <= 1 and t["step"] > 0 for t in tests)
        # Events round their floats (server/events.py); the JSON twin keeps them as they are.
        assert tests[-1] in compact(http.get("/api/history").json()["tests"])
    finally:
        reader.close()


def test_a_slow_client_does_not_hold_up_a_fast_one_or_training(live):
    base, app, http = live
    host, port = base.removeprefix("http://").split(":")
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # fill up quickly
    slow.connect((host, int(port)))
    slow.sendall(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # ...and never read
    reader = EventReader(base)
    hub = app.state.runtime.hub
    try:
        _control(http, "resume")
        deadline = time.monotonic() + 60     # until the slow client's socket buffers are
        while not _stalled(hub):             # full and its response generator waits
            assert time.monotonic() < deadline, "the slow client never filled its buffers"
            for _ in range(4):               # bulky events fill the buffers quickly
                hub.publish("gallery", {"padding": "x" * 1_000_000})
        reader.drain()
        start_step = http.get("/api/state").json()["metrics"]["step"]
        started = time.monotonic()
        steps = [reader.next("metrics")[2]["step"] for _ in range(8)]
        elapsed = time.monotonic() - started
        end_step = http.get("/api/state").json()["metrics"]["step"]
        assert steps == sorted(steps) and steps[-1] > steps[0]
        assert elapsed < 10, f"the fast client got 8 metrics events in {elapsed:.1f} s"
        assert end_step > start_step + 10, "training stalled"
        # (several looks: events reach its slots only as they are published)
        assert any(_stalled(hub) for _ in range(6)), \
            "the slow client should still have unsent events waiting"
        assert all(len(c.slots) <= 7 and len(c.logs) <= 20 for c in hub.clients.values())
    finally:
        _control(http, "pause")
        reader.close()
        slow.close()


def _stalled(hub) -> bool:
    """Some client has had events waiting for 0.5 s: its generator is stuck in a send."""
    waiting = {id(c) for c in hub.clients.values() if c.slots and c.ready.is_set()}
    time.sleep(0.5)
    return any(id(c) in waiting and c.slots and c.ready.is_set() for c in hub.clients.values())


def test_a_reconnect_gets_the_latest_state(live):
    base, _, http = live
    first = EventReader(base)
    first.next("metrics")
    first.close()
    _control(http, "step")
    step = http.get("/api/state").json()["metrics"]["step"]
    second = EventReader(base)
    try:
        latest = {}
        while not {"state", "metrics"} <= set(latest):
            _, kind, data = second.next(timeout=10)
            latest[kind] = data
        assert latest["metrics"]["step"] == step
        assert latest["state"]["status"] == "paused"
    finally:
        second.close()


def test_divergence_is_told_to_every_viewer(tmp_path):
    settings = tiny_settings(tmp_path, hyperparams={"batch_size": 4, "learning_rate": 1e30,
                                                    "method": "sgd"})
    with live_server(settings) as (base, _):
        with httpx.Client(base_url=base, timeout=30) as http:
            deadline = time.monotonic() + 60
            while http.get("/api/state").json()["status"] != "paused":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            viewers = [EventReader(base) for _ in range(2)]
            try:
                for viewer in viewers:
                    viewer.next("state")
                _control(http, "resume")
                for viewer in viewers:
                    viewer.next("state", where=lambda d: d["status"] == "diverged")
                    log = viewer.next("log", where=lambda d: d["level"] == "error")[2]
                    assert "diverged" in log["text"]
            finally:
                for viewer in viewers:
                    viewer.close()


def test_streams_end_when_the_server_stops(tmp_path):
    with live_server(tiny_settings(tmp_path)) as (base, _):
        reader = EventReader(base)
        reader.next("net")
    reader.next("_closed", timeout=10)
    reader.close()


def test_a_stream_asking_for_metrics_gets_no_frames_until_it_asks_for_them(live):
    base, app, http = live
    reader = EventReader(base, "?events=state,metrics")
    try:
        hello = reader.next("hello")[2]
        assert hello["events"] == "state,metrics"
        _control(http, "resume")            # a frame every step here (frame_every_steps=1)
        steps = [reader.next("metrics")[2]["step"] for _ in range(10)]
        assert steps[-1] > steps[0]
        kinds = {kind for _, kind, _ in reader.drain()}
        assert kinds <= {"state", "metrics"}, kinds
        changed = http.put(f"/api/stream/{hello['id']}", json={"events": "metrics,frame:30"})
        assert changed.status_code == 200, changed.text
        assert changed.json() == {"id": hello["id"], "events": "metrics,frame:30"}
        frame = reader.next("frame", timeout=5)[2]          # the latest, at once
        assert frame["layers"]
        time.sleep(3)                                       # then not before 30 s
        later = [kind for _, kind, _ in reader.drain()]
        assert "frame" not in later and "metrics" in later
    finally:
        _control(http, "pause")
        reader.close()
    deadline = time.monotonic() + 10
    while hello["id"] in app.state.runtime.hub.clients:     # a closed stream leaves no trace
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _answer(http, method: str, url: str, **kwargs) -> httpx.Response:
    """The response, its body read unless it is a stream (which would never end)."""
    with http.stream(method, url, **kwargs) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
        return response


def test_a_bad_subscription_or_an_unknown_stream_gets_the_error_shape(live):
    _, _, http = live
    body = assert_error(_answer(http, "GET", "/api/stream?events=metrics,passwords"), 422,
                        "invalid_events")
    assert body["field"] == "events" and "passwords" in body["detail"]
    assert_error(_answer(http, "GET", "/api/stream?events=frame:-3"), 422, "invalid_events")
    assert_error(http.put("/api/stream/nobody", json={"events": "metrics"}), 404,
                 "unknown_stream")
    assert_error(http.put("/api/stream/nobody", json={"events": "metrics", "x": 1}), 422)
    assert_error(http.put("/api/stream/nobody", json={"events": "metrics:x"}), 422,
                 "invalid_events")


def test_the_page_and_json_are_compressed_and_the_stream_is_not(live):
    base, _, http = live
    for path in ("/static/js/app.js", "/static/css/app.css", "/", "/api/state",
                 "/static/vendor/uplot/uPlot.iife.min.js"):
        response = http.get(path, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        assert response.headers.get("content-encoding") == "gzip", path
        raw = len(http.get(path, headers={"Accept-Encoding": "identity"}).content)
        assert len(gzip.compress(response.content)) < raw
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Accept-Encoding: gzip, deflate, br\r\n\r\n")
        started, received = time.monotonic(), b""
        while b"event: net" not in received:               # latest values, at once
            chunk = sock.recv(65536)
            assert chunk, "the stream closed"
            received += chunk
        assert time.monotonic() - started < 5
    head = received.split(b"\r\n\r\n", 1)[0].lower()
    assert b"content-encoding" not in head and b"text/event-stream" in head
    assert b"event: hello" in received


def test_a_wave_of_viewers_that_leaves_leaves_nothing_in_the_hub(live):
    base, app, http = live
    hub = app.state.runtime.hub

    async def wave():
        leave = asyncio.Event()
        viewers = [StreamClient(base, VIEWER_ALL if n % 2 else None, client_address(n))
                   for n in range(60)]
        tasks = [asyncio.create_task(viewer.run(leave)) for viewer in viewers]
        deadline = time.monotonic() + 30
        while sum(viewer.id is not None for viewer in viewers) < len(viewers):
            assert time.monotonic() < deadline, "not every viewer got its hello"
            await asyncio.sleep(0.05)
        assert len(hub.clients) >= len(viewers)
        leave.set()
        await asyncio.gather(*tasks)

    before = len(hub.clients)
    asyncio.run(wave())
    deadline = time.monotonic() + 10
    while len(hub.clients) > before:
        assert time.monotonic() < deadline, f"{len(hub.clients) - before} clients stayed"
        time.sleep(0.05)
