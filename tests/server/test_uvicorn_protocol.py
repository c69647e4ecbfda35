"""The guard on a real uvicorn (built as `serve` builds it) and real sockets, with short
deadlines: heads that never finish, idle and unread connections, per-address and global
caps. uvicorn alone keeps each of these connections open for good."""

from __future__ import annotations

import json
import select
import socket
import time

import httpx
import pytest

from tests.server.conftest import tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live

HEAD_S, STALL_S, KEEP_ALIVE_S = 1.0, 1.0, 1.0
PER_CLIENT = 6


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    settings = tiny_settings(tmp_path_factory.mktemp("protocol"), header_timeout_s=HEAD_S,
                             body_grace_s=0.5, body_min_rate=20_000,
                             write_stall_timeout_s=STALL_S, keep_alive_s=KEEP_ALIVE_S,
                             max_connections_per_client=PER_CLIENT, guard_log_every_s=0.5)
    with live_server(settings) as (url, _):
        wait_ready_live(url)
        yield url


def connect(base: str, source: str = "127.0.0.2") -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect((host, int(port)))
    return sock


def closed_after(sock: socket.socket, within: float) -> float | None:
    """Seconds until the server hung up (reading and discarding what it sent), or None."""
    started = time.monotonic()
    sock.settimeout(0.05)
    while time.monotonic() - started < within:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:                    # reset
            return time.monotonic() - started
    return None


def head(base: str, path: str = "/api/state", extra: str = "") -> bytes:
    netloc = base.removeprefix("http://")
    return f"GET {path} HTTP/1.1\r\nHost: {netloc}\r\n{extra}\r\n".encode()


def test_a_connection_that_sends_nothing_is_closed_at_the_head_deadline(base):
    with connect(base) as sock:
        seconds = closed_after(sock, 10)
    assert seconds is not None and HEAD_S - 0.1 < seconds < HEAD_S + 4, seconds


def test_a_trickled_head_is_closed_at_the_head_deadline(base):
    """A header line every 0.2 s: uvicorn's only timer (keep-alive) restarts on every byte."""
    with connect(base) as sock:
        sock.sendall(head(base)[:-2])      # all but the final blank line
        started = time.monotonic()
        with pytest.raises(OSError):
            while time.monotonic() - started < 10:
                sock.sendall(b"X-a: b\r\n")
                time.sleep(0.2)
        seconds = time.monotonic() - started
    assert HEAD_S - 0.1 < seconds < HEAD_S + 4, seconds


def test_after_a_response_an_idle_or_half_sent_next_request_is_closed(base):
    for rest in (b"", b"GET /api/state HTTP/1.1\r\n"):
        with connect(base) as sock:
            sock.sendall(head(base))
            sock.settimeout(10)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            sock.sendall(rest)
            seconds = closed_after(sock, 10)
        assert seconds is not None and seconds < max(KEEP_ALIVE_S, HEAD_S) + 4, (rest, seconds)


def test_a_body_nobody_reads_must_still_keep_coming(base):
    """GET /api/state answers without reading the declared body; the client then trickles
    it at 10 bytes/s: dropped after twice the grace (uvicorn alone: never)."""
    with connect(base) as sock:
        sock.sendall(head(base, extra="Content-Length: 100000\r\n"))
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        while not hung_up(sock) and time.monotonic() - started < 10:
            try:
                sock.sendall(b"x")
            except OSError:
                break
            time.sleep(0.1)
        seconds = time.monotonic() - started
    assert 0.9 < seconds < 6, seconds


def hung_up(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1) == b""
    except OSError:
        return True


def test_an_event_stream_nobody_reads_is_dropped(base):
    """Training fills the unread stream's buffers within seconds; the guard then resets it
    (seen here without reading: the reset sets the socket's pending error)."""
    auth = {"Authorization": "Bearer test-presenter-token-0123456789"}
    assert httpx.post(f"{base}/api/control", json={"action": "resume"},
                      headers=auth).status_code == 200
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind(("127.0.0.3", 0))
        host, port = base.removeprefix("http://").split(":")
        sock.connect((host, int(port)))
        with sock:
            sock.sendall(head(base, "/api/stream"))
            started = time.monotonic()
            while not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                assert time.monotonic() - started < 60, "the unread stream is still open"
                time.sleep(0.2)
    finally:
        httpx.post(f"{base}/api/control", json={"action": "pause"}, headers=auth)


def test_one_address_holds_a_few_connections_and_this_machine_any_number(base):
    held = [connect(base) for _ in range(PER_CLIENT)]
    try:
        with connect(base) as extra:
            extra.sendall(head(base))
            answer = extra.recv(65536)
        status, _, body = answer.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 503") and b"retry-after: 2" in status
        error = json.loads(body)
        assert error["error"] == "too_many_connections"
        assert f"over {PER_CLIENT} connections per client address" in error["detail"]
        local = [connect(base, "127.0.0.1") for _ in range(PER_CLIENT + 4)]
        for sock in local:
            sock.sendall(head(base))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            sock.close()
    finally:
        for sock in held:
            sock.close()


def test_at_the_global_cap_newcomers_push_out_the_oldest_waiting(tmp_path):
    settings = tiny_settings(tmp_path, max_connections=10, header_timeout_s=30.0)
    with live_server(settings) as (url, _):
        wait_ready_live(url)
        waiting = [connect(url, f"127.0.0.{2 + k % 5}") for k in range(10)]
        try:
            time.sleep(0.2)
            for _ in range(5):             # each pushes out one waiting connection
                response = httpx.get(f"{url}/api/state", timeout=10)
                assert response.status_code == 200
            # the first pushed out the oldest; the others came in under the cap again
            assert closed_after(waiting[0], 2) is not None
            assert not any(hung_up(sock) for sock in waiting[1:])
        finally:
            for sock in waiting:
                sock.close()
