"""Presenter sessions and the wrong-token limiter stay bounded whatever comes at them."""

from __future__ import annotations

import pytest

from server.sessions import FailureLimiter, Sessions


def test_sessions_are_bounded_and_the_oldest_goes_first():
    sessions = Sessions(limit=3)
    ids = [sessions.new() for _ in range(5)]
    assert len(sessions) == 3
    assert [sessions.valid(i) for i in ids] == [False, False, True, True, True]
    assert not sessions.valid("") and not sessions.valid(None)
    assert len(set(ids)) == 5 and all(len(i) >= 40 for i in ids)


def test_the_limiter_forgets_after_its_window_and_stays_bounded():
    now = [0.0]
    limiter = FailureLimiter(limit=2, window_s=60, max_addresses=100, clock=lambda: now[0])
    limiter.failed("a"), limiter.failed("a")
    assert limiter.retry_after("a") == pytest.approx(60)
    now[0] = 30
    assert limiter.retry_after("a") == pytest.approx(30)
    now[0] = 60.5
    assert limiter.retry_after("a") is None
    for k in range(10_000):                             # a botnet's worth of addresses
        limiter.failed(f"10.{k // 256}.{k % 256}.1")
        limiter.failed(f"10.{k // 256}.{k % 256}.1")
    assert len(limiter) == 100
    assert limiter.retry_after("10.39.15.1") is not None    # the most recent are kept
