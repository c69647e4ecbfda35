"""Body caps hold while the body streams: a chunked upload with no Content-Length is cut off
at the limit with 413, long before the client has sent it all (real uvicorn, raw socket)."""

from __future__ import annotations

import select
import socket
import time

import httpx
import pytest

from tests.server.conftest import TOKEN, tiny_settings
from tests.server.live import live_server

LIMIT = 100_000
CHUNK = b"\0" * 65536
GIVE_UP_AFTER = 64 * 2**20      # a server reading everything would take all of it


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    settings = tiny_settings(tmp_path_factory.mktemp("bodies"), max_upload_bytes=LIMIT,
                             max_snapshot_bytes=LIMIT, max_json_bytes=LIMIT)
    with live_server(settings) as (url, _):
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/api/state").json()["status"] != "paused":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield url


def _send_chunked_forever(base: str, method: str, path: str, content_type: str,
                          auth: bool = False) -> tuple[bytes, int]:
    """Send an endless chunked body; return (the response's first bytes, bytes sent)."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Transfer-Encoding: chunked\r\n")
    if auth:
        head += f"Authorization: Bearer {TOKEN}\r\n"
    sock.sendall((head + "\r\n").encode())
    sent, response = 0, b""
    try:
        while sent < GIVE_UP_AFTER:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n")
            sent += len(CHUNK)
    except OSError:                  # the server hung up on the rest of the body
        pass
    try:
        response = _read_response(sock)
    finally:
        sock.close()
    return response, sent


def _read_response(sock) -> bytes:
    """Headers and the Content-Length bytes of body (or what came before the hang-up)."""
    sock.settimeout(5)
    data = b""
    try:
        while True:
            head, _, body = data.partition(b"\r\n\r\n")
            if _:
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    return data
            more = sock.recv(65536)
            if not more:
                return data
            data += more
    except OSError:
        return data


@pytest.mark.parametrize("method,path,content_type,auth", [
    ("POST", "/api/classify", "image/png", False),
    ("POST", "/api/classify", "multipart/form-data; boundary=xyz", False),
    ("PUT", "/api/snapshot", "application/json", True),
    ("PUT", "/api/net", "application/json", True),
])
def test_an_endless_chunked_body_is_cut_off_with_413(base, method, path, content_type, auth):
    response, sent = _send_chunked_forever(base, method, path, content_type, auth)
    assert sent < 16 * 2**20, f"the server read {sent:,} bytes of a {LIMIT:,}-byte limit"
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b'"error":"too_large"' in response


def test_a_declared_content_length_over_the_limit_is_refused_at_once(base):
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /api/classify HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                     f"image/png\r\nContent-Length: {LIMIT * 10}\r\n\r\n".encode())
        response = _read_response(sock)          # before any body was sent
    assert response.startswith(b"HTTP/1.1 413") and b"too_large" in response
