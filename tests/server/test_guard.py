"""server/guard.py on its own: who counts as one client, the one-line-per-interval log, the
guard's caps and deadlines on fake connections with a fake clock, the accept() flood of a
process out of file descriptors (a real one, in a child process), and the fd limit raise."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from server.guard import (BODY, BUSY, HEAD, IDLE, ConnectionGuard, IntervalLog, Limits,
                          client_key)

ROOT = Path(__file__).resolve().parents[2]


def test_one_client_is_one_ipv4_address_or_one_ipv6_64():
    assert client_key("192.168.1.20") == "192.168.1.20"
    assert client_key("::ffff:192.168.1.20") == "192.168.1.20"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::7") \
        == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::1") == "::1" and client_key(None) == "unknown"


class FakeConnection:
    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.paused = False
        self.dropped: str | None = None

    def reading_paused(self) -> bool:
        return self.paused

    def drop(self, reason: str) -> None:
        self.dropped = reason


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(coroutine_function):
    """Run a test body on an event loop (the guard schedules its sweep there)."""
    async def main():
        return coroutine_function()
    return asyncio.run(main())


LIMITS = Limits(header_timeout_s=10, body_grace_s=10, body_min_rate=1000,
                write_stall_timeout_s=30, max_connections=6, max_connections_per_client=3,
                unlimited_clients=frozenset({"127.0.0.1"}))


def test_a_client_address_gets_its_share_and_no_more(caplog):
    def body():
        guard = ConnectionGuard(LIMITS, IntervalLog(60))
        mine = [FakeConnection("10.0.0.5") for _ in range(4)]
        assert [guard.admit(c) for c in mine[:3]] == [None] * 3
        assert "over 3 connections per client address" in guard.admit(mine[3])
        assert guard.admit(FakeConnection("10.0.0.6")) is None     # another address: fine
        assert guard.admit(FakeConnection("127.0.0.1")) is None    # this machine: no cap
        guard.release(mine[0])
        assert guard.admit(mine[3]) is None                        # a place came free
        for conn in list(guard.connections):
            guard.release(conn)
        assert guard.per_client == {} and guard.waiting == {}      # nothing left behind
        assert guard.waiting_per_client == {}
        guard.log.flush()
    with caplog.at_level(logging.WARNING, "server"):
        run(body)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["refused 1 connections in the last 60 s: over 3 connections per client "
                     "address (1 from 10.0.0.5)"]


def test_at_the_cap_the_oldest_waiting_connection_makes_room():
    def body():
        clock = Clock()
        guard = ConnectionGuard(LIMITS, IntervalLog(60), clock)
        conns = [FakeConnection(f"10.0.0.{k}") for k in range(6)]
        for conn in conns:
            clock.now += 1
            assert guard.admit(conn) is None
        guard.enter(conns[0], BUSY)        # answering: not evictable
        guard.enter(conns[1], IDLE)        # idle since now: to the back of the line
        newcomer = FakeConnection("10.0.0.9")
        assert guard.admit(newcomer) is None
        assert conns[2].dropped == "evicted" and conns[2] not in guard.connections
        for conn in conns[3:] + [conns[1], newcomer]:
            guard.enter(conn, BUSY)
        assert "all 6 connections busy" in guard.admit(FakeConnection("10.0.0.10"))
    run(body)


def test_a_flood_from_many_addresses_pushes_out_its_own_connections_first():
    def body():
        guard = ConnectionGuard(LIMITS, IntervalLog(60))
        newcomer = FakeConnection("10.0.0.1")                # the oldest, alone
        flood = [FakeConnection(f"10.0.9.{k % 2}") for k in range(5)]
        for conn in [newcomer] + flood:
            assert guard.admit(conn) is None
        assert guard.admit(FakeConnection("10.0.9.7")) is None
        assert flood[0].dropped == "evicted" and newcomer.dropped is None
        assert guard.waiting_per_client == {"10.0.0.1": 1, "10.0.9.0": 2, "10.0.9.1": 2,
                                            "10.0.9.7": 1}
    run(body)


def test_deadlines_head_body_and_unread_responses():
    def body():
        clock = Clock()
        guard = ConnectionGuard(LIMITS, IntervalLog(60), clock)
        silent, trickling, slow_body, paused_body, reader, stuck = (
            FakeConnection(f"10.0.1.{k}") for k in range(6))
        for conn in (silent, trickling, slow_body, paused_body, reader, stuck):
            guard.admit(conn)
        for conn in (slow_body, paused_body):
            guard.enter(conn, BODY)
        guard.enter(reader, BUSY)
        guard.enter(stuck, BUSY)
        guard.stalled(stuck, True)
        dropped_at = {}
        for second in range(1, 61):       # a minute in 1 s sweeps
            clock.now += 1
            slow_body.body_bytes += 500    # half the minimum rate
            paused_body.paused = True      # the app stopped reading: the client waits
            guard.stalled(reader, not reader.stalled_since)   # drains now and then
            guard._sweep()
            for conn in (silent, trickling, slow_body, stuck):
                if conn.dropped and conn not in dropped_at:
                    dropped_at[conn] = second
        assert silent.dropped == trickling.dropped == "no complete request head within 10 s"
        assert dropped_at[silent] == dropped_at[trickling] == 11
        assert stuck.dropped == "the client read nothing of its response for 30 s"
        assert dropped_at[stuck] == 31
        # the backstop: 2 x 10 s of grace, then 1 s per 1000 bytes: at 500 B/s, after 40 s
        assert slow_body.dropped == "a request body slower than 0.976562 KiB/s"
        assert dropped_at[slow_body] == 41
        assert paused_body.dropped is None and reader.dropped is None
        assert set(guard.connections) == {paused_body, reader}
        assert silent.phase == HEAD and guard.per_client == {"10.0.1.3": 1, "10.0.1.4": 1}
    run(body)


def test_the_interval_log_writes_one_line_per_interval(caplog):
    async def main():
        log = IntervalLog(0.2)
        for k in range(5000):
            log.count("refused {n} connections", "a reason", f"10.1.{k % 7}.1")
        log.count("dropped {n} connections", "another", "10.9.9.9")
        await asyncio.sleep(0.5)
        log.count("refused {n} connections", "a reason", "10.1.0.1")
        await asyncio.sleep(0.5)
    with caplog.at_level(logging.WARNING, "server"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0] == ("refused 5000 connections in the last 0.2 s: a reason (715 from "
                        "10.1.0.1, 715 from 10.1.1.1, 714 from 10.1.2.1); dropped 1 connections "
                        "in the last 0.2 s: another (1 from 10.9.9.9)")
    assert lines[1] == ("refused 1 connections in the last 0.2 s: a reason (1 from 10.1.0.1)")


def test_the_interval_log_counts_many_addresses_in_bounded_memory():
    log = IntervalLog(60)
    log._timer = object()                  # as if scheduled: count only
    for k in range(20000):
        log.count("refused {n} connections", "r", f"10.{k // 256 % 256}.{k % 256}.{k // 65536}")
    (counts,) = log.counts.values()
    assert len(counts) == 1001 and sum(counts.values()) == 20000 and counts["others"] == 19000


ACCEPT_FLOOD = textwrap.dedent("""
    import asyncio, resource, socket, sys, time
    from server.guard import IntervalLog, install_accept_error_log
    resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

    class Hold(asyncio.Protocol):
        held = []
        def connection_made(self, transport):
            self.held.append(transport)

    async def main():
        loop = asyncio.get_running_loop()
        if sys.argv[1] == "guarded":
            install_accept_error_log(loop, IntervalLog(1.0))
        server = await loop.create_server(Hold, "127.0.0.1", 0, backlog=256)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(3.0)

    asyncio.run(main())
""")


@pytest.mark.parametrize("mode", ["guarded", "asyncio"])
def test_running_out_of_descriptors_logs_a_line_a_second_not_a_traceback_per_accept(mode):
    """A real EMFILE: a child with 48 descriptors, 100 clients. asyncio alone logs a whole
    traceback per failed accept() (the mode that shows the flood the guard stops)."""
    child = subprocess.Popen([sys.executable, "-c", ACCEPT_FLOOD, mode], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    port = int(child.stdout.readline())
    clients = []
    for _ in range(100):
        clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    _, err = child.communicate(timeout=30)
    for sock in clients:
        sock.close()
    assert child.returncode == 0, err
    lines = err.splitlines()
    if mode == "asyncio":
        assert err.count("Traceback") > 50 and len(err) > 100_000, len(err)
        return
    assert "Traceback" not in err and 1 <= len(lines) <= 3, err
    assert "accept() calls failed in the last 1 s: out of file descriptors (accept() failed; " \
           "the limit is 48 open files)" in lines[0]


def test_serve_raises_the_open_file_limit_to_the_hard_limit():
    script = ("import resource; from server.guard import raise_fd_limit; "
              "print(resource.getrlimit(resource.RLIMIT_NOFILE), raise_fd_limit())")

    def low_limit():
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 256))
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, preexec_fn=low_limit,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["(128,", "256)", "(256,", "256)"], out.stderr


def test_the_sweep_stops_with_the_last_connection():
    async def main():
        guard = ConnectionGuard(Limits(header_timeout_s=0.2), IntervalLog(60))
        conn = FakeConnection("10.2.0.1")
        guard.admit(conn)
        assert guard._timer is not None
        await asyncio.sleep(0.5)           # dropped at its head deadline
        assert conn.dropped and guard._timer is None and not guard.connections
        started = time.monotonic()
        guard.admit(FakeConnection("10.2.0.2"))
        assert guard._timer is not None and time.monotonic() - started < 0.1
    asyncio.run(main())


def test_the_last_counts_are_logged_when_the_server_stops(caplog):
    async def main():
        log = IntervalLog(10)
        log.count("refused {n} connections", "a reason", "10.3.0.1")
        await asyncio.sleep(0.3)
        log.flush(early=True)              # what DemoServer.shutdown does
        assert log._timer is None
    with caplog.at_level(logging.WARNING, "server"):
        asyncio.run(main())
    (line,) = [r.getMessage() for r in caplog.records]
    assert re.fullmatch(r"refused 1 connections in the last 0\.[3-9]\d* s: a reason "
                        r"\(1 from 10\.3\.0\.1\)", line), line
