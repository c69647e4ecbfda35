"""GET /api/filters/{layer}/{channel}: the nine test patches that excite a conv channel most,
found after each test evaluation; before one, a 409 that says when; bad layer or channel
refused in the one error shape, naming the field; the convs inside a residual block or a
concat have theirs by their summary-table path; a new net or a reset drops them."""

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


def computed(client, layer: int | str = CONV, channel: int = 0, step: int | None = None,
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
    assert assert_error(client.get("/api/filters/-1/0"), 422, "bad_layer")["field"] == "layer"
    for bad in ("1.", "1.layers", "x", "1e3", "1.layers.0.x", "%20", "1" * 300):
        body = assert_error(client.get(f"/api/filters/{bad}/0"), 422)
        assert body["field"] == "layer", bad
    body = assert_error(client.get("/api/filters/1.layers.0/0"), 404, "no_layer")
    assert "no layer 1.layers.0" in body["detail"]
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
        # the channel's own bounds first (the route checks a layer's text itself), then the
        # layer's, then the net's
        named = ("channel" if channel < 0 else "layer" if layer != CONV else "channel")
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


BLOCK_SPEC = [
    {"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 3},
    {"type": "conv", "sx": 3, "filters": 4, "pad": 1},
    {"type": "pool", "sx": 2, "stride": 2},
    {"type": "residual", "layers": [{"type": "conv", "sx": 3, "filters": 4, "pad": 1},
                                    {"type": "relu"},
                                    {"type": "conv", "sx": 3, "filters": 4, "pad": 1}],
     "shortcut": []},
    {"type": "concat", "branches": [[{"type": "conv", "sx": 1, "filters": 2}],
                                    [{"type": "pool", "sx": 3, "stride": 1, "pad": 1}]]},
    {"type": "softmax", "num_classes": 2},
]


def test_the_convs_inside_blocks_have_their_patches_by_path(tmp_path):
    with ready(tmp_path) as client:
        changed = client.put("/api/net", json={"spec": BLOCK_SPEC}, headers=presenter())
        assert changed.status_code == 200, changed.text
        steps(client, TEST_EVERY)
        answer = computed(client, "3.layers.2", 3)
        assert (answer["layer"], answer["channel"], answer["channels"]) == ("3.layers.2", 3, 4)
        # conv 3x3 (pad 1) on 8x8, pool 2x2 (jump 2), then two 3x3 (pad 1) on 4x4: each
        # output sees 3 + 1 + 2*2 + 2*2 = 12 pixels a side, from 5 before twice its position
        assert answer["field"] == [12, 12] and len(answer["patches"]) == TOP
        for patch in answer["patches"]:
            y, x = patch["position"]
            top, left = max(0, 2 * y - 5), max(0, 2 * x - 5)
            bottom, right = min(8, 2 * y - 5 + 12), min(8, 2 * x - 5 + 12)
            assert patch["box"] == [top, left, bottom - top, right - left]
        assert computed(client, "4.branches.0.0", 1)["field"] == [12, 12]    # 1x1 after it
        assert computed(client, "1", 0)["layer"] == 1
        body = assert_error(client.get("/api/filters/3/0"), 422, "not_conv")
        assert "residual" in body["detail"] and "inner layers" in body["detail"]
        assert "relu" in assert_error(client.get("/api/filters/3.layers.1/0"), 422,
                                      "not_conv")["detail"]
        assert "pool" in assert_error(client.get("/api/filters/4.branches.1.0/0"), 422,
                                      "not_conv")["detail"]
        for missing in ("3.layers.3", "3.shortcut.0", "4.branches.2.0", "7.layers.0"):
            body = assert_error(client.get(f"/api/filters/{missing}/0"), 404, "no_layer")
            assert body["field"] == "layer" and missing in body["detail"]
        body = assert_error(client.get("/api/filters/3.layers.0/4"), 404, "no_channel")
        assert body["field"] == "channel" and "0..3" in body["detail"]


def test_a_server_told_to_look_at_no_images_says_so(tmp_path):
    with ready(tmp_path, patch_images=0) as client:
        steps(client, TEST_EVERY)
        body = assert_error(client.get(f"/api/filters/{CONV}/0"), 404, "patches_off")
        assert body["field"] == "layer"
