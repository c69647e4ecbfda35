"""A request h11 cannot parse (a malformed Content-Length above all) is answered by uvicorn
before the app sees it: in the one JSON error shape, as `serve` runs it (the live server is
built the same way)."""

from __future__ import annotations

import json
import socket

import pytest

from tests.server.conftest import tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live

MALFORMED = [b"Content-Length: abc", b"Content-Length: -1", b"Content-Length: 5, 6",
             b"Content-Length: 1e3", b"Content-Length: 0x10", b"Content-Length: 4\r\n"
             b"Content-Length: 5", b"Content-Length: 99999999999999999999999999999999x",
             b"Bad Header Line", b"Transfer-Encoding: gzip"]


def _answer(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):          # the server closes after its 400
            data += chunk
    return data


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    with live_server(tiny_settings(tmp_path_factory.mktemp("proto"))) as (base, _):
        wait_ready_live(base)
        yield int(base.rsplit(":", 1)[1])


@pytest.mark.parametrize("header", MALFORMED)
def test_a_malformed_request_gets_the_json_error_shape(port, header):
    answer = _answer(port, b"POST /api/control HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header +
                     b"\r\nContent-Type: application/json\r\n\r\n{}")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)
    assert error["error"] == "bad_request" and "HTTP" in error["detail"]


def test_a_well_formed_request_on_the_same_server_is_answered(port):
    answer = _answer(port, b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
