"""How the demo runs uvicorn: one function makes the Config (`serve` and the tests' live
server both use it), one the Server, and the connection guard rides on uvicorn's own h11
protocol.

GuardedH11Protocol subclasses uvicorn's H11Protocol (passed as Config(http=...)) and tells
server.guard.ConnectionGuard what each connection is doing, read from h11's state after
uvicorn has handled each event: waiting for a head, receiving a body, answering, or idle
between requests; and when its transport's write buffer stays full. The guard admits or
refuses it, and hangs up on it when a deadline passes. Requests h11 cannot parse get their
400 in the one JSON error shape (server/protocol_errors.py). WebSockets are off (the demo has
none), so a connection never changes protocol behind the guard's back.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.guard import (BODY, BUSY, HEAD, IDLE, ConnectionGuard, IntervalLog, Limits,
                          client_key, connection_cap, install_accept_error_log)
from server.protocol_errors import JSONProtocolErrors

MAX_HEAD_BYTES = 16 * 1024       # h11's default, said here: a larger request head gets 400


def guard_limits(settings) -> Limits:
    return Limits(header_timeout_s=settings.header_timeout_s,
                  body_grace_s=settings.body_grace_s, body_min_rate=settings.body_min_rate,
                  write_stall_timeout_s=settings.write_stall_timeout_s,
                  max_connections=connection_cap(settings.max_connections),
                  max_connections_per_client=settings.max_connections_per_client,
                  unlimited_clients=frozenset(settings.unlimited_clients))


def _refusal(reason: str) -> bytes:
    body = json.dumps({"error": "too_many_connections",
                       "detail": f"the server refused this connection: {reason}; close other "
                                 "tabs or try again in a few seconds"}).encode()
    return (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            b"retry-after: 2\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(body)
            + body)


class GuardedH11Protocol(JSONProtocolErrors, H11Protocol):
    guard: ConnectionGuard           # set on the subclass guarded_protocol() makes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        self.peer = client_key(peer[0] if isinstance(peer, tuple) else None)
        self.phase, self.since, self.body_bytes, self.stalled_since = HEAD, 0.0, 0, None
        self.refused = self.guard.admit(self)
        if self.refused is not None:
            self.transport = transport
            transport.write(_refusal(self.refused))
            transport.close()
            return
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.refused is not None:
            return
        if self.phase == BODY and not (self.cycle and self.cycle.response_complete):
            self.guard.lost_mid_body(self)   # not after our answer: then we hung up
        self.guard.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow(len(data))

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._follow(0)

    def pause_writing(self) -> None:
        super().pause_writing()
        self.guard.stalled(self, True)

    def resume_writing(self) -> None:
        super().resume_writing()
        self.guard.stalled(self, False)

    def reading_paused(self) -> bool:
        return self.flow is not None and self.flow.read_paused

    def drop(self, reason: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.stalled_since is not None:
            # A reset, not a close: the kernel would otherwise keep the unsent bytes and
            # retry them to a client that reads nothing.
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        else:
            self.transport.close()

    def _follow(self, received: int) -> None:
        """The guard's phase from h11's view of the client, after uvicorn's handling."""
        their = self.conn.their_state
        if their is h11.IDLE:
            waiting_head = received or self.conn.trailing_data[0] or self.phase == HEAD
            phase = HEAD if waiting_head else IDLE
        elif their is h11.SEND_BODY:
            phase = BODY
        else:
            phase = BUSY
        if phase != self.phase:
            self.guard.enter(self, phase)
        elif phase == BODY:
            self.body_bytes += received


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    return type("DemoH11Protocol", (GuardedH11Protocol,), {"guard": guard})


def make_config(app, settings, **overrides) -> uvicorn.Config:
    """The uvicorn Config for `app` under `settings` (limits from Settings, guard included)."""
    guard = ConnectionGuard(guard_limits(settings), IntervalLog(settings.guard_log_every_s))
    values = dict(host=settings.host, port=settings.port, log_level="warning",
                  timeout_graceful_shutdown=5, lifespan="on", ws="none",
                  http=guarded_protocol(guard), timeout_keep_alive=settings.keep_alive_s,
                  h11_max_incomplete_event_size=MAX_HEAD_BYTES)
    values.update(overrides)
    return uvicorn.Config(app, **values)


def make_server(config: uvicorn.Config, app, announce=None) -> uvicorn.Server:
    """A uvicorn.Server that counts accept() failures instead of logging each (and logs the
    last counts when it stops), announces the bound port once listening, and ends the event
    streams as soon as Ctrl-C arrives (so the shutdown need not wait for open streams)."""
    guard = getattr(config.http, "guard", None)

    class DemoServer(uvicorn.Server):
        async def startup(self, sockets=None):
            if guard is not None:
                install_accept_error_log(asyncio.get_running_loop(), guard.log)
            await super().startup(sockets)
            if self.started and not self.should_exit and announce is not None:
                ports = [sock.getsockname()[1] for server in getattr(self, "servers", [])
                         for sock in (server.sockets or [])]
                announce(ports[0] if ports else config.port)

        async def shutdown(self, sockets=None):
            await super().shutdown(sockets)
            if guard is not None:
                guard.log.flush(early=True)   # the counts of the unfinished interval

        def handle_exit(self, sig, frame):
            app.state.runtime.hub.close()
            super().handle_exit(sig, frame)

    return DemoServer(config)
