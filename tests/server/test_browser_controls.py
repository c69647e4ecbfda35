"""The presenter's controls never lie, in Chromium against a real uvicorn: a response for one
field never rewrites the field being typed in, a refusal's note stays with the refused value
and clears once the field is accepted, the schedule control and a typed learning rate agree
with the stats after loading a snapshot whose cosine schedule has ended, a snapshot file that
is not one says so beside its control, and an upload error replaces the previous result."""

from __future__ import annotations

import io
import time

import httpx
import pytest
from PIL import Image

from tests.server.browser import watch_console
from tests.server.conftest import TOKEN, presenter, tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live

WAIT_MS = 30000     # generous: a loaded 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("controls")
    with live_server(tiny_settings(directory, start_paused=True)) as (base, _app):
        wait_ready_live(base)           # kernels compiled: steps and loads are taken
        yield base


@pytest.fixture
def page(server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(f"{server}/?token={TOKEN}")
    page.wait_for_selector("#controls-panel")
    page.wait_for_function("document.querySelector('#param-momentum').value !== ''", timeout=WAIT_MS)
    yield page
    context.close()
    assert not problems, problems


def settings(server) -> dict:
    return httpx.get(f"{server}/api/state", headers=presenter()).json()["settings"]


def patch(server, **values) -> None:
    response = httpx.patch(f"{server}/api/params", json=values, headers=presenter())
    assert response.status_code == 200, response.text


def wait_note(page, name: str, text: str) -> None:
    page.wait_for_function("([id, text]) => document.getElementById(id).textContent.includes(text)",
                           arg=[f"param-{name}-note", text], timeout=WAIT_MS)


def set_field(page, name: str, value: str) -> None:
    """Type a value into a settings field, leave it, and wait until the server took it."""
    page.fill(f"#param-{name}", value)
    page.press(f"#param-{name}", "Tab")
    wait_note(page, name, "applied")


def png_bytes(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, format="PNG")
    return buf.getvalue()


def test_a_response_never_rewrites_the_field_being_typed_in(server, page):
    patch(server, learning_rate=0.05, momentum=0.9)
    page.reload()
    page.wait_for_function("document.querySelector('#param-momentum').value === '0.9'", timeout=WAIT_MS)
    held = []

    def hold_first_patch(route):
        if route.request.method == "PATCH" and not held:
            held.append(route)      # answered below, while momentum is being typed in
        else:
            route.continue_()

    page.route("**/api/params", hold_first_patch)
    page.fill("#param-learning_rate", "0.02")
    page.press("#param-learning_rate", "Tab")       # sends it; focus moves to Momentum
    deadline = time.monotonic() + 30
    while not held:
        assert time.monotonic() < deadline, "the learning rate was not sent"
        page.wait_for_timeout(50)
    assert page.evaluate("document.activeElement.id") == "param-momentum"
    page.keyboard.press("Control+A")
    page.keyboard.type("0.8")
    held[0].continue_()                             # its response arrives now
    wait_note(page, "learning_rate", "applied")
    patch(server, batch_size=4)                     # and a stream event from another tab
    page.wait_for_timeout(500)
    assert page.input_value("#param-momentum") == "0.8"
    page.keyboard.type("5")
    page.keyboard.press("Tab")
    wait_note(page, "momentum", "applied")
    now = settings(server)
    assert now["momentum"] == pytest.approx(0.85), now     # the old page sent 0.95 here
    assert now["learning_rate"] == pytest.approx(0.02)
    assert page.input_value("#param-momentum") == "0.85"

    # Focus alone holds a field still (the presenter may be about to type), and the value
    # another tab set shows as soon as the field is left.
    page.focus("#param-batch_size")
    patch(server, batch_size=8)
    page.wait_for_timeout(1000)
    assert page.input_value("#param-batch_size") == "4"
    page.press("#param-batch_size", "Tab")
    page.wait_for_function("document.querySelector('#param-batch_size').value === '8'",
                           timeout=WAIT_MS)


def test_a_note_belongs_to_the_value_beside_it_and_clears_once_accepted(server, page):
    patch(server, momentum=0.9)
    page.fill("#param-momentum", "-0.1")
    page.press("#param-momentum", "Tab")
    page.wait_for_selector("#param-momentum-note.error", timeout=WAIT_MS)
    refusal = page.inner_text("#param-momentum-note")
    assert "momentum" in refusal.lower(), refusal

    # Another field is accepted: the refused field keeps what was typed and its note (the old
    # page rewrote the field to 0.9 and left the refusal beside it).
    set_field(page, "learning_rate", "0.03")
    assert page.input_value("#param-momentum") == "-0.1"
    assert "error" in page.get_attribute("#param-momentum-note", "class")

    set_field(page, "momentum", "0.5")
    assert "error" not in page.get_attribute("#param-momentum-note", "class")
    assert settings(server)["momentum"] == pytest.approx(0.5)
    page.wait_for_function("document.getElementById('param-momentum-note').textContent === ''",
                           timeout=WAIT_MS)        # "applied" fades too

    # Escape gives a refused field the server's value back, and its note goes.
    page.fill("#param-momentum", "2")
    page.press("#param-momentum", "Tab")
    page.wait_for_selector("#param-momentum-note.error", timeout=WAIT_MS)
    page.focus("#param-momentum")
    page.keyboard.press("Escape")
    assert page.input_value("#param-momentum") == "0.5"
    assert page.inner_text("#param-momentum-note") == ""


def test_the_typed_rate_is_the_rate_used_after_loading_an_ended_cosine_run(server, page):
    """A pretrained net's cosine schedule has ended; loading it and typing 0.005 makes the
    next step's rate 0.005, and the stats say so (they said 0 while the field said 0.005)."""
    patch(server, learning_rate=0.05, schedule="cosine", total_steps=4, warmup_steps=0,
          min_lr_factor=0.0)
    for _ in range(6):
        httpx.post(f"{server}/api/control", json={"action": "step"}, headers=presenter())
    ended = httpx.get(f"{server}/api/snapshot", headers=presenter())
    assert ended.status_code == 200
    httpx.post(f"{server}/api/control", json={"action": "reset"}, headers=presenter())
    patch(server, schedule="constant")

    page.set_input_files("#snapshot-file", files=[{"name": "ended-cosine.json",
                                                    "mimeType": "application/json",
                                                    "buffer": ended.content}])
    page.wait_for_function("document.getElementById('snapshot-file-note').textContent"
                           ".includes('Loaded ended-cosine.json')", timeout=WAIT_MS)
    page.wait_for_function("document.getElementById('stat-lr').textContent === '0'",
                           timeout=WAIT_MS)
    assert page.input_value("#param-schedule") == "cosine"
    assert page.is_visible("#param-total_steps") and not page.is_visible("#param-step_size")
    assert "ended" in page.inner_text("#schedule-now")

    set_field(page, "learning_rate", "0.005")
    page.wait_for_function("document.getElementById('stat-lr').textContent === '0.005'",
                           timeout=WAIT_MS)
    assert page.input_value("#param-learning_rate") == "0.005"
    state = httpx.get(f"{server}/api/state").json()
    assert state["metrics"]["lr"] == pytest.approx(0.005)
    assert state["settings"]["learning_rate"] == pytest.approx(0.005)


def test_the_schedule_control_sets_a_step_schedule_and_restarts_it_here(server, page):
    patch(server, learning_rate=0.05, schedule="constant", warmup_steps=0)
    for _ in range(3):
        httpx.post(f"{server}/api/control", json={"action": "step"}, headers=presenter())
    page.select_option("#param-schedule", "step")
    wait_note(page, "schedule", "applied")
    assert page.is_visible("#param-step_size") and page.is_visible("#param-gamma")
    assert not page.is_visible("#param-total_steps")
    set_field(page, "step_size", "2")
    set_field(page, "gamma", "0.5")
    now = settings(server)
    assert (now["schedule"], now["step_size"], now["gamma"]) == ("step", 2, 0.5)

    step = httpx.get(f"{server}/api/state").json()["metrics"]["step"]
    page.click("#restart-schedule")
    page.wait_for_function("document.getElementById('restart-schedule-note').textContent"
                           ".includes('counting from step')", timeout=WAIT_MS)
    assert "error" not in page.get_attribute("#restart-schedule-note", "class")
    state = httpx.get(f"{server}/api/state").json()
    assert state["settings"]["schedule_start"] == step
    assert state["metrics"]["lr"] == pytest.approx(0.05)      # the schedule's first step
    assert f"step {step:,}" in page.inner_text("#restart-schedule-note")
    patch(server, schedule="constant")


def test_a_linear_schedule_shows_its_length_and_lookahead_is_a_field(server, page):
    patch(server, learning_rate=0.05, schedule="constant", warmup_steps=0, total_steps=10000)
    page.select_option("#param-schedule", "linear")
    wait_note(page, "schedule", "applied")
    assert page.is_visible("#param-total_steps") and page.is_visible("#param-min_lr_factor")
    assert not page.is_visible("#param-step_size")
    set_field(page, "total_steps", "40")
    page.wait_for_function("document.getElementById('schedule-now').textContent"
                           ".includes('Linear schedule')", timeout=WAIT_MS)
    set_field(page, "lookahead", "0.5")
    set_field(page, "warmup_steps", "10")
    set_field(page, "warmup_from", "0.2")
    page.wait_for_function("document.getElementById('schedule-now').textContent"
                           ".includes('after 10 warmup steps from 0.2× the rate')",
                           timeout=WAIT_MS)
    page.fill("#param-warmup_from", "1.5")
    page.press("#param-warmup_from", "Tab")
    page.wait_for_selector("#param-warmup_from-note.error", timeout=WAIT_MS)
    assert settings(server)["warmup_from"] == 0.2      # the refused 1.5 changed nothing
    page.fill("#param-warmup_from", "0.2")             # clear the refusal
    page.press("#param-warmup_from", "Tab")
    wait_note(page, "warmup_from", "applied")
    page.fill("#param-lookahead_every", "0")
    page.press("#param-lookahead_every", "Tab")
    page.wait_for_selector("#param-lookahead_every-note.error", timeout=WAIT_MS)
    now = settings(server)
    assert (now["schedule"], now["total_steps"], now["lookahead"]) == ("linear", 40, 0.5)
    assert now["lookahead_every"] == 5                  # the refused 0 changed nothing
    page.fill("#param-lookahead_every", "5")            # clear the refusal before the next test
    page.press("#param-lookahead_every", "Tab")
    wait_note(page, "lookahead_every", "applied")
    patch(server, schedule="constant", lookahead=0.0, total_steps=10000, warmup_steps=0,
          warmup_from=0.0)


def test_a_file_that_is_not_a_snapshot_is_named_beside_the_control(server, page):
    picture = png_bytes((200, 30, 30))
    page.set_input_files("#snapshot-file", files=[{"name": "cat.png", "mimeType": "image/png",
                                                    "buffer": picture}])
    page.wait_for_selector("#snapshot-file-note.error", timeout=WAIT_MS)
    shown = page.inner_text("#snapshot-file-note")
    refused = httpx.put(f"{server}/api/snapshot", headers=presenter(),
                        files={"file": ("cat.png", picture, "image/png")})
    assert refused.status_code == 422
    assert "cat.png" in shown and refused.json()["detail"] in shown, shown
    note = page.locator("#snapshot-file-note").bounding_box()
    button = page.locator("label[for=snapshot-file]").bounding_box()
    assert abs(note["y"] - button["y"]) < 60, (note, button)   # beside it, not at the bottom
    font = page.evaluate("getComputedStyle(document.getElementById('snapshot-file-note'))"
                         ".fontFamily")
    assert "mono" not in font.lower(), font                      # plain words


def test_an_upload_error_replaces_the_previous_result_and_names_the_file(server, page):
    page.set_input_files("#upload-file", files=[{"name": "light.png", "mimeType": "image/png",
                                                  "buffer": png_bytes((230, 230, 230))}])
    page.wait_for_selector(".upload-result:not([hidden]) .verdict", timeout=WAIT_MS)
    page.set_input_files("#upload-file", files=[{"name": "notes.txt", "mimeType": "text/plain",
                                                  "buffer": b"not a picture at all\n"}])
    page.wait_for_selector(".upload-message.error", timeout=WAIT_MS)
    assert "notes.txt" in page.inner_text(".upload-message")
    assert not page.is_visible(".upload-result")
    assert page.locator(".verdict:visible").count() == 0
    page.set_input_files("#upload-file", files=[{"name": "dark.png", "mimeType": "image/png",
                                                  "buffer": png_bytes((20, 20, 20))}])
    page.wait_for_selector(".upload-result:not([hidden]) .verdict", timeout=WAIT_MS)
    assert "error" not in page.get_attribute(".upload-message", "class")
