"""Projector mode's network strip in Chromium against a real uvicorn, at 1920x1080: the
current example, one column per top-level layer of the net (counted against /api/frame), a
few activation maps drawn sharp and large enough to see, the class-score and probability
bars with the class names, and the net's answer, all inside the network panel's box with no
scrolling there or on the page, and nothing in the strip cut off. For the convnetjs net (12
layers, as the demo runs it) and cifar_resnet (19: each residual block one column). Outside
projector mode the full network view is back. Screenshots go to test-output/."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from engine.data.dataset import Dataset, SourceInfo, Split
from engine.data.normalize import Normalization, channel_stats
from tests.server.browser import OUTPUT, watch_console
from tests.server.conftest import TOKEN, tiny_settings
from tests.server.live import live_server

WAIT_MS = 60000
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")


def cifar_like(train: int = 40, test: int = 20) -> Dataset:
    """CIFAR-10's shape and class names (the widest names the bars must show in full), in
    noise: what the strip must fit is the same whatever the pictures."""
    rng = np.random.default_rng(0)

    def images(count):
        labels = np.arange(count, dtype=np.int64) % len(CLASSES)
        return rng.integers(0, 256, size=(count, 32, 32, 3)).astype(np.uint8), labels

    train_images, train_labels = images(train)
    test_images, test_labels = images(test)
    norm = Normalization.from_stats(channel_stats(train_images), 32 * 32)
    held_out = np.arange(train) % 10 == 9
    info = SourceInfo("folder", "tests/server/cifar-like", "sha256:cifar-like", None, False)

    def split(name, x, y, indices=None):
        return Split(name, x, y, indices, CLASSES, norm)

    return Dataset(source=info, class_names=CLASSES, image_size=(32, 32), normalization=norm,
                   train=split("train", train_images, train_labels, np.flatnonzero(~held_out)),
                   validation=split("validation", train_images, train_labels,
                                    np.flatnonzero(held_out)),
                   test=split("test", test_images, test_labels))


@pytest.fixture(scope="module", params=[("convnetjs", 12), ("cifar_resnet", 19)],
                ids=["convnetjs", "cifar_resnet"])
def server(request, tmp_path_factory):
    net, layers = request.param
    settings = tiny_settings(tmp_path_factory.mktemp(f"projector-{net}"), net=net,
                             dataset=cifar_like(), gallery_per_class=2)
    with live_server(settings) as (base, _app):
        yield base, net, layers


# Every box in the network panel that clips or scrolls (overflow other than visible) and
# holds more than it shows: none may, or something in the strip is cut off or scrolls.
OVERFLOWING = """() => [...document.querySelectorAll('#net-panel, #net-panel *')]
  .filter((e) => e.getClientRects().length > 0)
  .filter((e) => {
    const s = getComputedStyle(e);
    return (s.overflowY !== 'visible' && e.scrollHeight > e.clientHeight + 1)
      || (s.overflowX !== 'visible' && e.scrollWidth > e.clientWidth + 1);
  })
  .map((e) => ({tag: e.tagName, cls: String(e.className), text: e.textContent.slice(0, 40),
                sw: e.scrollWidth, cw: e.clientWidth, sh: e.scrollHeight, ch: e.clientHeight}))"""

# Each maps column's picture: how many maps, and the side (CSS px) each is drawn at inside
# its box (the canvas is fitted to the box, object-fit: contain).
MAP_SIDES = """() => [...document.querySelectorAll('#netstrip .ns-kind-maps canvas')].map((c) => {
  const { count, cols, zoom, tile } = c.dataset;
  const [h, w] = tile.split('x').map(Number);
  const scale = Math.min(c.clientWidth / c.width, c.clientHeight / c.height);
  return { count: Number(count), side: Math.min(h, w) * Number(zoom) * scale,
           rendering: getComputedStyle(c).imageRendering };
})"""

STRIP_READY = """() => {
  const maps = [...document.querySelectorAll('#netstrip .ns-kind-maps canvas')];
  return maps.length > 0 && maps.every((c) => c.dataset.count)
    && document.querySelectorAll('#netstrip .ns-kind-bars li').length > 0
    && document.querySelector('#netstrip .ns-example').naturalWidth > 0;
}"""


def test_the_strip_shows_every_layer_in_the_network_box(server, browser):
    base, net, layer_count = server
    OUTPUT.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(f"{base}/?token={TOKEN}")              # the presenter, on the lecture laptop
    page.goto(f"{base}/?projector=1")
    page.wait_for_function(STRIP_READY, timeout=WAIT_MS)
    page.wait_for_timeout(500)                       # the last pictures decode
    frame = httpx.get(f"{base}/api/frame").json()
    state = httpx.get(f"{base}/api/state").json()
    assert len(frame["layers"]) == len(state["net"]["summary"]["layers"]) == layer_count
    assert not page.is_visible("#netview")           # the strip replaces the full view

    # one column per top-level layer, in order, between the example and the answer
    columns = page.evaluate("[...document.querySelectorAll('#netstrip .ns-col')]"
                            ".map((c) => [c.className, c.dataset.index ?? null])")
    assert "ns-image-col" in columns[0][0] and "ns-answer" in columns[-1][0], columns
    layers = [index for cls, index in columns if "ns-layer" in cls]
    assert layers == [str(layer["index"]) for layer in frame["layers"]], (layers, frame["layers"])
    rows = page.evaluate("new Set([...document.querySelectorAll('#netstrip .ns-col')]"
                         ".map((c) => Math.round(c.getBoundingClientRect().top))).size")
    assert rows <= 2, rows

    # nothing scrolls: the page, the network panel, the strip; nothing inside is cut off
    size = page.evaluate("[document.documentElement.scrollHeight, document.documentElement"
                         ".scrollWidth, innerHeight, innerWidth]")
    assert size[0] <= size[2] and size[1] <= size[3], size
    for selector in ("#net-panel", "#netstrip"):
        sh, ch, sw, cw = page.evaluate(
            "(s) => { const e = document.querySelector(s);"
            " return [e.scrollHeight, e.clientHeight, e.scrollWidth, e.clientWidth]; }", selector)
        assert sh <= ch + 1 and sw <= cw + 1, (selector, sh, ch, sw, cw)
    assert page.evaluate(OVERFLOWING) == []
    strip = page.locator("#netstrip").bounding_box()
    assert strip["y"] + strip["height"] <= 1080 and strip["height"] >= 250, strip
    for col in page.locator("#netstrip .ns-col").all():
        b = col.bounding_box()
        assert strip["x"] - 1 <= b["x"] and b["x"] + b["width"] <= strip["x"] + strip["width"] + 1
        assert strip["y"] - 1 <= b["y"] and b["y"] + b["height"] <= strip["y"] + strip["height"] + 1

    # each layer says what it is: type and output volume, as the side panel of the full view
    heads = page.locator("#netstrip .ns-layer .ns-head").all_inner_texts()
    for head, layer in zip(heads, state["net"]["summary"]["layers"]):
        words = head.replace("\u200b", "").split()
        assert words == [layer["type"], "×".join(str(n) for n in layer["out_shape"])], head

    # a few activation maps per layer, sharp, and large enough to see from the back
    sides = page.evaluate(MAP_SIDES)
    assert len(sides) == sum(1 for layer in frame["layers"] if layer["act"]), sides
    assert all(1 <= s["count"] <= 6 and s["rendering"] == "pixelated" for s in sides), sides
    assert min(s["side"] for s in sides) >= (40 if net == "convnetjs" else 30), sides

    # fc and softmax: bars labelled with the class names, in full; the answer is the net's
    for layer in frame["layers"]:
        if not (layer["values"] and layer["values"]["labels"]):
            continue
        names = page.locator(f"#netstrip .ns-layer[data-index='{layer['index']}'] .bar-label")
        assert names.all_inner_texts() == list(CLASSES), layer["type"]
    # class scores are drawn from a zero line (negative ones left of it), as in the full view
    assert page.evaluate("[...document.querySelectorAll('#netstrip .ns-kind-bars .bar')].every("
                         "(li) => getComputedStyle(li.querySelector('.bar-fill')).position"
                         " === 'absolute' && li.querySelector('.bar-zero'))")
    softmax = frame["layers"][-1]
    assert softmax["type"] == "softmax"
    shown = page.locator(f"#netstrip .ns-layer[data-index='{softmax['index']}'] .bar-value")
    assert all(text.endswith("%") for text in shown.all_inner_texts())
    answer = page.inner_text("#netstrip .ns-answer-name")
    assert answer in CLASSES
    assert page.inner_text("#netstrip .ns-truth") in CLASSES
    page.screenshot(path=str(OUTPUT / f"projector-strip-{net}-1920x1080.png"))

    # Outside projector mode nothing changed: the full view, one row per layer, and no strip.
    page.click("#projector-toggle")
    page.wait_for_function(f"document.querySelectorAll('#netview .nv-row').length === {layer_count}",
                           timeout=WAIT_MS)
    assert page.is_visible("#netview") and not page.is_visible("#netstrip")
    page.click("#projector-toggle")                  # and back: the strip again
    page.wait_for_selector("#netstrip .ns-layer", state="visible")
    assert not page.is_visible("#netview")
    page.click("#projector-toggle")                  # leave the stored choice off
    context.close()
    assert not problems, problems
