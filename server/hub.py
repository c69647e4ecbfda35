"""Fan-out of stream events to every connected page, where no client can slow another.

Each event is encoded ONCE (the bytes `event: KIND\\ndata: JSON\\n\\n`) and handed to every
client. A client holds one latest-value slot per kind (a newer metrics event replaces an
unsent older one, so a slow phone skips to the latest) plus a short deque of log lines, and
an asyncio.Event that wakes its response generator. Publishing never awaits a client.

Threads: the worker thread calls `publish`, which encodes there and then hands the bytes to
the event loop with call_soon_threadsafe; everything else runs on the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator
from typing import Any

from server.jsonenc import dumps

KINDS = ("state", "net", "log", "history", "metrics", "frame", "gallery")  # send order
LOG_BACKLOG = 20          # log lines a client may fall behind by (and a new client receives)
# A real event, not an SSE comment: the page never sees comments, and it needs to hear
# something while training is paused to tell a quiet stream from a dead one.
PING = b"event: ping\ndata: {}\n\n"


def encode_event(kind: str, payload: Any) -> bytes:
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    return f"event: {kind}\ndata: {dumps(payload)}\n\n".encode("utf-8")


class Client:
    """One open stream: pending bytes per kind, woken by `ready`."""

    def __init__(self) -> None:
        self.slots: dict[str, bytes] = {}
        self.logs: collections.deque[bytes] = collections.deque(maxlen=LOG_BACKLOG)
        self.ready = asyncio.Event()
        self.closed = False
        self.skipped = 0                    # events replaced before they were sent

    def put(self, kind: str, data: bytes) -> None:
        if kind == "log":
            self.logs.append(data)
        else:
            self.skipped += kind in self.slots
            self.slots[kind] = data
        self.ready.set()

    def take(self) -> list[bytes]:
        """Everything pending, in KINDS order (logs as a group in their place)."""
        out = []
        for kind in KINDS:
            if kind == "log":
                out.extend(self.logs)
                self.logs.clear()
            elif kind in self.slots:
                out.append(self.slots.pop(kind))
        self.ready.clear()
        return out

    def close(self) -> None:
        self.closed = True
        self.ready.set()


class Hub:
    def __init__(self, ping_every_s: float = 15.0) -> None:
        self.ping_every_s = ping_every_s
        self.clients: set[Client] = set()
        self.latest: dict[str, bytes] = {}
        self.recent_logs: collections.deque[bytes] = collections.deque(maxlen=LOG_BACKLOG)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        self.published = 0
        self._lock = threading.Lock()       # guards `loop` against close/bind races

    # --- lifecycle (event loop) ---------------------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self.loop = loop
            self.closed = False

    def close(self) -> None:
        """End every stream (their generators return); safe from any thread and from a
        signal handler."""
        with self._lock:
            loop, self.closed = self.loop, True
        if loop is None or loop.is_closed():
            return
        try:                                # also right from a signal handler on the loop's
            loop.call_soon_threadsafe(self._close_clients)   # thread: never mid-callback
        except RuntimeError:                # the loop closed meanwhile
            pass

    def _close_clients(self) -> None:
        for client in list(self.clients):
            client.close()

    # --- publishing (any thread) ----------------------------------------------------------
    def publish(self, kind: str, payload: Any) -> None:
        data = encode_event(kind, payload)
        with self._lock:
            loop = self.loop
        if loop is None or loop.is_closed():
            self._deliver(kind, data)       # no loop yet: just remember it as the latest
            return
        try:
            if _running_loop() is loop:
                self._deliver(kind, data)
            else:
                loop.call_soon_threadsafe(self._deliver, kind, data)
        except RuntimeError:                # loop closed between the check and the call
            pass

    def _deliver(self, kind: str, data: bytes) -> None:
        self.published += 1
        if kind == "log":
            self.recent_logs.append(data)
        else:
            self.latest[kind] = data
        for client in self.clients:
            client.put(kind, data)

    # --- subscribing (event loop) -------------------------------------------------------
    def connect(self) -> Client:
        client = Client()
        for kind in KINDS:
            if kind == "log":
                client.logs.extend(self.recent_logs)
            elif kind in self.latest:
                client.slots[kind] = self.latest[kind]
        client.ready.set()
        if self.closed:
            client.close()
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self.clients.discard(client)

    async def stream(self) -> AsyncIterator[bytes]:
        """The bytes of one client's response body, until the hub closes or the client goes.
        The client is registered on the first iteration, so a response that never starts
        leaves nothing behind."""
        client = self.connect()
        try:
            yield b"retry: 2000\n\n"
            while True:
                try:
                    await asyncio.wait_for(client.ready.wait(), self.ping_every_s)
                except TimeoutError:
                    yield PING
                    continue
                chunks = client.take()
                if chunks:
                    yield b"".join(chunks)
                if client.closed:
                    return
        finally:
            self.disconnect(client)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
