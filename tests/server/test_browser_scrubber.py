"""The scrubber in Chromium against a real uvicorn: dragging it back shows the network view
and the test set of a checkpoint (and marks both charts), "Live" follows training again, and
each tab scrubs for itself."""

from __future__ import annotations

import httpx
import pytest

from tests.server.browser import OUTPUT, watch_console
from tests.server.conftest import presenter, tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live

WAIT_MS = 30000     # generous: a loaded 2-core machine
STEPS = 24


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("scrubber")
    with live_server(tiny_settings(directory, start_paused=True)) as (base, _app):
        wait_ready_live(base)
        for _ in range(STEPS):
            response = httpx.post(f"{base}/api/control", json={"action": "step"},
                                  headers=presenter(), timeout=30)
            assert response.status_code == 200, response.text
        yield base


def open_viewer(server, browser, width=1400, height=900):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(server)
    page.wait_for_function(f"Number(document.querySelector('#scrub-range').max) === {STEPS}",
                           timeout=WAIT_MS)
    return context, page, problems


def example_title(page) -> str:
    return page.locator(".nv-example-title").first.inner_text()


def scrub_to(page, step: int) -> None:
    page.locator("#scrub-range").focus()       # fetches the checkpoint list
    page.locator("#scrub-range").fill(str(step))


def test_scrubbing_back_shows_a_checkpoint_and_live_returns(server, browser):
    context, page, problems = open_viewer(server, browser)
    page.locator("#net-panel").scroll_into_view_if_needed()
    page.wait_for_selector(".nv-example-title", timeout=WAIT_MS)
    assert "looking back" not in example_title(page)
    scrub_to(page, 3)
    page.wait_for_function("document.querySelector('#scrub-status').textContent"
                           ".startsWith('step 3 ·')", timeout=WAIT_MS)
    page.wait_for_function("document.querySelector('.nv-example-title').textContent"
                           ".includes('step 3 (looking back')", timeout=WAIT_MS)
    assert page.locator(".scrubber.scrubbed").count() == 1
    assert not page.locator(".scrub-live").is_disabled()
    # the test set shows the checkpoint's predictions (the gallery of step 3)
    past = httpx.get(f"{server}/api/gallery", params={"step": 3}).json()
    assert past["step"] == 3
    page.locator("#charts-panel").screenshot(path=str(OUTPUT / "scrubber-charts-1400x900.png"))
    page.locator("#net-panel").screenshot(path=str(OUTPUT / "scrubber-netview-1400x900.png"))
    page.locator(".scrub-live").click()
    page.wait_for_function("!document.querySelector('.nv-example-title').textContent"
                           ".includes('looking back')", timeout=WAIT_MS)
    assert page.locator("#scrub-status").inner_text().startswith("live")
    assert page.locator("#scrub-range").input_value() == str(STEPS)
    context.close()
    assert not problems, problems


def test_each_tab_scrubs_for_itself(server, browser):
    first, page_a, problems_a = open_viewer(server, browser)
    second, page_b, problems_b = open_viewer(server, browser, 390, 844)
    page_a.locator("#net-panel").scroll_into_view_if_needed()
    page_a.wait_for_selector(".nv-example-title", timeout=WAIT_MS)
    scrub_to(page_a, 1)
    page_a.wait_for_function("document.querySelector('.nv-example-title').textContent"
                             ".includes('step 1 (looking back')", timeout=WAIT_MS)
    assert page_b.locator("#scrub-status").inner_text().startswith("live")
    page_b.locator("#charts-panel").scroll_into_view_if_needed()
    scrub_to(page_b, 10)
    page_b.wait_for_function("document.querySelector('#scrub-status').textContent"
                             ".startsWith('step 10 ·')", timeout=WAIT_MS)
    page_b.screenshot(path=str(OUTPUT / "scrubber-phone-390x844.png"))
    assert "step 1 (looking back" in example_title(page_a)
    first.close()
    second.close()
    assert not problems_a and not problems_b, (problems_a, problems_b)


def test_a_drag_back_over_checkpoints_seen_asks_for_nothing_again(server, browser):
    context, page, problems = open_viewer(server, browser)
    page.locator("#net-panel").scroll_into_view_if_needed()
    page.wait_for_selector(".nv-example-title", timeout=WAIT_MS)
    asked = []
    page.on("request", lambda request: asked.append(request.url)
            if "/api/frame?step=" in request.url or "/api/gallery?step=" in request.url
            else None)
    for step in (5, 6, 5):
        scrub_to(page, step)
        page.wait_for_function("document.querySelector('.nv-example-title').textContent"
                               f".includes('step {step} (looking back')", timeout=WAIT_MS)
        page.wait_for_timeout(500)          # the gallery is asked for once the handle rests
    frames = [url for url in asked if "/api/frame?" in url]
    galleries = [url for url in asked if "/api/gallery?" in url]
    assert sorted(url.rsplit("=", 1)[1] for url in frames) == ["5", "6"], asked
    assert sorted(url.rsplit("=", 1)[1] for url in galleries) == ["5", "6"], asked
    context.close()
    assert not problems, problems
