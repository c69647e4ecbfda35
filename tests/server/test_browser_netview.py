"""The network view in a real browser (Debian's Chromium via Playwright, a real uvicorn): it
shows what it is. Empty grid cells stay empty (no black filler), every picture says how many
channels it shows of how many and "Show all" pages in the rest, one-value-per-channel layers
are bars labelled with the class names, a deeper conv's filters say they are a mean and a
click shows one filter's per-input-channel slices, filters are drawn large and sharp with
gaps, and the side panel gives each layer's filter size, stride and padding. Screenshots of
the view at projector, laptop and phone sizes go to test-output/."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.server.browser import OUTPUT, watch_console
from tests.server.live import live_server
from tests.server.wide import (BLOCK, CONV1, CONV2, FC2, FC50, INPUT, POOL, SOFTMAX,
                               wide_settings)

SIZES = [("projector", 1920, 1080, False), ("laptop", 1400, 900, False),
         ("phone", 390, 844, True)]

# For one canvas of tiles: is every pixel of a tile opaque, and every other pixel (the gaps,
# the cells past the last tile) fully transparent? Uses the layout the canvas was drawn with.
TILE_PIXELS = """(canvas) => {
  const { count, cols, zoom, gap, tile } = canvas.dataset;
  const [h, w] = tile.split("x").map(Number);
  const [tw, th, g, n, k] = [w * zoom, h * zoom, Number(gap), Number(count), Number(cols)];
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let insideClear = 0, outsideInk = 0, inside = 0;
  for (let y = 0; y < canvas.height; y += 1) {
    for (let x = 0; x < canvas.width; x += 1) {
      const c = Math.floor(x / (tw + g)), r = Math.floor(y / (th + g));
      const inTile = x - c * (tw + g) < tw && y - r * (th + g) < th && r * k + c < n;
      const alpha = data[4 * (y * canvas.width + x) + 3];
      if (inTile) { inside += 1; if (alpha !== 255) insideClear += 1; }
      else if (alpha !== 0) outsideInk += 1;
    }
  }
  return { inside, insideClear, outsideInk, width: canvas.width, height: canvas.height,
           cssWidth: canvas.getBoundingClientRect().width,
           rendering: getComputedStyle(canvas).imageRendering };
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # paused: the frame the page shows is the one the routes answer for
    with live_server(wide_settings(tmp_path_factory.mktemp("netview"))) as (base, _app):
        yield base


def row(index: int) -> str:
    return f"#netview .nv-row[data-index='{index}']"


def open_view(page, server: str) -> None:
    page.goto(server + "/")
    page.locator("#net-panel").scroll_into_view_if_needed()     # frames come once it shows
    page.wait_for_selector(f"{row(SOFTMAX)} .nv-values-act li", timeout=60000)
    page.wait_for_function(
        "[...document.querySelectorAll('#netview .nv-grid:not([hidden]) canvas')]"
        ".every((c) => c.dataset.count)", timeout=30000)


def canvas(page, index: int, key: str):
    return page.locator(f"{row(index)} .nv-{key} canvas")


def labels(page, index: int, part: str = "act") -> list[str]:
    return page.locator(f"{row(index)} .nv-values-{part} .bar-label").all_inner_texts()


def test_cells_counts_bars_filters_and_windows(server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = watch_console(page)
    open_view(page, server)

    # The view's own style sheet rules apply (a stray brace once dropped the first of them).
    assert page.locator(f"{row(INPUT)} .nv-right").evaluate(
        "(e) => getComputedStyle(e).display") == "flex"

    # The RGB input: three channels in a row, nothing drawn where a fourth would be.
    pixels = canvas(page, INPUT, "act").evaluate(TILE_PIXELS)
    assert canvas(page, INPUT, "act").get_attribute("data-count") == "3"
    assert canvas(page, INPUT, "act").get_attribute("data-cols") == "3"
    assert pixels["insideClear"] == 0 and pixels["outsideInk"] == 0, pixels
    # Seven maps in a 4x2 grid: the eighth cell is empty, not black.
    seven = canvas(page, CONV2, "act")
    assert (seven.get_attribute("data-count"), seven.get_attribute("data-cols")) == ("7", "4")
    pixels = seven.evaluate(TILE_PIXELS)
    assert pixels["inside"] > 0 and pixels["insideClear"] == 0 and pixels["outsideInk"] == 0

    # 40 channels: 32 shown, said so, and the rest one click away.
    conv = page.locator(row(CONV1))
    assert conv.locator(".nv-count-text").inner_text() == "Showing 32 of 40 channels"
    assert canvas(page, CONV1, "act").get_attribute("data-count") == "32"
    conv.get_by_role("button", name="Show all 40").click()
    page.wait_for_function(f"document.querySelector(\"{row(CONV1)} .nv-act canvas\")"
                           ".dataset.count === '40'", timeout=30000)
    assert conv.locator(".nv-count-text").inner_text() == "All 40 channels"
    assert canvas(page, CONV1, "filters").get_attribute("data-count") == "40"
    assert canvas(page, CONV1, "act").evaluate(TILE_PIXELS)["outsideInk"] == 0
    conv.get_by_role("button", name="Show 32 again").click()
    page.wait_for_function(f"document.querySelector(\"{row(CONV1)} .nv-act canvas\")"
                           ".dataset.count === '32'", timeout=30000)

    # fc and softmax: bars labelled with the class names; an fc of 50: numbered, 32 of 50.
    assert labels(page, FC2) == ["dark", "light"]
    assert labels(page, SOFTMAX)[0].startswith("dark") and len(labels(page, SOFTMAX)) == 2
    values = page.locator(f"{row(SOFTMAX)} .nv-values-act .bar-value").all_inner_texts()
    assert all(v.endswith("%") for v in values), values
    assert page.locator(f"{row(SOFTMAX)} .nv-values-act figcaption").inner_text() == "Probabilities"
    assert page.locator(f"{row(SOFTMAX)} .nv-values-act .truth").count() == 1
    assert page.locator(f"{row(FC2)} .nv-act").is_hidden()          # no grey squares
    assert labels(page, FC50)[:3] == ["#0", "#1", "#2"] and len(labels(page, FC50)) == 32
    page.locator(row(FC50)).get_by_role("button", name="Show all 50").click()
    page.wait_for_function(f"document.querySelectorAll(\"{row(FC50)} .nv-values-act li\")"
                           ".length === 50", timeout=30000)

    # Filters: colour for the RGB conv; a deeper conv's are a mean, and say so.
    assert "in colour" in page.locator(f"{row(CONV1)} .nv-filters figcaption").inner_text()
    caption = page.locator(f"{row(CONV2)} .nv-filters figcaption").inner_text()
    assert "mean over 40 input channels" in caption and "click" in caption
    # Large enough to see, with gaps, sharp: a 3x3 filter over 40 CSS px, gaps of 4.
    filters = canvas(page, CONV1, "filters")
    pixels = filters.evaluate(TILE_PIXELS)
    zoom = int(filters.get_attribute("data-zoom"))
    scale = pixels["cssWidth"] / pixels["width"]
    assert 3 * zoom * scale >= 40 and int(filters.get_attribute("data-gap")) * scale >= 3
    assert pixels["rendering"] == "pixelated" and pixels["outsideInk"] == 0

    # A click on filter 2 of the deeper conv shows its 40 slices, one per input channel.
    grid = canvas(page, CONV2, "filters")
    box = grid.bounding_box()
    zoom, gap = int(grid.get_attribute("data-zoom")), int(grid.get_attribute("data-gap"))
    scale = box["width"] / int(grid.evaluate("(c) => c.width"))
    tile_w, tile_h = 3 * zoom, 1 * zoom
    grid.click(position={"x": (2 * (tile_w + gap) + tile_w / 2) * scale,
                         "y": tile_h / 2 * scale})
    slices = page.locator(f"{row(CONV2)} .nv-slices")
    page.wait_for_function(f"document.querySelectorAll(\"{row(CONV2)} .nv-slice img\")"
                           ".length === 40", timeout=30000)
    assert "Filter #2 of 7" in slices.inner_text()
    assert "all 40 input channels" in slices.inner_text()
    assert slices.locator("img").first.evaluate("(img) => img.naturalWidth") == 3
    slices.get_by_role("button", name="Filter ▶").click()
    page.wait_for_function(f"document.querySelector(\"{row(CONV2)} .nv-slices\")"
                           ".textContent.includes('Filter #3 of 7')", timeout=30000)
    slices.get_by_role("button", name="Close").click()
    assert slices.is_hidden()

    # The side panel: filter size, stride and padding (ConvNetJS shows them).
    geometry = {i: page.locator(f"{row(i)} .nv-info > .nv-geometry").inner_text()
                for i in (CONV1, POOL, CONV2)}
    assert geometry == {CONV1: "40 filters 3×3×3, stride 1, pad 1",
                        POOL: "max pool 2×2, stride 2, pad 0",
                        CONV2: "7 filters 1×3×40, stride 1, pad 0×1"}
    block = page.locator(row(BLOCK))
    assert block.locator(".nv-info > .nv-geometry").is_hidden()
    block.locator(".nv-children summary").click()       # its inner layers, each conv's window
    assert block.locator(".nv-children li[data-path='layers.0'] .nv-geometry").inner_text() == (
        "7 filters 3×3×7, stride 1, pad 1")
    context.close()
    assert not problems, problems


def test_an_upload_says_how_many_channels_it_shows(server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(server + "/")
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 200, 200)).save(buf, format="PNG")
    page.set_input_files("#upload-file", files=[{"name": "grey.png", "mimeType": "image/png",
                                                  "buffer": buf.getvalue()}])
    upload_row = f"#upload .nv-row[data-index='{CONV1}']"
    page.wait_for_selector(f"{upload_row} .nv-act canvas[data-count='32']", timeout=60000)
    assert page.locator(f"{upload_row} .nv-count-text").inner_text() == (
        "Showing 32 of 40 channels")
    assert page.locator(f"{upload_row} .nv-show-all").is_hidden()   # no frame to page in
    assert page.locator(f"#upload .nv-row[data-index='{FC2}'] .nv-values-act .bar-label"
                        ).all_inner_texts() == ["dark", "light"]
    context.close()
    assert not problems, problems


@pytest.mark.parametrize("name,width,height,mobile", SIZES)
def test_screenshots_of_the_network_view(server, browser, name, width, height, mobile):
    OUTPUT.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": height},
                                  is_mobile=mobile, has_touch=mobile)
    page = context.new_page()
    problems = watch_console(page)
    open_view(page, server)
    grid = canvas(page, CONV2, "filters")
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    grid.click(position={"x": min(10, box["width"] / 2), "y": min(5, box["height"] / 2)})
    page.wait_for_selector(f"{row(CONV2)} .nv-slice img", timeout=30000)
    # Nothing in the view is wider than the screen (a phone scrolls down, never sideways).
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px of sideways scrolling at {width}x{height}"
    # the panel cut from a whole-page picture taken from the top: an element screenshot
    # scrolls, and the sticky header would land in the middle of it
    page.evaluate("window.scrollTo(0, 0)")
    panel = page.evaluate("(() => { const r = document.querySelector('#net-panel')"
                          ".getBoundingClientRect(); return {x: r.x + scrollX, y: r.y + scrollY,"
                          " width: r.width, height: r.height}; })()")
    page.screenshot(path=str(OUTPUT / f"netview-{name}-{width}x{height}.png"), full_page=True,
                    clip=panel)
    context.close()
    assert not problems, problems
