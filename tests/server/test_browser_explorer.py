"""The convolution explorer in Chromium against a real uvicorn: for a grid of cases typed into
its fields (fitting and non-fitting strides, filters larger than the input, W != H) the page
shows GET /api/conv's numbers (output size per axis, volume, parameters, FLOPs, fits, every
suggestion); the lecture's buttons set their cases; stepping places the windows in order, the
last one off the edge where the stride does not fit; a suggestion is one click; bad input is
flagged without losing the drawing. Screenshots at 1920x1080, 1400x900 and 390x844."""

from __future__ import annotations

import itertools

import httpx
import pytest

from tests.server.browser import OUTPUT, watch_console
from tests.server.conftest import tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live

WAIT_MS = 60000     # generous: a loaded 2-core machine
FIELDS = ("w", "h", "f", "s", "p", "c_in", "c_out")

READ_PAGE = """() => {
  const text = (id) => document.getElementById(id).textContent;
  const fixes = {};
  for (const list of document.querySelectorAll('#explorer-fixes:not([hidden]) ul')) {
    const kinds = {};
    for (const item of list.querySelectorAll('li[data-kind]')) {
      kinds[item.dataset.kind] = [...item.querySelectorAll('button')].map((b) => Number(b.dataset.value));
    }
    fixes[list.dataset.axis] = kinds;
  }
  return {
    width: text('explorer-out-width'), height: text('explorer-out-height'),
    shape: text('explorer-shape'), fits: text('explorer-fits'),
    per_filter: text('explorer-per-filter'), weights: text('explorer-weights'),
    biases: text('explorer-biases'), params: text('explorer-params'),
    flops: document.getElementById('explorer-flops').dataset.value,
    fixes_hidden: document.getElementById('explorer-fixes').hidden,
    fixes, step: text('explorer-step-text'),
  };
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tiny_settings(tmp_path_factory.mktemp("explorer"))) as (base, _app):
        wait_ready_live(base)
        yield base


def open_page(server, browser, width, height):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(server)
    page.wait_for_function("document.getElementById('explorer-params')", timeout=WAIT_MS)
    return context, page, problems


def type_case(page, case: dict) -> None:
    shown = page.evaluate("(names) => names.map((n) => document.getElementById(`explorer-${n}`)"
                          ".value)", list(FIELDS))
    for name, value in zip(FIELDS, shown):
        if value != str(case[name]):
            page.fill(f"#explorer-{name}", str(case[name]))


def number(text: str) -> int:
    return int(text.replace(",", ""))


def windows(axis: dict) -> int:
    """Window positions the explorer steps through along an axis: those that fit, and one
    more off the edge where the stride does not fit (one, off the edge, where none fits)."""
    if axis["floor"] is None:
        return 1
    return axis["out"] if axis["fits"] else axis["floor"] + 1


def assert_page_shows(page, answer: dict) -> None:
    shown = page.evaluate(READ_PAGE)
    case, axes = answer["case"], answer["axes"]
    for axis in ("width", "height"):
        assert shown[axis] == (axes[axis]["value"] or "–"), (case, axis, shown, axes[axis])
    h, w, c = answer["output_shape"] or (None, None, None)
    assert shown["shape"] == (f"{h}×{w}×{c}" if answer["fits"] else "no whole-number size")
    assert shown["fits"] == ("fits" if answer["fits"] else "does not fit"), case
    params = answer["params"]
    assert [number(shown[k]) for k in ("per_filter", "weights", "biases", "params")] == \
        [params[k] for k in ("per_filter", "weights", "biases", "total")], (case, shown)
    assert shown["flops"] == ("" if answer["flops"] is None else str(answer["flops"])), case
    assert shown["fixes_hidden"] == answer["fits"], case
    total = windows(axes["width"]) * windows(axes["height"])
    assert f" of {total}:" in shown["step"], (case, shown["step"])
    if answer["fits"]:
        return
    for axis in ("width", "height"):
        a = axes[axis]
        if a["fits"]:
            continue
        listed = shown["fixes"]["both" if case["w"] == case["h"] else axis]
        if a["value"] is None:            # the filter is larger than the padded input
            assert listed["max-f"] == [a["max_f"]], (case, listed)
            assert listed.get("min-pad", []) == ([] if a["min_pad"] is None else [a["min_pad"]])
        else:
            assert listed["strides"] == a["strides"], (case, axis, listed, a)
            assert listed.get("pads", []) == a["pads"], (case, axis, listed, a)
            assert listed["sizes"] == a["sizes"], (case, axis, listed, a)


def grid_cases() -> list[dict]:
    cases = [dict(zip(("w", "f", "s", "p"), values), h=values[0], c_in=3, c_out=8)
             for values in itertools.product((7, 32, 227), (3, 5, 11), (1, 2, 3, 4), (0, 2))
             if values[1] <= values[0] + 2 * values[3] or values[2] == 1]
    cases += [
        {"w": 10, "h": 10, "f": 1, "s": 8, "p": 0, "c_in": 1, "c_out": 1},      # 2.125: Python's 2.12
        {"w": 14, "h": 14, "f": 3, "s": 8, "p": 0, "c_in": 1, "c_out": 1},      # 2.375 -> 2.38
        {"w": 256, "h": 256, "f": 1, "s": 7, "p": 12, "c_in": 1, "c_out": 1},   # many divisors
        {"w": 223, "h": 223, "f": 32, "s": 32, "p": 32, "c_in": 4096, "c_out": 4096},
        {"w": 224, "h": 200, "f": 11, "s": 4, "p": 0, "c_in": 3, "c_out": 96},  # W != H
        {"w": 9, "h": 7, "f": 3, "s": 3, "p": 0, "c_in": 2, "c_out": 2},        # only height
        {"w": 3, "h": 5, "f": 9, "s": 1, "p": 0, "c_in": 1, "c_out": 1},        # no window fits
        {"w": 1, "h": 1, "f": 32, "s": 32, "p": 0, "c_in": 1, "c_out": 1},      # none, no pad fits
        {"w": 1, "h": 1, "f": 1, "s": 32, "p": 32, "c_in": 1, "c_out": 1},
    ]
    return cases


def test_the_page_shows_the_routes_numbers_for_a_grid_of_cases(server, browser):
    context, page, problems = open_page(server, browser, 1400, 900)
    cases = grid_cases()
    fitting = 0
    with httpx.Client(base_url=server, timeout=30) as client:
        for case in cases:
            answer = client.get("/api/conv", params=case).json()
            assert answer["case"] == case
            fitting += answer["fits"]
            type_case(page, case)
            assert_page_shows(page, answer)
        limits = client.get("/api/conv", params={"w": 7, "f": 3}).json()["limits"]
    assert len(cases) >= 50 and 15 <= fitting <= len(cases) - 15, (len(cases), fitting)
    for name, (low, high) in limits.items():      # the page's fields hold the route's bounds
        field = page.locator(f"#explorer-{name}")
        assert (field.get_attribute("min"), field.get_attribute("max")) == (str(low), str(high))
    context.close()
    assert not problems, problems


def test_the_pages_arithmetic_equals_the_routes_for_random_cases(server, browser):
    """Beyond the typed grid: the page's own module (conv_math.js) against the route for 400
    seeded random cases within the bounds, ties at x.xx5 and many-divisor strides included."""
    import random
    rng = random.Random(15)
    with httpx.Client(base_url=server, timeout=30) as client:
        limits = client.get("/api/conv", params={"w": 7, "f": 3}).json()["limits"]
        cases = [{name: rng.randint(low, min(high, 64 if name.startswith("c") else high))
                  for name, (low, high) in limits.items()} for _ in range(400)]
        answers = [client.get("/api/conv", params=case).json() for case in cases]
    context, page, problems = open_page(server, browser, 1400, 900)
    computed = page.evaluate("""async (cases) => {
      const math = await import('/static/js/conv_math.js');
      return cases.map((c) => math.convNumbers(c));
    }""", cases)
    for case, answer, mine in zip(cases, answers, computed):
        for axis in answer["axes"].values():
            axis.pop("message")
        for key in ("message", "limits"):
            answer.pop(key)
        assert mine == answer, case
    assert sum(not a["fits"] for a in answers) >= 100       # most random strides do not fit
    context.close()
    assert not problems, problems


LECTURE = {
    "7×7, 3×3, stride 1": ({"w": 7, "h": 7, "f": 3, "s": 1, "p": 0, "c_in": 1, "c_out": 1}, "5×5×1"),
    "stride 2": ({"w": 7, "h": 7, "f": 3, "s": 2, "p": 0, "c_in": 1, "c_out": 1}, "3×3×1"),
    "stride 3?": ({"w": 7, "h": 7, "f": 3, "s": 3, "p": 0, "c_in": 1, "c_out": 1}, "no whole-number size"),
    "7×7, pad 1": ({"w": 7, "h": 7, "f": 3, "s": 1, "p": 1, "c_in": 1, "c_out": 1}, "7×7×1"),
    "32×32×3, one 5×5 filter": ({"w": 32, "h": 32, "f": 5, "s": 1, "p": 0, "c_in": 3, "c_out": 1}, "28×28×1"),
    "32×32×3, six 5×5 filters": ({"w": 32, "h": 32, "f": 5, "s": 1, "p": 0, "c_in": 3, "c_out": 6}, "28×28×6"),
    "32×32×3, ten 5×5, stride 1, pad 2": ({"w": 32, "h": 32, "f": 5, "s": 1, "p": 2, "c_in": 3, "c_out": 10}, "32×32×10"),
    "AlexNet conv1 on 227": ({"w": 227, "h": 227, "f": 11, "s": 4, "p": 0, "c_in": 3, "c_out": 96}, "55×55×96"),
    "AlexNet conv1 on 224?": ({"w": 224, "h": 224, "f": 11, "s": 4, "p": 0, "c_in": 3, "c_out": 96}, "no whole-number size"),
}


def test_the_lectures_examples_are_one_click_each(server, browser):
    context, page, problems = open_page(server, browser, 1400, 900)
    buttons = page.locator(".explorer-lecture button")
    assert buttons.all_inner_texts() == list(LECTURE)
    with httpx.Client(base_url=server, timeout=30) as client:
        for label, (case, shape) in LECTURE.items():
            page.get_by_role("button", name=label, exact=True).click()
            assert {name: int(page.input_value(f"#explorer-{name}")) for name in FIELDS} == case
            assert page.text_content("#explorer-shape") == shape, label
            assert_page_shows(page, client.get("/api/conv", params=case).json())
    page.get_by_role("button", name="32×32×3, ten 5×5, stride 1, pad 2", exact=True).click()
    assert page.text_content("#explorer-params") == "760"
    page.get_by_role("button", name="AlexNet conv1 on 227", exact=True).click()
    assert page.text_content("#explorer-params") == "34,944"
    page.get_by_role("button", name="AlexNet conv1 on 224?", exact=True).click()
    assert page.text_content("#explorer-out-width") == "54.25"
    assert page.locator("#explorer-fixes [data-kind='sizes'] button").all_inner_texts() == \
        ["223", "227"]
    page.locator("#explorer-fixes [data-kind='sizes'] button", has_text="227").click()
    assert page.text_content("#explorer-shape") == "55×55×96"
    context.close()
    assert not problems, problems


def step_text(page) -> str:
    return page.text_content("#explorer-step-text")


def test_stepping_places_each_window_and_the_last_falls_off_the_edge(server, browser):
    context, page, problems = open_page(server, browser, 1400, 900)
    page.get_by_role("button", name="stride 3?", exact=True).click()
    page.click("#explorer-reset")
    assert step_text(page).startswith("Ready: 9 window positions")
    expected = [(r, c) for r in range(3) for c in range(3)]
    for k, (row, col) in enumerate(expected, start=1):
        page.click("#explorer-step")
        text = step_text(page)
        assert text.startswith(f"Window {k} of 9: rows {3 * row}–{3 * row + 2}, columns "
                               f"{3 * col}–{3 * col + 2}"), text
        off = row == 2 or col == 2            # 7 - 3 = 4 is no multiple of 3: 6-8 is past 6
        assert ("falls off the edge" in text) == off, text
        assert (f"output cell ({row}, {col})" in text) == (not off), text
    page.click("#explorer-step")                        # at the end it stays there
    assert step_text(page).startswith("Window 9 of 9")
    page.focus("#explorer-canvas")                      # the keyboard: arrows, Home, Space
    page.keyboard.press("ArrowLeft")
    assert step_text(page).startswith("Window 8 of 9")
    page.keyboard.press("ArrowUp")
    assert step_text(page).startswith("Window 5 of 9")
    page.keyboard.press("Home")
    assert step_text(page).startswith("Ready")
    page.fill("#explorer-speed", "6")                   # 32 windows/s
    assert page.text_content("output[for='explorer-speed']") == "32 windows/s"
    page.focus("#explorer-canvas")
    page.keyboard.press("Space")
    assert page.get_attribute("#explorer-play", "aria-pressed") == "true"
    page.wait_for_function("document.getElementById('explorer-step-text').textContent"
                           ".startsWith('Window 9 of 9')", timeout=WAIT_MS)
    page.wait_for_function("document.getElementById('explorer-play').textContent === 'Play'",
                           timeout=WAIT_MS)              # played to the end, then stopped
    # a suggestion is one click: stride 2 fits (3x3 output)
    page.locator("#explorer-fixes [data-kind='strides'] button", has_text="2").click()
    assert page.input_value("#explorer-s") == "2"
    assert page.text_content("#explorer-shape") == "3×3×1"
    assert page.locator("#explorer-fixes").is_hidden()
    context.close()
    assert not problems, problems


def test_bad_input_is_flagged_and_the_last_case_stays(server, browser):
    context, page, problems = open_page(server, browser, 1400, 900)
    page.get_by_role("button", name="7×7, 3×3, stride 1", exact=True).click()
    for name, bad in (("w", "0"), ("f", "33"), ("s", ""), ("c_out", "4097"), ("p", "-1")):
        page.fill(f"#explorer-{name}", bad)
        assert page.get_attribute(f"#explorer-{name}", "aria-invalid") == "true"
        assert page.text_content("#explorer-form-note").strip(), name
        assert page.text_content("#explorer-shape") == "5×5×1"
        page.fill(f"#explorer-{name}", "1" if name == "c_out" else "7" if name == "w" else
                  "3" if name == "f" else "1" if name == "s" else "0")
        assert page.get_attribute(f"#explorer-{name}", "aria-invalid") == "false"
    assert page.text_content("#explorer-form-note") == ""
    context.close()
    assert not problems, problems


@pytest.mark.parametrize("width, height", [(1920, 1080), (1400, 900), (390, 844)])
def test_screenshots_and_no_sideways_scrolling(server, browser, width, height):
    context, page, problems = open_page(server, browser, width, height)
    page.get_by_role("button", name="stride 3?", exact=True).click()
    page.click("#explorer-reset")
    for _ in range(6):
        page.click("#explorer-step")
    panel = page.locator("#explorer-panel")
    panel.scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    box = page.locator("#explorer-canvas").bounding_box()
    assert box["width"] <= width and box["height"] >= 60
    panel.screenshot(path=str(OUTPUT / f"explorer-stride3-{width}x{height}.png"))
    page.get_by_role("button", name="AlexNet conv1 on 224?", exact=True).click()
    panel.screenshot(path=str(OUTPUT / f"explorer-alexnet224-{width}x{height}.png"))
    if width >= 1400:                   # the projector: full screen, Escape leaves it
        page.click("#explorer-full")
        page.get_by_role("button", name="32×32×3, ten 5×5, stride 1, pad 2", exact=True).click()
        page.click("#explorer-reset")
        for _ in range(40):
            page.click("#explorer-step")
        page.screenshot(path=str(OUTPUT / f"explorer-full-{width}x{height}.png"))
        assert page.locator("#explorer-panel").bounding_box()["height"] <= height + 1
        page.keyboard.press("Escape")
        assert page.get_attribute("#explorer-full", "aria-pressed") == "false"
    context.close()
    assert not problems, problems
