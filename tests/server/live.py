"""A real uvicorn server on a free loopback port, in a thread, and an SSE reader for it.

The server is built as `convnet-demo serve` builds it (server.uvicorn_protocol: the same
Config, connection guard and Server class), so network tests see what a room would."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from contextlib import contextmanager

import httpx

from server.app import create_app
from server.uvicorn_protocol import make_config, make_server


@contextmanager
def live_server(settings, port: int = 0):
    """Yields (base URL, app); the server runs in a thread and stops on exit. A given port
    lets a test start a second server where a page saw the first one stop."""
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP (as
    # uvicorn's own do); with proto 0, Nagle held each body behind a 40 ms delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    settings = settings.with_changes(host="127.0.0.1", port=port)
    app = create_app(settings)
    server = make_server(make_config(app, settings, timeout_graceful_shutdown=3), app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        app.state.runtime.hub.close()
        server.should_exit = True
        thread.join(30)
        sock.close()


def _no_constants(name):
    raise AssertionError(f"bare {name} in an event")


class EventReader:
    """Reads one /api/stream in a thread; events land in `events` as (time, kind, data)."""

    def __init__(self, base: str, query: str = "") -> None:
        self.events: queue.Queue = queue.Queue()
        self.raw_lines: list[str] = []
        self._stop = threading.Event()
        self._socket = None
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=60))
        self._thread = threading.Thread(target=self._run, args=(base + "/api/stream" + query,),
                                        daemon=True)
        self._thread.start()

    def _run(self, url: str) -> None:
        try:
            with self._client.stream("GET", url) as response:
                self._socket = response.extensions["network_stream"].get_extra_info("socket")
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                kind, data = None, []
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    self.raw_lines.append(line)
                    if line.startswith("event: "):
                        kind = line[len("event: "):]
                    elif line.startswith("data: "):
                        data.append(line[len("data: "):])
                    elif line == "" and kind is not None:
                        payload = json.loads("\n".join(data), parse_constant=_no_constants)
                        self.events.put((time.monotonic(), kind, payload))
                        kind, data = None, []
        except (httpx.HTTPError, RuntimeError):
            pass
        finally:
            self.events.put((time.monotonic(), "_closed", None))

    def next(self, kind: str | None = None, timeout: float = 30.0, where=None):
        """The next event of `kind` (any kind when None) for which where(data) holds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {kind} event within {timeout} s"
            at, got, data = self.events.get(timeout=left)
            if got == "_closed" and kind != "_closed":
                raise AssertionError("the stream closed")
            if (kind is None or got == kind) and (where is None or where(data)):
                return at, got, data

    def drain(self) -> list:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Hang up: shutting the socket down wakes the reading thread at once."""
        self._stop.set()
        if self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(10)
        self._client.close()
