"""Body caps hold while the body streams: a chunked upload with no Content-Length is cut off
at the limit with 413, long before the client has sent it all; a body must keep a minimum
pace after a grace (408), a slow but steady one gets through, and a client that hangs up
mid-body costs a log nothing (real uvicorn, raw sockets)."""

from __future__ import annotations

import asyncio
import io
import json
import select
import socket
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from server.bodies import BodyProgress, UploadPlaces
from server.errors import ApiError
from tests.server.conftest import TOKEN, tiny_settings
from tests.server.live import live_server

LIMIT = 100_000
CHUNK = b"\0" * 65536
GIVE_UP_AFTER = 64 * 2**20      # a server reading everything would take all of it
GRACE_S, MIN_RATE = 0.5, 20_000


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    settings = tiny_settings(tmp_path_factory.mktemp("bodies"), max_upload_bytes=LIMIT,
                             max_snapshot_bytes=LIMIT, max_json_bytes=LIMIT,
                             body_grace_s=GRACE_S, body_min_rate=MIN_RATE)
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


def _noisy_png(side: int = 110) -> bytes:
    """A PNG of about 3 * side**2 bytes (noise does not compress)."""
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _paced_upload(base: str, body: bytes, bytes_per_s: float, source: str = "127.0.0.2"):
    """POST /api/classify with `body` sent in 1/20 s slices at `bytes_per_s`; returns
    (the response's bytes, seconds from the head to the answer, bytes sent)."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect((host, int(port)))
    with sock:
        sock.sendall(f"POST /api/classify HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: "
                     f"image/png\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        started, sent, step = time.monotonic(), 0, max(1, int(bytes_per_s / 20))
        while sent < len(body):
            if select.select([sock], [], [], 0)[0]:
                break                      # answered before the body was all there
            try:
                sock.sendall(body[sent:sent + step])
            except OSError:
                break
            sent += step
            time.sleep(max(0.0, started + sent / bytes_per_s - time.monotonic()))
        response = _read_response(sock)
        return response, time.monotonic() - started, min(sent, len(body))


def test_a_slow_but_steady_upload_gets_through(base):
    body = _noisy_png()
    assert len(body) > 30_000
    response, seconds, _ = _paced_upload(base, body, MIN_RATE * 1.5)
    assert response.startswith(b"HTTP/1.1 200"), response[:300]
    assert seconds > 2 * GRACE_S                       # slower than the grace alone allows


@pytest.mark.parametrize("bytes_per_s", [0, MIN_RATE / 4])
def test_an_upload_that_stalls_or_crawls_gets_408_and_a_hang_up(base, bytes_per_s):
    body = _noisy_png()
    started = time.monotonic()
    if bytes_per_s:
        response, _, sent = _paced_upload(base, body, bytes_per_s)
    else:                                              # the head, then nothing
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(f"POST /api/classify HTTP/1.1\r\nHost: {host}:{port}\r\n"
                         f"Content-Type: image/png\r\nContent-Length: {len(body)}\r\n\r\n"
                         .encode())
            response, sent = _read_response(sock), 0
            assert sock.recv(1) == b""                 # and the connection is closed
    seconds = time.monotonic() - started
    head, _, text = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower(), response
    error = json.loads(text)
    assert error["error"] == "too_slow" and "KiB/s" in error["detail"]
    # the deadline: the grace, then one second per MIN_RATE bytes that arrived
    assert seconds < GRACE_S + sent / MIN_RATE + 1.5, (seconds, sent)
    assert sent < len(body) / 2


def test_a_stalled_body_gives_its_place_to_a_newcomer():
    """All places taken: the slowest body under the minimum rate, a second old or more,
    has its read cut (408 in read_body); young or fast bodies keep theirs; with none to cut,
    a newcomer waits a second, then gets 503."""
    async def main():
        places = UploadPlaces()

        async def arriving(client: str, size: int, age_s: float):
            progress = await places.take(client, True, 3, 2, MIN_RATE)
            progress.started -= age_s
            progress.size = size
            try:
                async with asyncio.timeout(60) as timer:
                    progress.reading = timer
                    await asyncio.sleep(60)
            except TimeoutError:
                return "cut"
            finally:
                places.leave(progress)

        tasks = [asyncio.create_task(arriving(*args)) for args in (
            ("10.0.0.1", 5 * MIN_RATE, 2.0),       # fast enough: 2.5x the minimum
            ("10.0.0.2", 100, 3.0),                # a stall: 33 bytes/s
            ("10.0.0.3", 0, 0.2))]                 # too young to judge
        await asyncio.sleep(0.05)
        newcomer = await places.take("10.0.0.4", True, 3, 2, MIN_RATE)
        assert [t.done() for t in tasks] == [False, False, False]
        await asyncio.sleep(0.05)
        assert [t.done() for t in tasks] == [False, True, False] and tasks[1].result() == "cut"
        assert set(places.per_client) == {"10.0.0.1", "10.0.0.3", "10.0.0.4"}
        assert places.per_client == {"10.0.0.1": 1, "10.0.0.3": 1, "10.0.0.4": 1}
        started = time.monotonic()                     # the young stall comes of age
        later = await places.take("10.0.0.5", True, 3, 2, MIN_RATE)
        assert 0.6 < time.monotonic() - started < 3
        await asyncio.sleep(0.05)
        assert tasks[2].done() and tasks[2].result() == "cut" and not tasks[0].done()
        started = time.monotonic()
        with pytest.raises(ApiError) as refused:      # nobody left to cut, after a wait
            await places.take("10.0.0.6", True, 3, 2, MIN_RATE)
        assert refused.value.status == 503 and refused.value.code == "busy"
        assert 0.9 < time.monotonic() - started < 3
        places.leave(newcomer)
        places.leave(later)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert len(places) == 0 and places.per_client == {}
    asyncio.run(main())


def test_cutting_a_body_whose_own_deadline_just_passed_is_harmless():
    """A newcomer may cut a stalled body in the moment between its timer's deadline and its
    read's end (the timer is expiring then, and takes no new deadline): the read ends as
    timed out, and the newcomer gets its place (this was a 500 under load)."""
    async def scenario():
        progress = BodyProgress()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0) as timer:
                progress.reading = timer
                try:
                    await asyncio.sleep(1)
                except asyncio.CancelledError:
                    assert timer.expired()
                    progress.cut()
                    raise
        return progress.was_cut

    assert asyncio.run(scenario())
