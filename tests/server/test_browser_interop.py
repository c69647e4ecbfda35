"""The page says so before a ConvNetJS download that ConvNetJS cannot reproduce exactly, with
the measured agreement, in Chromium against a real uvicorn; an exact net downloads at once."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from engine.data.normalize import CONVNETJS_INPUT
from engine.net import Net
from engine.formats.snapshot import dumps, snapshot_to_json
from engine.spec.net_spec import parse_spec
from tests.server.browser import watch_console
from tests.server.conftest import TOKEN, presenter, tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live
from tests.server.tiny import CLASSES, TINY_SPEC, tiny_dataset

WAIT_MS = 30000     # generous: a loaded 2-core machine
BUTTON = "button:has-text('Download ConvNetJS JSON')"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("interop-page")
    with live_server(tiny_settings(directory, start_paused=True)) as (base, _app):
        wait_ready_live(base)
        yield base


@pytest.fixture
def page(server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900},
                                  accept_downloads=True)
    page = context.new_page()
    problems = watch_console(page)
    page.goto(f"{server}/?token={TOKEN}")
    page.wait_for_selector(BUTTON, timeout=WAIT_MS)
    yield page
    context.close()
    assert not problems, problems


def load_net(server, preprocess: dict) -> dict:
    """Upload the tiny net (its first conv zero-pads) trained on `preprocess`; /api/state's
    ConvNetJS export status after it."""
    net = Net(parse_spec(TINY_SPEC), rng=np.random.default_rng(3))
    net.layers[-2].params["w"] *= 20           # decisive outputs: a border change shows
    response = httpx.put(f"{server}/api/snapshot", headers=presenter(), timeout=60,
                         files={"file": ("net.json", dumps(snapshot_to_json(
                             net, preprocess=preprocess, classes=list(CLASSES))))})
    assert response.status_code == 200, response.text
    return httpx.get(f"{server}/api/state", headers=presenter()).json()["exports"]["convnetjs"]


def test_an_inexact_export_is_announced_with_its_agreement_before_the_download(server, page):
    status = load_net(server, tiny_dataset().normalization.to_dict())
    assert status["possible"] and not status["exact"]
    agreement = status["agreement"]
    asked: list[str] = []

    def refuse(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    page.click(BUTTON)
    page.wait_for_function("[...document.querySelectorAll('.snapshots .field-note')]"
                           ".some((n) => n.textContent === 'Not downloaded.')", timeout=WAIT_MS)
    assert len(asked) == 1, asked
    assert "ConvNetJS will not compute exactly what this net computes" in asked[0]
    assert "zero-pads" in asked[0]
    assert (f"On {agreement['images']} test images it gives the same class for "
            f"{agreement['same_class']}") in asked[0]


def test_an_exact_export_downloads_without_asking(server, page):
    status = load_net(server, CONVNETJS_INPUT.to_dict())
    assert status["exact"]
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    with page.expect_download(timeout=WAIT_MS) as info:
        page.click(BUTTON)
    with open(info.value.path(), "rb") as file:
        doc = json.loads(file.read())
    assert [layer["layer_type"] for layer in doc["layers"]][:2] == ["input", "conv"]
    assert doc["convnet_demo"]["classes"] == list(CLASSES)
    assert asked == []
