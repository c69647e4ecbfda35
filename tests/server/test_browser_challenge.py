"""Beat the network in Chromium against a real uvicorn: three phones play rounds (one answer
per image, then "you: right/wrong · the net said X (p%)" and the next image), the room-vs-net
board updates live on every page, on the presenter's projector too, nicknames made of HTML
and script are shown as text and run nothing, and the presenter starts the board over.

The run is a 10-class variant of the tiny data set (CIFAR-10's class names: the phone's
buttons must fit ten real names), paused, so the net's answers come between no steps."""

from __future__ import annotations

import json
import re

import httpx
import numpy as np
import pytest

from engine.data.dataset import Dataset, SourceInfo, Split
from engine.data.normalize import Normalization, channel_stats
from tests.server.browser import OUTPUT, watch_console
from tests.server.conftest import TOKEN, tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live

WAIT_MS = 60000     # generous: a loaded 2-core machine
CIFAR = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck")
SPEC = [{"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 3},
        {"type": "conv", "sx": 3, "filters": 4, "stride": 1, "pad": 1, "activation": "relu"},
        {"type": "pool", "sx": 2, "stride": 2},
        {"type": "softmax", "num_classes": 10}]
NICKNAMES = ("<img src=x onerror=p=1>", "<script>p=1</script>", "Ada")
VERDICT = re.compile(r"^you: (right|wrong \(it was [a-z]+\)) · the net said [a-z]+ \(\d+%\)$")


def ten_classes() -> Dataset:
    rng = np.random.default_rng(0)

    def images(count):
        labels = np.arange(count, dtype=np.int64) % 10
        base = (labels[:, None, None, None] * 23 + np.array([20, 90, 160])) % 256
        noise = rng.integers(-20, 20, size=(count, 8, 8, 3))
        return np.clip(base + noise, 0, 255).astype(np.uint8), labels

    train_images, train_labels = images(60)
    test_images, test_labels = images(40)
    norm = Normalization.from_stats(channel_stats(train_images), 64)
    info = SourceInfo("folder", "tests/server/ten", "sha256:ten", None, False)
    held_out = np.arange(60) % 10 == 9
    return Dataset(source=info, class_names=CIFAR, image_size=(8, 8), normalization=norm,
                   train=Split("train", train_images, train_labels, np.flatnonzero(~held_out),
                               CIFAR, norm),
                   validation=Split("validation", train_images, train_labels,
                                    np.flatnonzero(held_out), CIFAR, norm),
                   test=Split("test", test_images, test_labels, None, CIFAR, norm))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("challenge")
    spec = directory / "ten.json"
    spec.write_text(json.dumps(SPEC))
    settings = tiny_settings(directory, net=str(spec), dataset=ten_classes(),
                             leaderboard_every_s=0.2)
    with live_server(settings) as (base, app):
        wait_ready_live(base)
        yield base, app


def truth(app, context) -> str:
    """The class of the image a page shows (the server never tells it; the test looks in
    the game's table for the newest image handed to that browser)."""
    viewer = next(c["value"] for c in context.cookies() if c["name"].startswith("convnet_viewer"))
    rounds = app.state.challenge_room.rounds
    position = rounds._rounds[rounds._open[viewer][-1]].position
    return CIFAR[int(app.state.runtime.worker.handlers.inspector.dataset.test.labels[position])]


def open_panel(server, browser, width, height, token=False):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(f"{server}/?token={TOKEN}" if token else server)
    page.wait_for_selector("#challenge-panel")
    page.locator("#challenge-panel").scroll_into_view_if_needed()
    return context, page, problems


def wait_for_image(page) -> None:
    page.wait_for_function("document.querySelectorAll('.challenge-choice:not([disabled])')"
                           ".length === 10", timeout=WAIT_MS)


def play(page, label: str) -> str:
    """Answer the image on screen; the verdict line once the next image is there."""
    wait_for_image(page)
    before = page.locator(".challenge-img").get_attribute("src")
    page.locator(f".challenge-choice[data-label='{label}']").click()
    page.wait_for_function("document.querySelector('.challenge-result').textContent"
                           ".startsWith('you: ')", timeout=WAIT_MS)
    wait_for_image(page)
    text = page.locator(".challenge-result").text_content().strip()
    assert page.locator(".challenge-img").get_attribute("src").startswith("data:image/png")
    assert before.startswith("data:image/png")
    return text


def board_answers(page, count: int) -> None:
    page.wait_for_function(f"(document.querySelector('.vs-covers') || {{}}).textContent"
                           f"?.startsWith('{count} answer')", timeout=WAIT_MS)


def test_phones_play_rounds_and_every_page_sees_the_room_against_the_net(server, browser):
    server, app = server
    projector, board_page, board_problems = open_panel(server, browser, 1400, 900, token=True)
    board_answers(board_page, 0)
    phones = [open_panel(server, browser, 390, 844) for _ in NICKNAMES]
    answered = right = 0
    # the first phone knows every class, the second none, the third two of three
    for i, ((context, page, problems), nickname) in enumerate(zip(phones, NICKNAMES)):
        page.locator("#challenge-nickname").fill(nickname)
        for turn in range(3):
            wait_for_image(page)
            true = truth(app, context)
            knows = i == 0 or (i == 2 and turn < 2)
            text = play(page, true if knows else next(c for c in CIFAR if c != true))
            assert VERDICT.match(text), text
            assert text.startswith("you: right" if knows else "you: wrong")
            answered, right = answered + 1, right + knows
    assert phones[0][1].locator(".challenge-tally").text_content().startswith(
        "You so far: 3 of 3 (100.0%)")
    twin = httpx.get(f"{server}/api/leaderboard").json()
    assert twin["answers"] == answered == 9 and twin["players"] == 3
    assert twin["room"]["correct"] == right == 5
    # live on the projector (which answered nothing) and on the first phone
    board_answers(board_page, answered)
    board_answers(phones[0][1], answered)
    shown = board_page.locator(".vs-top .vs-nick").all_inner_texts()
    assert shown == [p["nickname"] for p in twin["top"]]      # as text, exactly as typed
    assert sorted(shown) == sorted(NICKNAMES)
    for page in [board_page] + [phone[1] for phone in phones]:
        assert page.evaluate("typeof window.p") == "undefined"      # no script ran
        assert page.locator(".challenge-board img, .challenge-board script").count() == 0
    rows = board_page.locator(".vs-class")
    assert rows.count() == 10
    assert board_page.locator(".vs-class[data-label='cat'] .vs-count").inner_text() == str(
        next(r["answers"] for r in twin["per_class"] if r["label"] == "cat"))
    room = twin["room"]["accuracy"]
    width = board_page.locator(".vs-overall .vs-room .vs-fill").evaluate(
        "n => parseFloat(n.style.width)")
    assert width == pytest.approx(100 * room, abs=0.06)

    phone = phones[0][1]
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.locator("#challenge-panel").scroll_into_view_if_needed()
    phone.screenshot(path=str(OUTPUT / "challenge-phone-390x844.png"))
    phone.locator(".challenge-board").scroll_into_view_if_needed()
    phone.screenshot(path=str(OUTPUT / "challenge-phone-board-390x844.png"))
    board_page.locator("#challenge-panel").screenshot(
        path=str(OUTPUT / "challenge-panel-1400x900.png"))

    # the presenter starts over: every page's board empties, live
    board_page.get_by_role("button", name="Start the leaderboard over").click()
    board_answers(board_page, 0)
    board_answers(phone, 0)
    assert phone.get_by_role("button", name="Start the leaderboard over").count() == 0
    assert httpx.get(f"{server}/api/leaderboard").json()["answers"] == 0
    play(phone, "dog")
    board_answers(board_page, 1)

    for context, _page, problems in phones:
        context.close()
        assert not problems, problems
    projector.close()
    assert not board_problems, board_problems


def test_a_refused_nickname_is_shown_by_its_field_and_the_image_stays(server, browser):
    server, _app = server
    context, page, problems = open_panel(server, browser, 390, 844)
    wait_for_image(page)
    image = page.locator(".challenge-img").get_attribute("src")
    page.locator("#challenge-nickname").fill("tab\there")
    page.locator(".challenge-choice[data-label='frog']").click()
    page.wait_for_function("document.querySelector('.challenge-nick .field-note')"
                           ".textContent.includes('nickname')", timeout=WAIT_MS)
    assert page.locator(".challenge-img").get_attribute("src") == image
    page.locator("#challenge-nickname").fill("Tab")
    assert VERDICT.match(play(page, "frog"))
    context.close()
    assert not problems, problems
