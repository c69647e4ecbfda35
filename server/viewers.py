"""Who a viewer is, without an account, and how often a viewer may send something.

A viewer is a browser: an anonymous random id in a cookie (`convnet_viewer_<port>`, HttpOnly,
SameSite=Strict, 12 hours), minted on its first request that needs one. It says "the same
browser" (one answer per browser per question) and nothing else; it is not a credential, and
a student who clears cookies is a new viewer, as one who opens another browser is: what it
bounds is what one browser does, while the per-address RateLimit bounds a script.

RateLimit: a token bucket per client address (an IPv4 address, an IPv6 /64: server/guard.py
client_key), `rate` requests per second with bursts of `burst`, over a bounded table (the
least recently seen address is forgotten first). A refused request gets 429 with
Retry-After.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import OrderedDict

from fastapi import Request, Response

from server.auth import client_address
from server.errors import ApiError

VIEWER_COOKIE = "convnet_viewer"
VIEWER_MAX_AGE_S = 12 * 3600
ID_BYTES = 12


def viewer_cookie_name(request: Request) -> str:
    port = request.url.port or (443 if request.url.scheme == "https" else 80)
    return f"{VIEWER_COOKIE}_{port}"


def viewer_id(request: Request) -> str | None:
    """This browser's viewer id, or None before it has one (or a cookie that is not one)."""
    value = request.cookies.get(viewer_cookie_name(request))
    if value is None or len(value) != 2 * ID_BYTES or not all(
            c in "0123456789abcdef" for c in value):
        return None
    return value


def ensure_viewer(request: Request, response: Response) -> str:
    """This browser's viewer id, minting one (and setting its cookie on `response`)."""
    existing = viewer_id(request)
    if existing is not None:
        return existing
    minted = secrets.token_hex(ID_BYTES)
    response.set_cookie(viewer_cookie_name(request), minted, max_age=VIEWER_MAX_AGE_S,
                        httponly=True, samesite="strict", path="/")
    return minted


class RateLimit:
    def __init__(self, rate: float, burst: int, max_addresses: int,
                 clock=time.monotonic) -> None:
        self.rate, self.burst, self.max_addresses = float(rate), int(burst), max_addresses
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, address: str) -> float | None:
        """Spend one request of `address`: None when allowed, else seconds to wait."""
        now = self.clock()
        tokens, then = self._buckets.pop(address, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        wait = None
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[address] = (tokens, now)     # the most recent at the end
        while len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)
        return wait

    def check(self, request: Request, what: str) -> None:
        """ApiError 429 (with Retry-After) when this request's address is over its rate."""
        wait = self.take(client_address(request))
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise ApiError(429, "too_many_requests", f"too many {what} from this address; "
                           f"try again in {seconds} s", headers={"Retry-After": str(seconds)})
