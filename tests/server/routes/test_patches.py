"""GET /api/filters/{layer}/{channel}: the nine test patches that excite a conv channel most,
found after each test evaluation; before one, a 409 that says when; bad layer or channel
refused in the one error shape, naming the field; a new net or a reset drops them."""

from __future__ import annotations

import base64
import io
import time
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from server.app import create_app
from server.auth import route_policies
from server.patches import PATCH_PIXELS, TOP
from tests.server.conftest import (
    TestClient,
    assert_error,
    fingerprint,
    presenter,
    tiny_settings,
    wait_ready,
)
from tests.server.tiny import TINY_SPEC

CONV, RELU, POOL = 1, 2, 3          # TINY_SPEC's top-level layers (input 0, ..., softmax 5)
FILTERS = 4
TEST_EVERY = 2                      # steps between test evaluations in these runs


def patch_settings(directory, **changes):
    return tiny_settings(directory, options={"test_every": TEST_EVERY}, **changes)


@pytest.fixture(scope="module")
def client(module_dir):
    with TestClient(create_app(patch_settings(module_dir))) as test_client:
        wait_ready(test_client)
        yield test_client


@contextmanager
def ready(tmp_path, **changes):
    with TestClient(create_app(patch_settings(tmp_path, **changes))) as test_client:
        wait_ready(test_client)
        yield test_client


def steps(client, count: int) -> None:
    for _ in range(count):
        response = client.post("/api/control", json={"action": "step"}, headers=presenter())
        assert response.status_code == 200, response.text


def computed(client, layer: int = CONV, channel: int = 0, step: int | None = None,
             timeout: float = 60.0) -> dict:
    """The answer once the scan (of the test at `step`, or any) is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/api/filters/{layer}/{channel}")
        if response.status_code == 200 and (step is None or response.json()["step"] == step):
            return response.json()
        if response.status_code != 200:
            assert_error(response, 409, "patches_not_ready")
        time.sleep(0.05)
    raise AssertionError("the patches were not found in time")


def pixels(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    raw = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw), formats=["PNG"]))


def test_the_route_is_public(tmp_path):
    policies = route_policies(create_app(patch_settings(tmp_path)))
    assert policies["GET /api/filters/{layer}/{channel}"] == "public"


def test_before_any_test_evaluation_it_says_when(tmp_path):
    with ready(tmp_path) as client:
        body = assert_error(client.get(f"/api/filters/{CONV}/0"), 409, "patches_not_ready")
        assert body["field"] == "layer"
        assert f"after the next test evaluation (at step {TEST_EVERY})" in body["detail"]


def test_nine_patches_cut_from_the_raw_test_images_at_the_receptive_field(client):
    steps(client, TEST_EVERY)
    answer = computed(client, CONV, 1)
    assert answer["step"] == answer["test_step"] == TEST_EVERY
    assert (answer["layer"], answer["channel"], answer["channels"]) == (CONV, 1, FILTERS)
    assert answer["field"] == [3, 3] and answer["edge"] == "clipped"
    test = client.app.state.runtime.settings.dataset.test
    assert answer["images_scanned"] == len(test) == 10
    patches = answer["patches"]
    assert len(patches) == TOP
    values = [p["value"] for p in patches]
    assert values == sorted(values, reverse=True)
    assert len({p["index"] for p in patches}) == TOP           # one patch per image
    for patch in patches:
        y, x = patch["position"]
        assert 0 <= y < 8 and 0 <= x < 8                        # conv 3x3 pad 1 on 8x8
        top, left = max(0, y - 1), max(0, x - 1)
        bottom, right = min(8, y + 2), min(8, x + 2)
        assert patch["box"] == [top, left, bottom - top, right - left]
        crop = test.take(np.array([patch["index"]]))[0][top:bottom, left:right]
        factor = PATCH_PIXELS // max(crop.shape[:2])
        assert np.array_equal(pixels(patch["image"]),
                              np.repeat(np.repeat(crop, factor, 0), factor, 1))
    again = client.get(f"/api/filters/{CONV}/1")
    assert again.status_code == 200 and again.json() == answer   # made once, kept


def test_bad_layers_and_channels_are_refused_naming_the_field(client):
    computed(client)
    body = assert_error(client.get("/api/filters/99/0"), 404, "no_layer")
    assert body["field"] == "layer" and "layers 0..5" in body["detail"]
    body = assert_error(client.get(f"/api/filters/{POOL}/0"), 422, "not_conv")
    assert body["field"] == "layer" and "pool" in body["detail"]
    body = assert_error(client.get(f"/api/filters/{CONV}/{FILTERS}"), 404, "no_channel")
    assert body["field"] == "channel" and f"0..{FILTERS - 1}" in body["detail"]
    assert assert_error(client.get("/api/filters/-1/0"), 422)["field"] == "layer"
    assert assert_error(client.get(f"/api/filters/{CONV}/x"), 422)["field"] == "channel"
    assert assert_error(client.get(f"/api/filters/{CONV}/10000000"), 422)["field"] == "channel"


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layer=st.integers(-3, 12), channel=st.integers(-3, 12))
def test_any_numbers_get_patches_or_a_4xx_and_change_nothing(client, layer, channel):
    if not hasattr(client, "patches_ready"):
        computed(client)
        client.patches_ready = fingerprint(client)
    response = client.get(f"/api/filters/{layer}/{channel}")
    if layer == CONV and 0 <= channel < FILTERS:
        assert response.status_code == 200, response.text
        assert len(response.json()["patches"]) == TOP
    else:
        body = assert_error(response, response.status_code)
        assert 400 <= response.status_code < 500
        # the numbers' own bounds first (layer, then channel), then the net's
        named = ("layer" if layer < 0 else "channel" if channel < 0 else
                 "layer" if layer != CONV else "channel")
        assert body["field"] == named
    assert fingerprint(client) == client.patches_ready


def test_a_new_test_evaluation_finds_them_again_on_newer_weights(client):
    first = computed(client)
    steps(client, TEST_EVERY)
    newer = computed(client, step=first["step"] + TEST_EVERY)
    assert newer["test_step"] == first["step"] + TEST_EVERY


def test_a_new_net_or_a_reset_drops_them(tmp_path):
    with ready(tmp_path) as client:
        steps(client, TEST_EVERY)
        computed(client)
        wider = [dict(layer, filters=6) if layer["type"] == "conv" else layer
                 for layer in TINY_SPEC]
        changed = client.put("/api/net", json={"spec": wider}, headers=presenter())
        assert changed.status_code == 200, changed.text
        body = assert_error(client.get(f"/api/filters/{CONV}/5"), 409, "patches_not_ready")
        assert "after the next test evaluation" in body["detail"]
        steps(client, TEST_EVERY)
        assert computed(client, CONV, 5)["channels"] == 6
        reset = client.post("/api/control", json={"action": "reset"}, headers=presenter())
        assert reset.status_code == 200, reset.text
        assert_error(client.get(f"/api/filters/{CONV}/5"), 409, "patches_not_ready")


def test_a_server_told_to_look_at_no_images_says_so(tmp_path):
    with ready(tmp_path, patch_images=0) as client:
        steps(client, TEST_EVERY)
        body = assert_error(client.get(f"/api/filters/{CONV}/0"), 404, "patches_off")
        assert body["field"] == "layer"
