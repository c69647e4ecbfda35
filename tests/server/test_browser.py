"""The page in a real browser (Debian's Chromium driven by Playwright) against a real uvicorn:
the loss chart grows, layer images are drawn, an upload gets a prediction, the presenter
changes the learning rate and the net, and a viewer sees no controls. A screenshot of each
page is kept under test-output/ for people to look at."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from PIL import Image

from tests.server.browser import OUTPUT, watch_console
from tests.server.conftest import TOKEN, presenter, tiny_settings
from tests.server.live import live_server
from tests.server.tiny import TINY_SPEC


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("browser")
    settings = tiny_settings(directory, start_paused=False)
    with live_server(settings) as (base, _app):
        yield base


def png_bytes(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, format="PNG")
    return buf.getvalue()


def noise_png(width, height) -> bytes:
    """A PNG that does not compress: width*height*3 bytes and more."""
    import numpy as np
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    assert len(buf.getvalue()) > 4 * 2**20
    return buf.getvalue()


def chart_pixels(page) -> str:
    return page.evaluate("document.querySelector('#loss-chart canvas').toDataURL()")


def test_presenter_watches_uploads_and_steers(server, browser):
    OUTPUT.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(f"{server}/?token={TOKEN}")
    assert "token" not in page.url, "the token must leave the address bar"
    page.wait_for_selector("#controls-panel")

    page.wait_for_selector("#loss-chart canvas")
    first = chart_pixels(page)
    page.wait_for_function("(before) => document.querySelector('#loss-chart canvas')"
                           ".toDataURL() !== before", arg=first, timeout=30000)

    page.locator("#net-panel").scroll_into_view_if_needed()   # frames come once it shows
    page.wait_for_function("[...document.querySelectorAll('#netview img')]"
                           ".some((img) => img.src.startsWith('data:image/png') "
                           "&& img.naturalWidth > 0)", timeout=30000)

    page.set_input_files("#upload-file", files=[{"name": "light.png", "mimeType": "image/png",
                                                  "buffer": png_bytes((230, 230, 230))}])
    page.wait_for_function("document.querySelector('.upload-message').textContent"
                           ".includes('light.png:') || document.querySelector("
                           "'.upload-message.error')", timeout=30000)
    assert "error" not in page.get_attribute(".upload-message", "class"), page.inner_text(
        ".upload-message")
    page.wait_for_selector(".upload-result:not([hidden])", timeout=30000)
    result_text = page.inner_text(".upload-result")
    assert "dark" in result_text or "light" in result_text, result_text

    # A phone photo over the server's 4 MiB: the page shrinks it before sending.
    page.set_input_files("#upload-file", files=[{"name": "photo.png", "mimeType": "image/png",
                                                  "buffer": noise_png(1300, 1300)}])
    page.wait_for_function("document.querySelector('.upload-message').textContent"
                           ".includes('shrunk here') || document.querySelector("
                           "'.upload-message.error')", timeout=30000)
    assert "photo.png: 1024×1024 JPEG" in page.inner_text(".upload-message")

    # The presenter shows one test image in everyone's network view, then goes back. (Paused:
    # on this tiny set the gallery is rebuilt several times a second, faster than a click.)
    httpx.post(f"{server}/api/control", json={"action": "pause"}, headers=presenter())
    page.locator("#gallery-panel").scroll_into_view_if_needed()
    page.locator("#gallery .card.pickable").nth(1).click()
    page.wait_for_function("document.querySelector('#netview').textContent"
                           ".includes('chosen by the presenter')", timeout=30000)
    assert httpx.get(f"{server}/api/frame").json()["pinned"] is True
    page.click("#unpin")
    page.wait_for_function("document.querySelector('#unpin').hidden", timeout=30000)
    assert httpx.get(f"{server}/api/frame").json()["pinned"] is False
    httpx.post(f"{server}/api/control", json={"action": "resume"}, headers=presenter())

    page.fill("#param-learning_rate", "0.02")
    page.dispatch_event("#param-learning_rate", "change")
    page.wait_for_function("document.querySelector('#param-learning_rate-note')"
                           ".textContent.includes('applied')", timeout=30000)
    state = httpx.get(f"{server}/api/state", headers=presenter()).json()
    assert state["settings"]["learning_rate"] == pytest.approx(0.02)

    wider = json.loads(json.dumps(TINY_SPEC))
    wider[1]["filters"] = 6
    page.fill("#spec-text", json.dumps(wider, indent=1))
    apply = page.get_by_role("button", name="Apply (fresh weights)")
    page.wait_for_function("(b) => !b.disabled", arg=apply.element_handle(), timeout=30000)
    apply.click()
    page.wait_for_function(
        "fetch('/api/state').then((r) => r.json()).then((s) => "
        "s.net.spec[1].filters === 6)", timeout=30000)
    page.screenshot(path=str(OUTPUT / "presenter.png"), full_page=True)
    context.close()
    assert not problems, problems


def test_viewer_sees_everything_but_the_controls(server, browser):
    OUTPUT.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    problems = watch_console(page)
    page.goto(server + "/")
    page.wait_for_selector("#loss-chart canvas")
    page.wait_for_selector("#netview")
    assert page.locator("#controls-panel").count() == 0
    assert page.locator("#spec-text").count() == 0
    assert page.locator("#upload-file").count() == 1
    page.screenshot(path=str(OUTPUT / "viewer-phone.png"), full_page=True)
    context.close()
    assert not problems, problems


def test_a_viewer_logs_in_with_the_token_and_gets_the_controls(server, browser):
    context = browser.new_context()
    page = context.new_page()
    problems = watch_console(page)
    page.goto(server + "/")
    page.click(".login summary")
    page.fill("#token", TOKEN)
    page.click(".login-form button[type=submit]")
    page.wait_for_selector("#controls-panel")
    assert page.url == server + "/"          # the token never shows in the address
    context.close()
    assert not problems, problems
