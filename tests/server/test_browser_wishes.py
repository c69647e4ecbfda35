"""The page asks the stream only for what it shows (static/js/wishes.js), in Chromium against
a real uvicorn: a phone at the top of the page takes no frames and no gallery, scrolling the
network view in brings its frames (and the picture at once), scrolling away stops them, a
hidden tab hears only state, net and log, and a screen with every panel in view takes
everything. The two viewer wishes are the ones server.measure measures."""

from __future__ import annotations

import time

import pytest

from server.events import format_subscription
from server.measure import VIEWER_ALL, VIEWER_TOP
from tests.server.browser import watch_console
from tests.server.conftest import TOKEN, tiny_settings
from tests.server.live import live_server


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wishes")
    settings = tiny_settings(directory, start_paused=False, frame_every_steps=5)
    with live_server(settings) as (base, app):
        yield base, app.state.runtime.hub


def wish_of_the_page(hub, expected: str, timeout: float = 15.0) -> str:
    """Waits until the page's one stream asks for `expected`; returns what it asks for."""
    deadline = time.monotonic() + timeout
    while True:
        wishes = [format_subscription(c.wants) for c in list(hub.clients.values())]
        if wishes == [expected] or time.monotonic() > deadline:
            return wishes[0] if len(wishes) == 1 else str(wishes)
        time.sleep(0.05)


def set_hidden(page, hidden: bool) -> None:
    """What a browser does when its tab goes to the background (headless tabs never do)."""
    page.evaluate("""(hidden) => {
        Object.defineProperty(document, "visibilityState",
                              { value: hidden ? "hidden" : "visible", configurable: true });
        Object.defineProperty(document, "hidden", { value: hidden, configurable: true });
        document.dispatchEvent(new Event("visibilitychange"));
    }""", hidden)


def test_a_phone_asks_for_the_network_view_only_while_it_shows(live, browser):
    base, hub = live
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    problems = watch_console(page)
    frames = []
    page.on("request", lambda r: "/api/frame" in r.url and frames.append(r.url))
    page.goto(base + "/")
    page.wait_for_selector("#loss-chart canvas")
    assert wish_of_the_page(hub, VIEWER_TOP) == VIEWER_TOP
    time.sleep(1)                            # frames are published all along meanwhile
    assert page.locator("#netview img[src^='data:image/png']").count() == 0

    page.locator("#net-panel").scroll_into_view_if_needed()
    with_frames = VIEWER_TOP.replace(",runs", ",frame:10,runs")   # the runs panel is near
    assert wish_of_the_page(hub, with_frames) == with_frames
    page.wait_for_function("[...document.querySelectorAll('#netview img')]"
                           ".some((img) => img.src.startsWith('data:image/png'))",
                           timeout=5000)        # the latest frame, without waiting 10 s

    page.evaluate("window.scrollTo(0, 0)")
    assert wish_of_the_page(hub, VIEWER_TOP) == VIEWER_TOP
    set_hidden(page, True)
    assert wish_of_the_page(hub, "state,net,log") == "state,net,log"
    set_hidden(page, False)
    assert wish_of_the_page(hub, VIEWER_TOP) == VIEWER_TOP
    assert not frames, "the stream brings frames; the page must not fetch them"
    context.close()
    assert not problems, problems


def test_a_screen_showing_every_panel_takes_everything(live, browser):
    base, hub = live
    context = browser.new_context(viewport={"width": 1400, "height": 9000})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(base + "/")
    assert wish_of_the_page(hub, VIEWER_ALL) == VIEWER_ALL
    page.wait_for_selector("#gallery .card img[src^='data:image/png']", timeout=15000)
    context.close()
    assert not problems, problems


def test_the_presenter_takes_every_frame_of_the_network_view_it_shows(live, browser):
    base, hub = live
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/?token={TOKEN}")
    page.wait_for_selector("#controls-panel")
    page.locator("#net-panel").scroll_into_view_if_needed()
    wish = wish_of_the_page(hub, "state,net,log,markers,history,metrics,frame,poll")
    assert wish == "state,net,log,markers,history,metrics,frame,poll"
    context.close()
