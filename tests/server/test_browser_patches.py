"""What each filter sees, in a real browser (Debian's Chromium via Playwright, a real uvicorn):
a click on a conv filter before any test evaluation says when the patches come; after one, a
click on an activation map shows that channel's nine patches with their values and step, a
click on another filter switches the panel to that channel, and Close hides it; a conv inside
a residual block opens from the block's list of inner layers, and the panel's buttons page
through its channels, stopping at both ends. Screenshots
go to test-output/."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.server.browser import OUTPUT, watch_console
from tests.server.conftest import TOKEN, tiny_settings
from tests.server.live import live_server
from tests.server.routes.test_patches import BLOCK_SPEC

CONV = 1                    # TINY_SPEC: input, conv (4 filters), relu, pool, fc, softmax
TEST_EVERY = 2

# CSS pixels, relative to the canvas, of the middle of tile k (the layout it was drawn with)
TILE_CENTRE = """(canvas, k) => {
  const { cols, zoom, gap, tile } = canvas.dataset;
  const [h, w] = tile.split("x").map(Number);
  const scale = canvas.clientWidth / canvas.width;
  const [r, c] = [Math.floor(k / Number(cols)), k % Number(cols)];
  return { x: (c * (w * zoom + Number(gap)) + (w * zoom) / 2) * scale,
           y: (r * (h * zoom + Number(gap)) + (h * zoom) / 2) * scale };
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = tiny_settings(tmp_path_factory.mktemp("patches"), options={"test_every": TEST_EVERY})
    with live_server(settings) as (base, _app):
        yield base


def click_tile(page, key: str, k: int) -> None:
    canvas = page.locator(f"#netview .nv-row[data-index='{CONV}'] .nv-{key} canvas")
    canvas.scroll_into_view_if_needed()
    canvas.click(position=canvas.evaluate(TILE_CENTRE, k))


def panel_text(page) -> str:
    return page.locator("#patches-panel").inner_text()


def test_a_click_on_a_filter_or_a_map_shows_its_nine_patches(server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(server + "/")
    page.locator("#net-panel").scroll_into_view_if_needed()
    for key in ("filters", "act"):
        page.wait_for_function(f"document.querySelector(\"#netview .nv-row[data-index='{CONV}'] "
                               f".nv-{key} canvas\")?.dataset.count === '4'", timeout=60000)

    # no test evaluation yet: the panel says when the patches come
    click_tile(page, "filters", 2)
    page.wait_for_function("document.querySelector('#patches-panel')?.dataset.state "
                           "=== 'patches_not_ready'", timeout=30000)
    assert "Layer 1, channel 2" in panel_text(page)
    assert f"after the next test evaluation (at step {TEST_EVERY})" in panel_text(page)

    # the presenter trains two steps: a test evaluation, then the patches are found
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server, headers=auth, timeout=30) as api:
        for _ in range(TEST_EVERY):
            assert api.post("/api/control", json={"action": "step"}).status_code == 200
        for _ in range(600):
            if api.get(f"/api/filters/{CONV}/0").status_code == 200:
                break
            page.wait_for_timeout(50)
    click_tile(page, "act", 0)
    page.wait_for_function("document.querySelectorAll('#patches-panel .patch img').length === 9"
                           " && [...document.querySelectorAll('#patches-panel .patch img')]"
                           ".every((img) => img.complete && img.naturalWidth > 0)",
                           timeout=30000)
    text = panel_text(page)
    assert "Layer 1, channel 0" in text and f"weights of step {TEST_EVERY}" in text
    assert "3×3 receptive field" in text
    captions = page.locator("#patches-panel .patch figcaption").all_inner_texts()
    assert len(captions) == 9 and all(c.startswith("#") and " · " in c for c in captions)
    values = [float(c.split(" · ")[1]) for c in captions]
    assert values == sorted(values, reverse=True)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "patches-laptop-1400x900.png"))
    page.locator("#patches-panel").screenshot(path=str(OUTPUT / "patches-panel.png"))

    # another filter: the same panel, that channel
    click_tile(page, "filters", 3)
    page.wait_for_function("document.querySelector('#patches-title').textContent"
                           ".includes('channel 3') && document.querySelectorAll("
                           "'#patches-panel .patch img').length === 9", timeout=30000)
    page.locator("#patches-panel").get_by_role("button", name="Close").click()
    assert page.locator("#patches-panel").is_hidden()
    context.close()
    assert not problems, problems


def test_on_a_phone_the_panel_fits_the_screen(server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    problems = watch_console(page)
    page.goto(server + "/")
    page.locator("#net-panel").scroll_into_view_if_needed()
    page.wait_for_function(f"document.querySelector(\"#netview .nv-row[data-index='{CONV}'] "
                           ".nv-act canvas\")?.dataset.count === '4'", timeout=60000)
    click_tile(page, "act", 1)
    page.wait_for_function("document.querySelector('#patches-panel')?.dataset.state", timeout=30000)
    box = page.locator("#patches-panel").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "patches-phone-390x844.png"))
    context.close()
    assert not problems, problems


def test_a_conv_inside_a_block_opens_from_its_inner_layers_and_pages_its_channels(
        tmp_path, browser):
    settings = tiny_settings(tmp_path, options={"test_every": TEST_EVERY})
    with live_server(settings) as (base, _app):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=base, headers=auth, timeout=30) as api:
            assert api.put("/api/net", json={"spec": BLOCK_SPEC}).status_code == 200
            for _ in range(TEST_EVERY):
                assert api.post("/api/control", json={"action": "step"}).status_code == 200
            for _ in range(600):
                if api.get("/api/filters/3.layers.2/0").status_code == 200:
                    break
                time.sleep(0.05)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        problems = watch_console(page)
        page.goto(base + "/")
        row = page.locator("#netview .nv-row[data-index='3']")
        row.scroll_into_view_if_needed()
        row.locator(".nv-children summary").click()
        buttons = row.locator("button.nv-sees")
        assert buttons.count() == 2                          # the two convs, not the relu
        row.locator("button.nv-sees[data-layer='3.layers.2']").click()
        page.wait_for_function("document.querySelectorAll('#patches-panel .patch img').length"
                               " === 9", timeout=30000)
        assert "Layer 3.layers.2, channel 0" in panel_text(page)
        assert "12×12 receptive field" in panel_text(page)
        previous = page.locator("#patches-panel .patches-previous")
        following = page.locator("#patches-panel .patches-next")
        assert previous.is_disabled() and following.is_enabled()
        for channel in (1, 2, 3):
            following.click()
            page.wait_for_function(f"document.querySelector('#patches-title').textContent"
                                   f".includes('channel {channel}') && document."
                                   f"querySelector('#patches-panel').dataset.state === 'shown'",
                                   timeout=30000)
        assert following.is_disabled() and previous.is_enabled()    # 4 channels: 0..3
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "patches-inner-conv-1400x900.png"))
        context.close()
        assert not problems, problems
