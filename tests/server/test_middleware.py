"""HEAD works on every GET route (the GET's status and headers, no body), refusals included;
an endless answer (the event stream) ends at once for a HEAD."""

from __future__ import annotations

import socket
import time

from server.auth import flat_routes
from tests.server.conftest import presenter, tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live

EXAMPLES = {"/api/summary": "/api/summary?preset=lenet5", "/static": "/static/js/app.js",
            "/api/frame/layer": "/api/frame/layer?layer=1",
            "/api/frame/filter": "/api/frame/filter?layer=1&index=0",
            "/api/filters/{layer}/{channel}": "/api/filters/1/0",
            "/api/conv": "/api/conv?w=7&f=3&s=2"}
# A paused run that has not been tested yet has no patches: the route's refusal, as a HEAD too.
STATUS = {"/api/filters/1/0": 409}


def get_paths(app) -> list[str]:
    paths = []
    for path, route in flat_routes(app.routes):
        if "GET" in (getattr(route, "methods", None) or {"GET"}):
            paths.append(EXAMPLES.get(path, path))
    return paths


def test_head_answers_like_get_without_a_body_on_every_get_route(client):
    paths = get_paths(client.app)
    assert {"/", "/api/state", "/api/stream", "/api/snapshot", "/static/js/app.js",
            "/openapi.json"} <= set(paths)
    for path in paths:
        if path == "/api/stream":
            continue                                  # endless as a GET: below
        get = client.get(path, headers=presenter())
        head = client.head(path, headers=presenter())
        assert head.status_code == get.status_code == STATUS.get(path, 200), (path, head.text)
        assert head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"], path
        if "content-length" in get.headers and path not in ("/api/state", "/api/snapshot"):
            assert head.headers["content-length"] == get.headers["content-length"], path


def test_head_of_the_event_stream_ends_at_once(client):
    started = time.monotonic()
    head = client.head("/api/stream")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/event-stream")
    assert time.monotonic() - started < 5


def test_refused_heads_carry_the_error_shapes_headers(client):
    for path, status in (("/api/snapshot", 401), ("/api/control", 405),
                         ("/api/no-such-thing", 404), ("/api/summary", 422)):
        head = client.head(path)
        assert head.status_code == status, (path, head.status_code)
        assert head.headers["content-type"] == "application/json", path
        assert head.content == b""
    foreign = client.head("/", headers={"Host": "evil.example"})
    assert foreign.status_code == 400 and foreign.headers["content-type"] == "application/json"
    assert client.options("/api/state").status_code == 405


def test_405_names_the_method_that_was_sent(client):
    refused = client.delete("/api/state")
    assert refused.json()["detail"] == "DELETE is not allowed on /api/state"


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send one request and read one answer's head (and body by its Content-Length)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    if not request.startswith(b"HEAD"):
        while len(rest) < length:
            rest += sock.recv(65536)
    return head


def test_a_real_server_ends_a_head_of_the_stream_and_keeps_the_connection(tmp_path):
    with live_server(tiny_settings(tmp_path)) as (base, _):
        wait_ready_live(base)
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            for path in (b"/api/stream", b"/api/state", b"/api/stream"):
                head = _exchange(sock, b"HEAD " + path + b" HTTP/1.1\r\nHost: " +
                                 host.encode() + b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head
            head = _exchange(sock, b"GET /api/state HTTP/1.1\r\nHost: " + host.encode() +
                             b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
