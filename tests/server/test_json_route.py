"""JSON bodies: capped while they stream, JSON by Content-Type only, parsed without NaN, with
numbers in range, before Pydantic sees them; and every route with a body reads it this way."""

from __future__ import annotations

import select
import socket
import time

import pytest

from server.auth import flat_routes
from server.json_route import JSONBodyRoute, LongInt, is_json, out_of_range, parse_json, where
from tests.server.conftest import TOKEN, assert_error, fingerprint, presenter, tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live


def test_every_route_with_a_json_body_reads_it_through_the_json_route(client):
    with_body = [(path, route) for path, route in flat_routes(client.app.routes)
                 if getattr(route, "body_field", None) is not None
                 and "Form" not in type(route.body_field.field_info).__name__]
    assert len(with_body) >= 7
    for path, route in with_body:
        assert isinstance(route, JSONBodyRoute), path


def test_numbers_out_of_range_are_found_with_their_place():
    assert out_of_range({"a": [1, 2.5, -(2**53)], "b": {"c": True}}) is None
    assert out_of_range({"a": [1, {"b": 2**53 + 1}]})[0] == ["a", 1, "b"]
    assert out_of_range([float("inf")])[0] == [0]
    assert out_of_range({"x": LongInt("9" * 5000)})[1].startswith("an integer of 5000 digits")
    assert where(["spec", 3, "drop_prob"]) == {"layer": "3", "field": "drop_prob"}
    assert where(["spec", "layers", 2, "layers", 1, "stride"]) == {
        "layer": "2.layers.1", "field": "stride"}
    assert where(["spec", 0]) == {"field": "spec"}
    assert where(["learning_rate"]) == {"field": "learning_rate"}


def test_long_integers_are_never_converted():
    started = time.perf_counter()
    value = parse_json(b'{"a": ' + b"7" * 1_000_000 + b"}")       # int() would take seconds
    assert isinstance(value["a"], LongInt) and time.perf_counter() - started < 1.0


def test_json_content_types():
    for kind in ("application/json", "Application/JSON; charset=utf-8",
                 "application/merge-patch+json"):
        assert is_json(kind), kind
    for kind in ("", "text/plain", "text/json", "application/jsonp", "multipart/form-data"):
        assert not is_json(kind), kind


@pytest.mark.parametrize("raw", [b'{"action": NaN}', b'{"action": -Infinity}', b"[1]",
                                 b'"pause"', b"\xff\xfe", b'{"action": "pause"'])
def test_malformed_json_is_400(client, raw):
    before = fingerprint(client)
    response = client.post("/api/control", content=raw,
                           headers=presenter(**{"Content-Type": "application/json"}))
    assert_error(response, 400, "invalid_json")
    assert fingerprint(client) == before


def test_the_cap_holds_while_the_body_streams(tmp_path):
    with live_server(tiny_settings(tmp_path)) as (base, app):
        wait_ready_live(base)
        limit = app.state.runtime.settings.max_json_bytes
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(f"POST /api/net/check HTTP/1.1\r\nHost: {host}\r\nAuthorization: "
                         f"Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                         f"Transfer-Encoding: chunked\r\n\r\n".encode())
            sent, answer = 0, b""
            while not answer and sent < 4 * limit:     # chunked: no length to refuse by
                try:
                    sock.sendall(b"10000\r\n" + b" " * 65536 + b"\r\n")
                    sent += 65536
                except OSError:                        # the server hung up after its 413
                    break
                if select.select([sock], [], [], 0.01)[0]:
                    answer = sock.recv(65536)
            while b'"too_large"' not in answer and (chunk := sock.recv(65536)):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
        assert b'"too_large"' in answer
        assert sent <= limit + 16 * 65536             # abandoned at the limit, not read through
