"""The server stops and starts again under an open page, in Chromium against real uvicorn
servers on one port: while the server is down the status pill says "disconnected" (it said
"training"), it shows the run's status again once the stream is back, and the presenter gets a
one-click "Resume the saved run" for the snapshot the first server saved, saying what it is."""

from __future__ import annotations

import socket

import httpx

from tests.server.browser import watch_console
from tests.server.conftest import TOKEN, presenter, tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live

WAIT_MS = 45000     # the browser's own reconnect waits a few seconds; a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pill(page) -> str:
    return page.inner_text("#status-pill").strip()


def test_the_pill_says_disconnected_while_the_server_is_down(tmp_path, browser):
    settings = tiny_settings(tmp_path, start_paused=False)
    port = free_port()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = watch_console(page)
    with live_server(settings, port=port) as (base, _app):
        page.goto(base + "/")
        page.wait_for_function("document.getElementById('status-pill').textContent"
                               ".includes('training')", timeout=WAIT_MS)
    page.wait_for_function("document.getElementById('status-pill').textContent"
                           " === 'disconnected'", timeout=WAIT_MS)
    assert "training" not in page.inner_text("#stats")      # the status row agrees
    assert page.get_attribute("#status-pill", "class") == "pill status-disconnected"
    with live_server(settings, port=port):
        page.wait_for_function("document.getElementById('status-pill').textContent"
                               ".includes('training')", timeout=WAIT_MS)
    context.close()
    # the page logs the refused reconnects as failed resources only
    assert not [p for p in problems if "ERR_CONNECTION_REFUSED" not in p], problems


def test_a_restarted_server_offers_the_saved_run_and_one_click_resumes_it(tmp_path, browser):
    settings = tiny_settings(tmp_path, start_paused=True)
    port = free_port()
    with live_server(settings, port=port) as (base, _app):
        wait_ready_live(base)
        for _ in range(3):
            httpx.post(f"{base}/api/control", json={"action": "step"}, headers=presenter())
        saved = httpx.post(f"{base}/api/snapshot", headers=presenter())
        assert saved.status_code == 200, saved.text
        first = httpx.get(f"{base}/api/state").json()
        assert first["metrics"]["step"] == 3
        assert first["resumable"] is None        # the run did not start from it

    with live_server(settings, port=port) as (base, _app):
        wait_ready_live(base)
        offer = httpx.get(f"{base}/api/state").json()["resumable"]
        assert offer is not None and offer["step"] == 3, offer
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        problems = watch_console(page)
        page.goto(f"{base}/?token={TOKEN}")
        page.wait_for_selector("#resume-offer:not([hidden]) #resume-saved", timeout=WAIT_MS)
        text = page.inner_text("#resume-offer")
        assert "step 3" in text and "saved" in text and "null" not in text, text
        assert offer["net"] in text, text
        assert "test accuracy" in text or "not tested" in text, text
        page.click("#resume-saved")
        page.wait_for_function("document.getElementById('resume-offer').textContent"
                               ".includes('Resumed the saved run')", timeout=WAIT_MS)
        state = httpx.get(f"{base}/api/state").json()
        assert state["metrics"]["step"] == 3
        assert state["resumable"] is None
        page.wait_for_function("document.getElementById('stat-step').textContent === '3'",
                               timeout=WAIT_MS)
        context.close()
        assert not problems, problems
