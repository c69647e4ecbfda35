"""Presenter sessions and the wrong-token limiter; both bounded, both in memory.

Sessions: the presenter cookie holds a random session id (256 bits), never the token, so a
leaked cookie (a shared browser profile, a screenshot of the dev tools) is not the token.
Ids are kept hashed (a lookup's timing says nothing about a real id), at most `limit` at
once: a new login drops the oldest. With a store (server/credentials.py, what `serve` uses)
the hashes outlive a restart, so the presenter's open page stays the presenter's; they end
with the token they were made under.

Wrong tokens: each client address may fail `limit` times per `window_s`; then every token
it offers is refused (429 with Retry-After) until its oldest failure leaves the window. The
table keeps at most `max_addresses` rows (the least recently failing address goes first) and
each row at most `limit` times, so memory is bounded whatever the number of addresses.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict, deque
from typing import Callable


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).digest()


class Sessions:
    def __init__(self, limit: int, store=None) -> None:
        """store: a server.credentials.SessionStore, or None to keep sessions in memory."""
        self.limit = limit
        self.store = store
        self._ids: OrderedDict[bytes, None] = OrderedDict.fromkeys(
            store.load(limit) if store is not None else ())
        self._version = 0

    def __len__(self) -> int:
        return len(self._ids)

    def new(self) -> str:
        session_id = secrets.token_urlsafe(32)
        self._ids[_digest(session_id)] = None
        while len(self._ids) > self.limit:
            self._ids.popitem(last=False)
        self._version += 1
        return session_id

    def saver(self) -> Callable[[], None] | None:
        """The write of the sessions as they are now, to run in a worker thread (it fsyncs);
        None without a store."""
        if self.store is None:
            return None
        version, hashes, store = self._version, list(self._ids), self.store
        return lambda: store.save(version, hashes)

    def valid(self, session_id: str | None) -> bool:
        return bool(session_id) and _digest(session_id) in self._ids


class FailureLimiter:
    def __init__(self, limit: int, window_s: float, max_addresses: int,
                 clock=time.monotonic) -> None:
        self.limit, self.window_s, self.max_addresses = limit, window_s, max_addresses
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, address: str) -> float | None:
        """Seconds until `address` may try again, or None when it may now."""
        failures = self._failures.get(address)
        if failures is None:
            return None
        now = self.clock()
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        if len(failures) < self.limit:
            return None
        return failures[0] + self.window_s - now

    def failed(self, address: str) -> None:
        failures = self._failures.pop(address, None) or deque(maxlen=self.limit)
        failures.append(self.clock())
        self._failures[address] = failures          # the most recent at the end
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
