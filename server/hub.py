"""Fan-out of stream events to every connected page, where no client can slow another.

Each event is encoded ONCE (the bytes `event: KIND\\ndata: JSON\\n\\n`, compact: see
server/events.py) and handed to every client that asked for its kind. A client holds one
latest-value slot per kind (a newer metrics event replaces an unsent older one, so a slow
phone skips to the latest) plus a short deque of log lines, and an asyncio.Event that wakes
its response generator. Publishing never awaits a client.

Subscriptions: a client names the kinds it wants and, per kind, the least seconds between two
of its events (a phone asks for a frame every 10 s, or none while the network view is
scrolled away). A kind that comes faster waits in its slot, replaced by newer ones, until it
is due. The first event of every stream is `hello`, with the stream's id: the page changes
its subscription with PUT /api/stream/{id} without reconnecting, and a kind it adds arrives
at once (the latest of it).

Threads: the worker thread calls `publish`, which encodes there and then hands the bytes to
the event loop with call_soon_threadsafe; everything else runs on the event loop. Everything
kept is bounded: per kind one latest value, LOG_BACKLOG log lines, one Client per open stream
(dropped when its response ends).
"""

from __future__ import annotations

import asyncio
import collections
import secrets
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from server.events import ALL_KINDS, KINDS, encode_event, format_subscription, split_published
from server.jsonenc import dumps

__all__ = ["KINDS", "LOG_BACKLOG", "PING", "Client", "Hub", "encode_event"]

LOG_BACKLOG = 20          # log lines a client may fall behind by (and a new client receives)
# A real event, not an SSE comment: the page never sees comments, and it needs to hear
# something while training is paused to tell a quiet stream from a dead one.
PING = b"event: ping\ndata: {}\n\n"
RETRY = b"retry: 2000\n\n"


class Client:
    """One open stream: what it wants, pending bytes per kind, woken by `ready`."""

    def __init__(self, wants: dict[str, float] | None = None, clock=time.monotonic) -> None:
        self.id = secrets.token_urlsafe(16)  # a capability: only this stream's page knows it
        self.wants = dict(ALL_KINDS if wants is None else wants)
        self.slots: dict[str, bytes] = {}
        self.logs: collections.deque[bytes] = collections.deque(maxlen=LOG_BACKLOG)
        self.sent_at: dict[str, float] = {}
        self.ready = asyncio.Event()
        self.closed = False
        self.skipped = 0                    # events replaced before they were sent
        self.clock = clock

    def put(self, kind: str, data: bytes) -> None:
        if kind not in self.wants:
            return
        if kind == "log":
            self.logs.append(data)
        else:
            self.skipped += kind in self.slots
            self.slots[kind] = data
        self.ready.set()

    def _pending(self, kind: str) -> bool:
        return bool(self.logs) if kind == "log" else kind in self.slots

    def _due_at(self, kind: str) -> float:
        return self.sent_at.get(kind, -float("inf")) + self.wants.get(kind, 0.0)

    def take(self) -> list[bytes]:
        """Everything pending and due, in KINDS order (logs as a group in their place)."""
        now = self.clock()
        out = []
        for kind in KINDS:
            if not self._pending(kind) or self._due_at(kind) > now:
                continue
            if kind == "log":
                out.extend(self.logs)
                self.logs.clear()
            else:
                out.append(self.slots.pop(kind))
            if self.wants.get(kind):
                self.sent_at[kind] = now
        self.ready.clear()
        return out

    def next_due(self) -> float | None:
        """When the earliest pending kind may go (None: nothing pending)."""
        times = [self._due_at(kind) for kind in KINDS if self._pending(kind)]
        return min(times) if times else None

    def close(self) -> None:
        self.closed = True
        self.ready.set()


class Hub:
    def __init__(self, ping_every_s: float = 15.0) -> None:
        self.ping_every_s = ping_every_s
        self.clients: dict[str, Client] = {}
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
        for client in list(self.clients.values()):
            client.close()

    # --- publishing (any thread) ----------------------------------------------------------
    def publish(self, kind: str, payload: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        for part_kind, part in split_published(kind, payload):
            self._hand_over(part_kind, encode_event(part_kind, part))

    def _hand_over(self, kind: str, data: bytes) -> None:
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
        if kind == "markers" and self.latest.get(kind) == data:
            return                          # unchanged: every page has it already
        self.published += 1
        if kind == "log":
            self.recent_logs.append(data)
        else:
            self.latest[kind] = data
        for client in self.clients.values():
            client.put(kind, data)

    # --- subscribing (event loop) -------------------------------------------------------
    def connect(self, wants: dict[str, float] | None = None) -> Client:
        client = Client(wants)
        self._give_latest(client, client.wants)
        client.ready.set()
        if self.closed:
            client.close()
        self.clients[client.id] = client
        return client

    def _give_latest(self, client: Client, kinds) -> None:
        for kind in KINDS:
            if kind not in kinds:
                continue
            if kind == "log":
                client.logs.extend(self.recent_logs)
            elif kind in self.latest:
                client.slots[kind] = self.latest[kind]

    def subscribe(self, client_id: str, wants: dict[str, float]) -> Client | None:
        """Change an open stream's subscription (None: no such stream). Kinds it adds get
        their latest event at once; kinds it drops lose what was pending."""
        client = self.clients.get(client_id)
        if client is None or client.closed:
            return None
        added = set(wants) - set(client.wants)
        for kind in set(client.wants) - set(wants):
            if kind == "log":
                client.logs.clear()
            client.slots.pop(kind, None)
            client.sent_at.pop(kind, None)
        client.wants = dict(wants)
        self._give_latest(client, added)
        client.ready.set()
        return client

    def disconnect(self, client: Client) -> None:
        if self.clients.get(client.id) is client:
            del self.clients[client.id]

    async def stream(self, wants: dict[str, float] | None = None) -> AsyncIterator[bytes]:
        """The bytes of one client's response body, until the hub closes or the client goes.
        The client is registered on the first iteration, so a response that never starts
        leaves nothing behind."""
        client = self.connect(wants)
        try:
            hello = {"id": client.id, "events": format_subscription(client.wants)}
            yield RETRY + f"event: hello\ndata: {dumps(hello)}\n\n".encode()
            last_sent = client.clock()
            while True:
                wake = last_sent + self.ping_every_s
                due = client.next_due()
                if due is not None:
                    wake = min(wake, due)
                if not client.ready.is_set():
                    try:                    # a floor: never spin on a clock that has not moved
                        await asyncio.wait_for(client.ready.wait(),
                                               max(0.001, wake - client.clock()))
                    except TimeoutError:
                        pass
                chunks = client.take()
                if chunks:
                    yield b"".join(chunks)
                    last_sent = client.clock()
                elif client.clock() - last_sent >= self.ping_every_s:
                    yield PING
                    last_sent = client.clock()
                if client.closed:
                    return
        finally:
            self.disconnect(client)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
