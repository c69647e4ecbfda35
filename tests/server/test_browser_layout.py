"""The page's layout in Chromium against a real uvicorn, at the three sizes people use it at,
with a screenshot of each kept under test-output/ for people to look at:
- 1920x1080 in projector mode (?projector=1 or the toggle): the stats, both charts, the
  network strip and the latest predictions on one screen without scrolling, axis type of at
  least 18 px, and a title that keeps "CIFAR-10" whole;
- 1400x900 (a laptop): the regularisation loss has its own scale (on the data loss's it was a
  flat line at 0), and the change markers are labelled on the chart, not only on hover;
- 390x844 (a phone): "Classify your own image" near the top, a short header, and a visible
  cue on tables wider than the screen."""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest

from engine.data.dataset import SourceInfo
from tests.server.browser import OUTPUT, watch_console
from tests.server.conftest import TOKEN, presenter, tiny_settings
from tests.server.live import live_server
from tests.server.tiny import tiny_dataset

WAIT_MS = 30000
# projector mode draws the network as a strip: its example image, and its maps
STRIP_DRAWN = ("[...document.querySelectorAll('#netstrip img')]"
               ".some((img) => img.src.startsWith('data:image/png') && img.naturalWidth > 0)"
               " && [...document.querySelectorAll('#netstrip .ns-kind-maps canvas')]"
               ".every((c) => c.dataset.count)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("layout")
    # the tiny set, presented as the bundled CIFAR-10: the page's title is then "CIFAR-10"
    cifar = dataclasses.replace(tiny_dataset(test=40), source=SourceInfo(
        "bundled", "bundled", "sha256:tiny", None, False))
    settings = tiny_settings(directory, start_paused=False, dataset=cifar, gallery_per_class=8)
    with live_server(settings) as (base, _app):
        yield base


def box(page, selector: str) -> dict:
    return page.evaluate("(s) => { const r = document.querySelector(s).getBoundingClientRect();"
                         " return {top: r.top + scrollY, bottom: r.bottom + scrollY,"
                         " left: r.left, right: r.right, height: r.height, width: r.width}; }",
                         selector)


# Heights (CSS px) of the tick labels of a chart's left axis, measured in its canvas: the rows
# of one label's glyphs between the rotated axis title and the tick marks. Digits are about
# 0.7 em tall, so 18 px type gives labels of 12.5 px and more.
TICK_HEIGHTS = """(selector) => {
  const root = document.querySelector(selector);
  const canvas = root.querySelector('canvas');
  const over = root.querySelector('.u-over').getBoundingClientRect();
  const c = canvas.getBoundingClientRect();
  const ratio = canvas.width / c.width;
  const plotLeft = Math.floor((over.left - c.left) * ratio);
  const plotTop = Math.floor((over.top - c.top) * ratio);
  const plotBottom = Math.ceil((over.bottom - c.top) * ratio);
  const data = canvas.getContext('2d').getImageData(0, 0, plotLeft, canvas.height).data;
  const from = Math.floor(plotLeft * 0.45);     // right of the axis title
  const to = plotLeft - Math.ceil(12 * ratio);  // left of the tick marks
  const inked = (y) => {
    for (let x = from; x < to; x += 1) if (data[(y * plotLeft + x) * 4 + 3] > 120) return true;
    return false;
  };
  const heights = [];
  let run = 0;
  for (let y = Math.max(0, plotTop - 30); y < Math.min(canvas.height, plotBottom + 30); y += 1) {
    if (inked(y)) run += 1;
    else { if (run) heights.push(run / ratio); run = 0; }
  }
  return heights;
}"""


def test_projector_mode_fits_one_1920x1080_screen(server, browser):
    OUTPUT.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(f"{server}/?token={TOKEN}")           # the presenter, as on the lecture laptop
    page.goto(f"{server}/?projector=1")
    page.wait_for_selector("#controls", state="attached")
    assert page.evaluate("document.documentElement.classList.contains('projector')")
    page.wait_for_selector("#loss-chart canvas")
    page.wait_for_selector("#gallery .card", timeout=WAIT_MS)
    page.wait_for_function(STRIP_DRAWN, timeout=WAIT_MS)
    page.wait_for_function("document.getElementById('data-title').textContent.includes('CIFAR-10')",
                           timeout=WAIT_MS)
    page.wait_for_timeout(1000)                      # charts and cards settle
    size = page.evaluate("[document.documentElement.scrollHeight, document.documentElement"
                         ".scrollWidth, innerHeight, innerWidth]")
    assert size[0] <= size[2] and size[1] <= size[3], size    # no scrolling, either way
    for selector in ("#stats-panel", "#stat-batch", "#loss-chart canvas", "#acc-chart canvas",
                     "#loss-chart .u-legend", "#acc-chart .u-legend", "#net-panel",
                     "#gallery-panel", "#gallery .card"):
        b = box(page, selector)
        assert b["top"] >= 0 and b["bottom"] <= 1080 and b["right"] <= 1920, (selector, b)
        assert b["height"] > 0, selector
    assert box(page, "#netstrip")["height"] >= 250         # room for the network strip
    # the strip: a column per layer of the net, the class bars named, and no scrolling in
    # the network's box (test_browser_projector.py checks it for the nets the demo runs)
    layers = httpx.get(f"{server}/api/frame").json()["layers"]
    assert page.locator("#netstrip .ns-layer").count() == len(layers)
    assert not page.is_visible("#netview")
    for selector in ("#net-panel", "#netstrip"):
        sh, ch, sw, cw = page.evaluate(
            "(s) => { const e = document.querySelector(s);"
            " return [e.scrollHeight, e.clientHeight, e.scrollWidth, e.clientWidth]; }", selector)
        assert sh <= ch + 1 and sw <= cw + 1, (selector, sh, ch, sw, cw)
    softmax = layers[-1]
    assert softmax["type"] == "softmax"
    assert page.locator(f"#netstrip .ns-layer[data-index='{softmax['index']}'] .bar-label"
                        ).all_inner_texts() == ["dark", "light"]
    assert box(page, "#loss-chart canvas")["height"] >= 250
    # the title stays on one line, "CIFAR-10" whole
    assert page.evaluate("document.getElementById('data-title').getClientRects().length") == 1
    assert page.evaluate("document.querySelector('.brand h1').getClientRects()[0].height") < 50
    # axis type readable from the back of the room
    for chart in ("#loss-chart", "#acc-chart"):
        heights = page.evaluate(TICK_HEIGHTS, chart)
        assert len(heights) >= 3, (chart, heights)
        assert min(heights) >= 12.5, (chart, heights)   # 18 px type or more
    page.screenshot(path=str(OUTPUT / "projector-1920x1080.png"))

    # The toggle leaves projector mode (and the address's ?projector=1) behind.
    page.click("#projector-toggle")
    assert not page.evaluate("document.documentElement.classList.contains('projector')")
    assert "projector" not in page.url
    assert page.is_visible("#controls-panel")
    page.click("#projector-toggle")                  # and remembers the choice
    page.goto(f"{server}/")
    assert page.evaluate("document.documentElement.classList.contains('projector')")
    page.click("#projector-toggle")
    context.close()
    assert not problems, problems


def test_the_laptop_charts_give_reg_loss_its_scale_and_label_the_changes(server, browser):
    OUTPUT.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(f"{server}/?token={TOKEN}")
    page.wait_for_selector("#controls-panel")
    page.wait_for_function("document.getElementById('stat-reg').textContent !== '–'",
                           timeout=WAIT_MS)
    page.fill("#param-learning_rate", "0.04")
    page.press("#param-learning_rate", "Tab")
    page.wait_for_function("document.getElementById('param-learning_rate-note').textContent"
                           ".includes('applied')", timeout=WAIT_MS)
    page.wait_for_function("[...document.querySelectorAll('#loss-chart .marker-label')]"
                           ".some((l) => !l.hidden && l.textContent === 'lr 0.04')",
                           timeout=WAIT_MS)
    label = box(page, "#loss-chart .marker-label:not([hidden])")
    plot = box(page, "#loss-chart .u-over")
    assert plot["left"] <= label["left"] and label["right"] <= plot["right"] + 1
    assert plot["top"] <= label["top"] < plot["top"] + 80          # at the top of the chart
    # The regularisation loss (orange) rises well off the bottom of the plot on its own
    # scale; on the data loss's scale it was a flat line along the bottom.
    reg_rows = page.evaluate("""() => {
      const canvas = document.querySelector('#loss-chart canvas');
      const over = document.querySelector('#loss-chart .u-over').getBoundingClientRect();
      const c = canvas.getBoundingClientRect();
      const ratio = canvas.width / c.width;
      const top = (over.top - c.top) * ratio, bottom = (over.bottom - c.top) * ratio;
      const x0 = Math.round((over.left - c.left) * ratio) + 2;
      const x1 = Math.round((over.right - c.left) * ratio) - 2;
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      const rows = [];
      for (let y = Math.floor(top); y < bottom; y += 1) for (let x = x0; x < x1; x += 1) {
        const i = (y * canvas.width + x) * 4;
        if (data[i] > 200 && data[i + 1] > 120 && data[i + 1] < 190 && data[i + 2] < 70) {
          rows.push((y - top) / (bottom - top)); break;
        }
      }
      return rows;
    }""")
    assert reg_rows, "no regularisation loss line drawn"
    # 0: the top of the plot, 1: the bottom. Its own scale puts its peak at 0.6 (40% of the
    # height, below the marker labels); on the data loss's scale the peak was at 0.99.
    assert min(reg_rows) < 0.75, reg_rows
    assert page.evaluate("document.getElementById('data-title').getClientRects().length") == 1
    page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
    page.screenshot(path=str(OUTPUT / "presenter-1400x900.png"))
    page.screenshot(path=str(OUTPUT / "presenter-1400x900-full.png"), full_page=True)
    context.close()
    assert not problems, problems


LABEL_BOXES = """() => [...document.querySelectorAll('#loss-chart .marker-label')]
  .filter((l) => !l.hidden).map((l) => {
    const r = l.getBoundingClientRect();
    return {text: l.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
  })"""


def test_many_change_markers_keep_legible_labels(server, browser):
    """Twelve changes close together: the latest few are labelled, in staggered rows, and no
    label covers another (older ones are left to the hover tip)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(f"{server}/?token={TOKEN}")
    page.wait_for_selector("#loss-chart canvas")
    rates = [round(0.030 + 0.001 * i, 3) for i in range(12)]
    for rate in rates:
        answer = httpx.patch(f"{server}/api/params", json={"learning_rate": rate},
                             headers=presenter())
        assert answer.status_code == 200, answer.text
        time.sleep(0.1)
    newest = f"lr {rates[-1]}"
    page.wait_for_function("(text) => [...document.querySelectorAll('#loss-chart .marker-label')]"
                           ".some((l) => !l.hidden && l.textContent === text)", arg=newest,
                           timeout=WAIT_MS)
    labels = page.evaluate(LABEL_BOXES)
    assert 3 <= len(labels) <= 6, labels
    plot = box(page, "#loss-chart .u-over")
    for i, a in enumerate(labels):
        assert plot["left"] - 1 <= a["left"] and a["right"] <= plot["right"] + 1, (a, plot)
        for b in labels[i + 1:]:
            apart = (a["right"] <= b["left"] or b["right"] <= a["left"]
                     or a["bottom"] <= b["top"] or b["bottom"] <= a["top"])
            assert apart, (a, b)
    shown = {label["text"] for label in labels}
    assert shown <= {f"lr {rate}" for rate in rates} | {"lr 0.04"}, shown
    assert f"lr {rates[-2]}" in shown, shown                   # the latest ones, newest first
    assert len({round(label["top"]) for label in labels}) >= 2, labels   # staggered rows
    OUTPUT.mkdir(exist_ok=True)
    page.locator("#loss-chart").screenshot(path=str(OUTPUT / "markers-1400x900.png"))
    context.close()
    assert not problems, problems


def test_a_phone_gets_the_upload_near_the_top_and_a_cue_on_wide_tables(server, browser):
    OUTPUT.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    problems = watch_console(page)
    page.goto(server + "/")
    page.wait_for_selector("#loss-chart canvas")
    page.wait_for_selector("#arch .summary-table", timeout=WAIT_MS)
    upload = box(page, "#upload-panel")
    assert upload["top"] < 200, upload                      # on the first screen
    assert upload["top"] < box(page, "#stats-panel")["top"] < box(page, "#net-panel")["top"]
    assert page.is_visible("#upload-file + *") or page.is_visible("label[for=upload-file]")
    assert box(page, ".topbar")["height"] <= 90              # was three rows
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width                               # nothing wider than the phone
    # The section links run off the phone's screen: their right edge fades until scrolled.
    page.wait_for_function("(s => (s.maskImage || s.webkitMaskImage || 'none') !== 'none')"
                           "(getComputedStyle(document.querySelector('nav.jump')))",
                           timeout=WAIT_MS)
    # The architecture table is wider than the phone: a cue says so, and the box's edge fades.
    page.locator("#arch-panel .summary-table").scroll_into_view_if_needed()
    page.wait_for_selector("#arch-panel .scroll-cue:not([hidden])", timeout=WAIT_MS)
    assert "sideways" in page.inner_text("#arch-panel .scroll-cue")
    assert "more-right" in page.get_attribute("#arch-panel .scroll-x", "class")
    page.evaluate("(b) => { b.scrollLeft = b.scrollWidth; b.dispatchEvent(new Event('scroll')); }",
                  page.locator("#arch-panel .scroll-x").element_handle())
    page.wait_for_function("!document.querySelector('#arch-panel .scroll-x')"
                           ".classList.contains('more-right')", timeout=WAIT_MS)
    # The test set: the first 12 of its 16 cards, and a button for the rest.
    page.locator("#gallery-panel").scroll_into_view_if_needed()
    page.wait_for_selector("#gallery .show-all-cards", timeout=WAIT_MS)
    assert page.locator("#gallery .card").count() == 12
    assert page.inner_text("#gallery .show-all-cards") == "Show all 16 test images"
    page.click("#gallery .show-all-cards")
    assert page.locator("#gallery .card").count() == 16
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(OUTPUT / "viewer-390x844.png"))
    page.screenshot(path=str(OUTPUT / "viewer-390x844-full.png"), full_page=True)
    length = page.evaluate("document.documentElement.scrollHeight")
    print(f"phone page length: {length} px")
    context.close()
    assert not problems, problems
