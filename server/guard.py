"""What one client may hold of the server, and for how long: the connection guard.

uvicorn 0.55 (h11) bounds the size of a request head (16 KiB) and the idle time between two
requests (timeout_keep_alive, armed only after a response), but nothing bounds how long a
connection may take to send its head or its body, how long a response may sit unread, or
how many connections one address holds. A client that connects and sends half a head holds
its socket (and a file descriptor) for good; ~1,000 of them exhaust a laptop's 1,024
descriptors. ConnectionGuard adds those bounds for a protocol that reports its phases
(server/uvicorn_protocol.py does it for uvicorn's H11Protocol):

- HEAD (connected, or the first byte of a next request arrived): the head must be complete
  within header_timeout_s, however it trickles in;
- BODY: after a grace of body_grace_s the body must have averaged body_min_rate bytes/s
  (server/bodies.py applies the same rule to the bodies routes read and answers 408; this is
  the backstop, at twice the grace, for bodies nobody reads);
- BUSY (the app is answering): no deadline, except that a response the client stops reading
  (the transport's write buffer stays full, e.g. an event stream on a frozen phone) for
  write_stall_timeout_s is dropped;
- IDLE (keep-alive between requests): uvicorn's own timer closes it.
Connections per client address are capped (beyond: a 503 and a hang-up); at the global cap
(below the file-descriptor limit) a connection still waiting for a head, or idle, makes room
for the newcomer: among the oldest waiting, one of the address that has the most waiting (so
a flood from many addresses pushes out its own connections before a single newcomer's).
Every refusal and drop is counted and logged as one line per interval, never a line per
connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import time
from dataclasses import dataclass

logger = logging.getLogger("server")

HEAD, BODY, BUSY, IDLE = "head", "body", "busy", "idle"
FD_RESERVE = 64             # descriptors kept for files: data cache, snapshots, Numba, logs
FDS_PER_CONNECTION = 2      # its socket, and a static file it may be sending
LOG_ADDRESSES = 1000        # distinct addresses counted per log interval, the rest summed
EVICTION_SCAN = 64          # waiting connections looked at (oldest first) to pick one to drop
ACCEPT_FAILED = "socket.accept() out of system resource"
REFUSED, DROPPED = "refused {n} connections", "dropped {n} connections"


def client_key(host: str | None) -> str:
    """Who a per-client cap counts: the IPv4 address, or the /64 an IPv6 device picks its
    addresses from (one device can use many addresses of its /64)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if not address.is_loopback:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard limit (a laptop's default soft limit of
    1,024 would run out with a few hundred clients); returns the (soft, hard) in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target in (hard, 1 << 20, 10240):  # macOS refuses RLIM_INFINITY; OPEN_MAX is 10240
        if target == resource.RLIM_INFINITY or target <= soft:
            continue
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def connection_cap(wanted: int) -> int:
    """`wanted`, lowered so that connections cannot exhaust the file descriptors."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(8, min(wanted, (soft - FD_RESERVE) // FDS_PER_CONNECTION))


class IntervalLog:
    """Counts refusals and drops by what happened, why, and to whom; one log line per
    interval ("refused 268 connections in the last 10 s: ...")."""

    def __init__(self, interval_s: float = 10.0, log: logging.Logger = logger) -> None:
        self.interval_s, self.log = interval_s, log
        self.counts: dict[tuple[str, str], dict[str, int]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._since = time.monotonic()

    def count(self, what: str, reason: str, client: str = "", n: int = 1) -> None:
        """`what` says what happened n times, with {n} where the number goes."""
        by_client = self.counts.setdefault((what, reason), {})
        if client not in by_client and len(by_client) >= LOG_ADDRESSES:
            client = "others"
        by_client[client] = by_client.get(client, 0) + n
        if self._timer is None:
            self._since = time.monotonic()
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self.interval_s, self.flush)

    def flush(self, early: bool = False) -> None:
        """Log the counts; `early`: before the interval is over (the server stops)."""
        if early and isinstance(self._timer, asyncio.TimerHandle):
            self._timer.cancel()
        self._timer = None
        if not self.counts:
            return
        seconds = min(self.interval_s, time.monotonic() - self._since) if early \
            else self.interval_s
        parts = []
        for (what, reason), by_client in self.counts.items():
            top = sorted(by_client.items(), key=lambda item: -item[1])[:3]
            who = ", ".join(f"{n} from {client}" for client, n in top if client)
            parts.append(f"{what.format(n=sum(by_client.values()))} in the last "
                         f"{seconds:.3g} s: {reason}" + (f" ({who})" if who else ""))
        self.counts = {}
        self.log.warning("; ".join(parts))


@dataclass(frozen=True)
class Limits:
    header_timeout_s: float = 10.0
    body_grace_s: float = 10.0
    body_min_rate: float = 16 * 1024
    write_stall_timeout_s: float = 30.0
    max_connections: int = 4096
    max_connections_per_client: int = 32
    unlimited_clients: frozenset = frozenset({"127.0.0.1", "::1"})

    @property
    def sweep_s(self) -> float:
        shortest = min(self.header_timeout_s, self.body_grace_s, self.write_stall_timeout_s)
        return min(1.0, max(0.05, shortest / 4))


class ConnectionGuard:
    """Bookkeeping and deadlines for every connection of one server (event loop only).

    A connection is any object with `peer` (client_key), `phase`, `since`, `body_bytes`,
    `stalled_since` (set here), `reading_paused()` and `drop(reason)`."""

    def __init__(self, limits: Limits, log: IntervalLog | None = None, clock=time.monotonic):
        self.limits, self.clock = limits, clock
        self.log = log or IntervalLog()
        self.connections: dict = {}      # every admitted connection (ordered: oldest first)
        self.waiting: dict = {}          # those in HEAD or IDLE, oldest first: evicted first
        self.per_client: dict[str, int] = {}
        self.waiting_per_client: dict[str, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._last_sweep = clock()

    def admit(self, conn) -> str | None:
        """Register a new connection, or say why it is refused (the caller hangs up)."""
        limits, peer = self.limits, conn.peer
        if (peer not in limits.unlimited_clients
                and self.per_client.get(peer, 0) >= limits.max_connections_per_client):
            reason = (f"over {limits.max_connections_per_client} connections per client "
                      "address")
            self.log.count(REFUSED, reason, peer)
            return reason
        if len(self.connections) >= limits.max_connections:
            if not self.waiting:
                reason = f"all {limits.max_connections} connections busy"
                self.log.count(REFUSED, reason, peer)
                return reason
            victim = self._victim()
            self.log.count(DROPPED, "waiting ones, to make room for new ones (at the cap of "
                           f"{limits.max_connections})", victim.peer)
            self.release(victim)
            victim.drop("evicted")
        self.connections[conn] = None
        self.per_client[peer] = self.per_client.get(peer, 0) + 1
        conn.stalled_since = None
        self.enter(conn, HEAD)
        if self._timer is None:
            self._last_sweep = self.clock()
            self._timer = asyncio.get_running_loop().call_later(self.limits.sweep_s,
                                                                self._sweep)
        return None

    def enter(self, conn, phase: str) -> None:
        if conn not in self.connections:
            return
        conn.phase, conn.since, conn.body_bytes = phase, self.clock(), 0
        self._stop_waiting(conn)
        if phase in (HEAD, IDLE):         # to the back of the line
            self.waiting[conn] = None
            self.waiting_per_client[conn.peer] = self.waiting_per_client.get(conn.peer, 0) + 1

    def _stop_waiting(self, conn) -> None:
        if self.waiting.pop(conn, "no") is None:
            left = self.waiting_per_client[conn.peer] - 1
            if left:
                self.waiting_per_client[conn.peer] = left
            else:
                del self.waiting_per_client[conn.peer]

    def _victim(self):
        """Among the oldest waiting connections, the oldest of the address with the most."""
        victim, most = None, 0
        for _, conn in zip(range(EVICTION_SCAN), self.waiting):
            if self.waiting_per_client[conn.peer] > most:
                victim, most = conn, self.waiting_per_client[conn.peer]
        return victim

    def stalled(self, conn, stalled: bool) -> None:
        conn.stalled_since = self.clock() if stalled else None

    def release(self, conn) -> None:
        if self.connections.pop(conn, "gone") == "gone":
            return
        self._stop_waiting(conn)
        left = self.per_client[conn.peer] - 1
        if left:
            self.per_client[conn.peer] = left
        else:
            del self.per_client[conn.peer]

    def lost_mid_body(self, conn) -> None:
        if conn not in self.connections:     # dropped by us, and counted as such
            return
        self.log.count("{n} clients hung up in the middle of a request body",
                       "nothing to answer", conn.peer)

    def _sweep(self) -> None:
        now, limits = self.clock(), self.limits
        elapsed, self._last_sweep = now - self._last_sweep, now
        overdue = []
        for conn in self.connections:
            if conn.stalled_since is not None and (
                    now - conn.stalled_since > limits.write_stall_timeout_s):
                overdue.append((conn, f"the client read nothing of its response for "
                                f"{limits.write_stall_timeout_s:g} s"))
            elif conn.phase == HEAD and now - conn.since > limits.header_timeout_s:
                overdue.append((conn, f"no complete request head within "
                                f"{limits.header_timeout_s:g} s"))
            elif conn.phase == BODY:
                if conn.reading_paused():  # the app is not reading: not the client's fault
                    conn.since += elapsed
                elif now > (conn.since + 2 * limits.body_grace_s
                            + conn.body_bytes / limits.body_min_rate):
                    overdue.append((conn, f"a request body slower than "
                                    f"{limits.body_min_rate / 1024:g} KiB/s"))
        for conn, reason in overdue:
            self.log.count(DROPPED, reason, conn.peer)
            self.release(conn)
            conn.drop(reason)
        self._timer = (asyncio.get_running_loop().call_later(limits.sweep_s, self._sweep)
                       if self.connections else None)


def install_accept_error_log(loop: asyncio.AbstractEventLoop, log: IntervalLog) -> None:
    """asyncio logs a whole traceback for every failed accept() when the process is out of
    file descriptors (and retries up to `backlog` times per wake-up: hundreds of MB of log a
    minute). Count those in `log` instead; anything else goes to the handler in place."""
    previous = loop.get_exception_handler()
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    reason = f"out of file descriptors (accept() failed; the limit is {soft} open files)"

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if context.get("message") == ACCEPT_FAILED:
            log.count("{n} accept() calls failed", reason)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
