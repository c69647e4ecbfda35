"""Live questions in Chromium against a real uvicorn: the presenter asks from the panel, three
viewer pages (two phones, one projector-sized screen) show the question at once, answer (one
changes its mind), the presenter's card shows the live histogram, closing it reveals the
answer everywhere; a predict question shows its picture; a typed question full of HTML and
script shows as text. Screenshots go to test-output/."""

from __future__ import annotations

import httpx
import pytest

from tests.server.browser import OUTPUT, watch_console
from tests.server.conftest import TOKEN, presenter, tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live

WAIT_MS = 60000     # generous: a loaded 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("polls")
    with live_server(tiny_settings(directory, start_paused=True)) as (base, _app):
        wait_ready_live(base)
        yield base


def open_page(server, browser, width, height, token=False):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(f"{server}/?token={TOKEN}" if token else server)
    page.wait_for_function("document.querySelector('#conn-badge') !== null", timeout=WAIT_MS)
    return context, page, problems


def wait_question(page, text: str) -> None:
    page.wait_for_function("(t) => { const c = document.querySelector('#poll');"
                           " return c && !c.hidden && c.querySelector('.poll-question')"
                           ".textContent.includes(t); }", arg=text, timeout=WAIT_MS)


def option(page, text: str):
    return page.locator("#poll .poll-option", has_text=text)


def test_the_room_answers_and_sees_the_reveal(server, browser):
    pres_ctx, pres, pres_problems = open_page(server, browser, 1400, 900, token=True)
    viewers = [open_page(server, browser, w, h) for w, h in ((390, 844), (390, 844),
                                                              (1920, 1080))]
    pres.wait_for_function("document.querySelectorAll('#poll-layer option').length >= 2",
                           timeout=WAIT_MS)
    pres.select_option("#poll-kind", "output_size")
    pres.select_option("#poll-layer", "1")
    pres.get_by_role("button", name="Ask the room").click()
    for _, page, _ in viewers:
        wait_question(page, "What is its output volume")
    # a phone: the card fits the screen and every option is a big tap target
    phone = viewers[0][1]
    box = phone.locator("#poll").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844
    heights = [o.bounding_box()["height"] for o in phone.locator("#poll .poll-option").all()]
    assert len(heights) == 4 and min(heights) >= 44, heights
    assert phone.locator("#poll .poll-count").count() == 0     # viewers see no counts yet
    assert "null" not in phone.locator("#poll").inner_text()

    option(viewers[0][1], "8×8×4").click()
    option(viewers[1][1], "8×8×3").click() if option(viewers[1][1], "8×8×3").count() else \
        viewers[1][1].locator("#poll .poll-option").nth(0).click()
    wrong_first = viewers[1][1].locator("#poll .poll-mine .poll-text").inner_text()
    option(viewers[1][1], "8×8×4").click()                   # changes its mind
    viewers[2][1].locator("#poll .poll-option:not(:has-text('8×8×4'))").first.click()
    viewers[1][1].wait_for_function("document.querySelector('#poll .poll-status').textContent"
                                    ".includes('Your answer')", timeout=WAIT_MS)
    pres.wait_for_function("document.querySelector('#poll .poll-total').textContent"
                           " === '3 answers'", timeout=WAIT_MS)
    right_count = pres.locator("#poll .poll-option", has_text="8×8×4").locator(".poll-count")
    pres.wait_for_function("[...document.querySelectorAll('#poll .poll-option')].some((o) =>"
                           " o.textContent.includes('8×8×4') &&"
                           " o.querySelector('.poll-count').textContent === '2')",
                           timeout=WAIT_MS)
    assert right_count.inner_text() == "2" and wrong_first != "8×8×4"
    phone.screenshot(path=str(OUTPUT / "poll-viewer-answered-390x844.png"))
    pres.screenshot(path=str(OUTPUT / "poll-presenter-histogram-1400x900.png"))

    pres.locator("#poll .poll-close").click()
    for i, (_, page, _) in enumerate(viewers):
        page.wait_for_function("document.querySelector('#poll').classList.contains("
                               "'poll-closed')", timeout=WAIT_MS)
        status = page.locator("#poll .poll-status").inner_text()
        assert status == ("Not quite: the answer is " if i == 2 else "Right!") + (
            status.split("is ")[-1] if i == 2 else ""), status
        assert page.locator("#poll .poll-right", has_text="8×8×4").count() == 1
    assert "forgot" in viewers[2][1].locator("#poll .poll-wrong .poll-mistake").inner_text()
    phone.screenshot(path=str(OUTPUT / "poll-viewer-reveal-390x844.png"))
    viewers[2][1].screenshot(path=str(OUTPUT / "poll-viewer-reveal-1920x1080.png"))
    pres.screenshot(path=str(OUTPUT / "poll-presenter-reveal-1400x900.png"))
    twin = httpx.get(f"{server}/api/poll").json()["poll"]
    assert twin["counts"][twin["answer"]] == 2 and twin["total"] == 3

    # a predict question: the picture comes from the JSON twin, once
    pres.select_option("#poll-kind", "predict")
    pres.get_by_role("button", name="Ask the room").click()
    wait_question(phone, "Which class will the net predict")
    phone.wait_for_function("(() => { const i = document.querySelector('#poll .poll-image');"
                            " return i && !i.hidden && i.complete && i.naturalWidth === 8; })()",
                            timeout=WAIT_MS)
    phone.screenshot(path=str(OUTPUT / "poll-viewer-predict-390x844.png"))
    # a viewer may put the card away and bring it back
    phone.get_by_role("button", name="Hide").click()
    phone.get_by_role("button", name="Question open: answer").click()
    assert phone.locator("#poll").is_visible()
    for context, _, problems in viewers:
        context.close()
        assert not problems, problems
    pres_ctx.close()
    assert not pres_problems, pres_problems


HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>&amp;'


def test_typed_questions_show_html_as_text(server, browser):
    pres_ctx, pres, pres_problems = open_page(server, browser, 1400, 900, token=True)
    view_ctx, viewer, viewer_problems = open_page(server, browser, 390, 844)
    pres.select_option("#poll-kind", "custom")
    pres.fill("#poll-custom-question", HOSTILE)
    pres.get_by_role("button", name="Add an option").click()
    boxes = pres.locator(".poll-custom-options input[type=text]")
    for i, text in enumerate([HOSTILE + " A", "<b>B</b>", "C"]):
        boxes.nth(i).fill(text)
    pres.locator(".poll-right-box").nth(2).check()
    pres.get_by_role("button", name="Ask the room").click()
    wait_question(viewer, "<script>")
    assert viewer.locator("#poll .poll-question").inner_text() == HOSTILE
    assert viewer.locator("#poll .poll-option").nth(1).locator(".poll-text").inner_text() \
        == "<b>B</b>"
    assert viewer.locator("#poll img:not(.poll-image), #poll script, #poll b").count() == 0
    assert viewer.evaluate("window.pwned") is None and pres.evaluate("window.pwned") is None
    viewer.locator("#poll .poll-option").nth(2).click()
    closed = httpx.delete(f"{server}/api/poll", headers=presenter())
    assert closed.json()["answer"] == 2
    viewer.wait_for_function("document.querySelector('#poll .poll-status').textContent"
                             " === 'Right!'", timeout=WAIT_MS)
    # a page opened after the question closed shows no old reveal
    late_ctx, late, late_problems = open_page(server, browser, 390, 844)
    late.wait_for_function("document.querySelector('#poll') !== null", timeout=WAIT_MS)
    late.wait_for_timeout(1500)                 # the stream's latest poll event arrives
    assert late.locator("#poll").is_hidden() and late.locator(".poll-reopen").is_hidden()
    late_ctx.close()
    assert not late_problems, late_problems
    # bad input in the form: the server's sentence shows next to the form
    pres.select_option("#poll-kind", "custom")
    pres.fill("#poll-custom-question", "")
    pres.get_by_role("button", name="Ask the room").click()
    pres.wait_for_function("document.querySelector('.poll-note').textContent"
                           ".includes('question')", timeout=WAIT_MS)
    viewer.screenshot(path=str(OUTPUT / "poll-viewer-custom-390x844.png"))
    pres.locator("#poll-panel").screenshot(path=str(OUTPUT / "poll-presenter-form-1400x900.png"))
    view_ctx.close()
    pres_ctx.close()
    assert not pres_problems and not viewer_problems, (pres_problems, viewer_problems)
