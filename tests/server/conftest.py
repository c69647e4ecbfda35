"""Fixtures for the server tests: a tiny run (2 classes of 8x8 images, a 4-filter conv net),
paused, with one Numba thread (tiny kernels gain nothing from two and suffer on a busy box)."""

from __future__ import annotations

import time
import warnings

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from server.app import create_app
from server.settings import Settings
from tests.server.tiny import tiny_dataset, write_spec

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 for its TestClient; httpx (the test extra) still works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

TOKEN = "test-presenter-token-0123456789"
READY = ("training", "paused", "diverged")


def tiny_settings(directory, **changes) -> Settings:
    values = dict(net=str(write_spec(directory)), dataset=tiny_dataset(), token=TOKEN,
                  snapshot_dir=directory / "snapshots", start_paused=True, threads=1,
                  hyperparams={"batch_size": 4, "learning_rate": 0.05},
                  frame_every_steps=5, frame_min_interval_s=0.0, gallery_per_class=2,
                  metrics_every_s=0.05, history_every_s=0.05, gallery_every_s=0.5,
                  allowed_hosts=("testserver",))    # TestClient's Host (server/hosts.py)
    values.update(changes)
    return Settings(**values)


def wait_ready(client, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get("/api/state").json()
        if state["status"] in READY:
            return state
        assert state["status"] in ("loading", "compiling"), state
        time.sleep(0.05)
    raise AssertionError("the run did not become ready")


def presenter(**extra) -> dict:
    return {"Authorization": f"Bearer {TOKEN}", **extra}


@pytest.fixture(scope="session", autouse=True)
def users_data_directory(tmp_path_factory):
    """A server made without a snapshot_dir saves where `serve` does by default, the user's
    data directory (XDG_DATA_HOME): in the tests, a temporary one, never the real one."""
    import os
    old = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    if old is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = old


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="module")
def client(module_dir):
    """A paused tiny run shared by a test module: tests that change it put it back."""
    app = create_app(tiny_settings(module_dir))
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture
def fresh_client(tmp_path):
    """A run of its own, for tests that change it for good."""
    def make(**changes):
        app = create_app(tiny_settings(tmp_path, **changes))
        return TestClient(app)
    return make


def fingerprint(client) -> tuple:
    """What must not change when a request is refused: the state and the weights."""
    state = client.get("/api/state").json()
    weights = client.get("/api/snapshot", headers=presenter()).content
    return state, weights


def run_cosine(client, total_steps: int) -> None:
    """Switch the run to a cosine schedule of total_steps (as the presenter would)."""
    patched = client.patch("/api/params", headers=presenter(),
                           json={"schedule": "cosine", "total_steps": total_steps})
    assert patched.status_code == 200, patched.text


def assert_error(response, status: int, code: str | None = None) -> dict:
    """A refused request: the expected 4xx/5xx and the one JSON error shape."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("error"), str) and isinstance(body.get("detail"), str), body
    assert body["detail"]
    if code is not None:
        assert body["error"] == code, body
    return body


@pytest.fixture(scope="module")
def browser():
    """One Chromium per page-test module (skipped, with the reason, without Playwright or
    Debian's chromium: see tests/server/browser.py)."""
    from tests.server.browser import launch, sync_api
    with sync_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()
