"""POST /api/classify: top-k, pictures and saliency for good images (tiny ones too); hostile
uploads are refused with the right 4xx and change nothing; a diverged net gets 409."""

from __future__ import annotations

import asyncio
import base64
import io

import numpy as np
import pytest
from PIL import Image

from tests.server import images
from tests.server.conftest import assert_error, fingerprint, wait_ready

HOSTILE = [
    (b"this is not an image at all", 415, "unsupported_format"),
    (images.tiff_in_svg_clothing(), 415, "unsupported_format"),
    (images.png_bomb(50000, 50000), 422, "too_many_pixels"),
    (images.png_bomb(5000, 5000), 422, "too_many_pixels"),      # over 4096*4096, under 2x
    (images.truncated_jpeg(), 422, "undecodable"),
    (b"", 422, "empty"),
]


def _upload(client, data: bytes, name="x.png", kind="image/png", **form):
    return client.post("/api/classify", files={"file": (name, data, kind)}, data=form)


def _png_size(b64: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(base64.b64decode(b64)), formats=["PNG"]).size


def test_a_good_image_is_classified(client):
    response = _upload(client, images.png())
    assert response.status_code == 200, response.text
    body = response.json()
    assert [t["label"] for t in body["top"]] and len(body["top"]) == 2   # 2 classes here
    assert abs(sum(body["probs"].values()) - 1) < 1e-5
    assert body["image"] == {"width": 40, "height": 30, "format": "PNG"}
    assert _png_size(body["input"]) == (8, 8)
    assert _png_size(body["saliency"]) == (8, 8)
    layers = body["layers"]
    assert [layer["type"] for layer in layers] == ["input", "conv", "relu", "pool", "fc",
                                                   "softmax"]
    assert layers[1]["filters"]["color"] is True and layers[1]["filter_grads"] is not None
    assert layers[-1]["values"]["grad"] is None and layers[-2]["values"]["grad"] is not None
    assert layers[-1]["values"]["labels"] == list(body["probs"])     # the class names


def test_jpeg_raw_body_and_top(client):
    response = client.post("/api/classify?top=1", content=images.jpeg(),
                           headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 200, response.text
    assert len(response.json()["top"]) == 1
    assert response.json()["image"]["format"] == "JPEG"


def test_an_animated_gif_is_classified_by_its_first_frame(client):
    response = _upload(client, images.animated_gif(), "a.gif", "image/gif")
    assert response.status_code == 200, response.text
    assert response.json()["image"]["format"] == "GIF"


@pytest.mark.parametrize("data,status,code", HOSTILE)
def test_hostile_uploads_are_refused(client, data, status, code):
    before = fingerprint(client)
    assert_error(_upload(client, data), status, code)
    assert fingerprint(client) == before


def test_bad_forms_are_refused(client):
    before = fingerprint(client)
    assert_error(client.post("/api/classify", files={"picture": ("x.png", images.png())}),
                 400, "missing_field")
    assert_error(client.post("/api/classify", data={"file": "just text"}), 415)
    assert_error(client.post("/api/classify", content=b"--x\r\nbroken",
                             headers={"Content-Type": "multipart/form-data; boundary=x"}), 400)
    assert_error(client.post("/api/classify", content=images.png(),
                             headers={"Content-Type": "text/plain"}), 415)
    for top in ("0", "two", "-1", "1e9"):
        assert_error(_upload(client, images.png(), top=top), 422, "invalid_top")
    assert len(_upload(client, images.png(), top="3").json()["top"]) == 2  # all of 2 classes
    assert fingerprint(client) == before


def test_an_oversized_upload_is_413(fresh_client):
    with fresh_client(max_upload_bytes=1000) as client:
        wait_ready(client)
        before = fingerprint(client)
        assert_error(_upload(client, images.png(400, 400, (1, 2, 3)) + b"\0" * 2000), 413,
                     "too_large")
        assert fingerprint(client) == before


def test_too_many_images_in_the_worker_get_503(client):
    runtime = client.app.state.runtime
    runtime.classify_in_flight = runtime.settings.max_classify_in_flight
    try:
        response = _upload(client, images.png())
        assert_error(response, 503, "busy")
        assert "classified" in response.json()["detail"]
        assert response.headers["retry-after"] == "1"
    finally:
        runtime.classify_in_flight = 0
    assert len(runtime.uploads) == 0 and runtime.classify_in_flight == 0   # none held
    assert _upload(client, images.png()).status_code == 200


def _fill_places(runtime, client: str, count: int, size: int, age_s: float) -> list:
    """`count` arriving bodies of `size` bytes so far, `age_s` old, none of them awaited (a
    stall the places may not cut: nobody is reading it)."""
    fills = []
    for _ in range(count):
        progress = asyncio.run(runtime.uploads.take(client, True, 10**6, 10**6, 1.0))
        progress.started -= age_s
        progress.size = size
        fills.append(progress)
    return fills


def test_too_many_bodies_arriving_get_503_and_one_address_429(client):
    runtime = client.app.state.runtime
    settings = runtime.settings
    fills = _fill_places(runtime, "10.0.0.7", settings.max_uploads_arriving, 0, 5.0)
    try:
        response = _upload(client, images.png())
        assert_error(response, 503, "busy")
        assert "uploaded" in response.json()["detail"]
        assert response.headers["connection"] == "close"     # its body stays unread
    finally:
        for progress in fills:
            runtime.uploads.leave(progress)
    fills = _fill_places(runtime, "testclient", settings.max_uploads_per_client, 0, 0.0)
    try:
        response = _upload(client, images.png())              # TestClient's address
        assert_error(response, 429, "too_many_uploads")
        assert response.headers["retry-after"] == "1"
        assert response.headers["connection"] == "close"
        runtime.uploads.leave(fills.pop())
        assert _upload(client, images.png()).status_code == 200
    finally:
        for progress in fills:
            runtime.uploads.leave(progress)
    assert len(runtime.uploads) == 0 and runtime.uploads.per_client == {}   # nothing kept
    assert _upload(client, images.png()).status_code == 200


@pytest.mark.parametrize("width,height", [(1, 1), (2, 2), (1, 3), (4, 4)])
def test_a_tiny_image_is_scaled_up_and_classified(client, width, height):
    response = _upload(client, images.png(width, height, (250, 250, 250)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image"] == {"width": width, "height": height, "format": "PNG"}
    assert _png_size(body["input"]) == (8, 8)
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["input"]))))
    assert pixels.min() >= 245                  # the one colour, filling the net's input
    large = _upload(client, images.png(64, 64, (250, 250, 250))).json()
    assert body["probs"] == pytest.approx(large["probs"], abs=1e-3)   # as a big one would


@pytest.mark.parametrize("poison", [np.nan, np.inf])
def test_a_net_without_finite_probabilities_gets_409(fresh_client, poison):
    with fresh_client() as client:
        wait_ready(client)
        net = client.app.state.runtime.worker.trainer.net    # paused: the worker is idle
        for _, weights, _ in net.named_params():
            weights[...] = poison
        response = _upload(client, images.png())
        body = assert_error(response, 409, "not_finite")
        assert body["detail"] == ("the net gives no finite probabilities (training diverged); "
                                  "reset or load a snapshot")
