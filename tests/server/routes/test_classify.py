"""POST /api/classify: top-k, pictures and saliency for good images; hostile uploads are
refused with the right 4xx and change nothing."""

from __future__ import annotations

import base64
import io

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
    (images.png(4, 4), 422, "undecodable"),                     # too small to classify
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
    assert layers[-1]["grad"] is None and layers[-2]["grad"] is not None


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


@pytest.mark.parametrize("counter,limit,doing", [
    ("uploads_arriving", "max_uploads_arriving", "uploaded"),       # bodies still streaming
    ("classify_in_flight", "max_classify_in_flight", "classified"),  # decoding or queued
])
def test_too_many_at_once_get_503(client, counter, limit, doing):
    runtime = client.app.state.runtime
    setattr(runtime, counter, getattr(runtime.settings, limit))
    try:
        response = _upload(client, images.png())
        assert_error(response, 503, "busy")
        assert doing in response.json()["detail"]
        assert response.headers["retry-after"] == "1"
    finally:
        setattr(runtime, counter, 0)
    assert runtime.uploads_arriving == 0 and runtime.classify_in_flight == 0   # none held
    assert _upload(client, images.png()).status_code == 200
