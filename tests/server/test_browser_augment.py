"""The page's augmentation and test-time augmentation controls, in Chromium against a real
uvicorn: flip is off, random or alternate (sent as JSON false, true or "alternate"), a shift
fills with zeros or a reflection, and the test set is evaluated with or without TTA; a value
another tab sets shows in the control."""

from __future__ import annotations

import httpx
import pytest

from tests.server.browser import watch_console
from tests.server.conftest import TOKEN, presenter, tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live

WAIT_MS = 30000     # generous: a loaded 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("augment")
    with live_server(tiny_settings(directory, start_paused=True)) as (base, _app):
        wait_ready_live(base)
        yield base


@pytest.fixture
def page(server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(f"{server}/?token={TOKEN}")
    page.wait_for_selector("#controls-panel")
    page.wait_for_function("document.querySelector('#param-flip').value === 'true'",
                           timeout=WAIT_MS)
    yield page
    context.close()
    assert not problems, problems


def settings(server) -> dict:
    return httpx.get(f"{server}/api/state", headers=presenter()).json()["settings"]


def choose(page, name: str, value: str) -> None:
    page.select_option(f"#param-{name}", value)
    page.wait_for_function("(id) => document.getElementById(id).textContent.includes('applied')",
                           arg=f"param-{name}-note", timeout=WAIT_MS)


def test_the_choices_reach_the_run_with_their_json_types(server, page):
    labels = page.eval_on_selector_all("#param-flip option", "os => os.map(o => o.textContent)")
    assert labels == ["off", "random", "alternate"]
    choose(page, "flip", "alternate")
    assert settings(server)["flip"] == "alternate"
    choose(page, "flip", "false")
    assert settings(server)["flip"] is False
    choose(page, "flip", "true")
    assert settings(server)["flip"] is True
    choose(page, "shift_fill", "reflect")
    choose(page, "tta", "flip_translate")
    now = settings(server)
    assert (now["shift_fill"], now["tta"]) == ("reflect", "flip_translate")


def test_a_change_from_another_tab_shows_in_the_controls(server, page):
    response = httpx.patch(f"{server}/api/params", headers=presenter(),
                           json={"flip": "alternate", "tta": "flip", "shift_fill": "zero"})
    assert response.status_code == 200, response.text
    page.wait_for_function("document.querySelector('#param-flip').value === 'alternate' && "
                           "document.querySelector('#param-tta').value === 'flip' && "
                           "document.querySelector('#param-shift_fill').value === 'zero'",
                           timeout=WAIT_MS)
