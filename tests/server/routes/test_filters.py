"""GET /api/frame/layer and /api/frame/filter: a frame's every channel and one filter's
per-input-channel slices, from the arrays the worker copied for that frame; bad layer,
index or start refused in the one error shape; each answer made once per frame."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image

from server.app import create_app
from server.auth import route_policies
from server.routes import filters
from server.visuals import FrameDetails
from tests.server.conftest import TestClient, assert_error, presenter, wait_ready
from tests.server.wide import BLOCK, CONV1, CONV2, FC50, INPUT, POOL, SOFTMAX, wide_settings


@pytest.fixture(scope="module")
def client(module_dir):
    app = create_app(wide_settings(module_dir))
    with TestClient(app) as test_client:
        wait_ready(test_client)
        frame_of(test_client)
        yield test_client


def frame_of(client, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = client.get("/api/frame").json()
        if frame.get("layers"):
            return frame
        time.sleep(0.05)
    raise AssertionError("no frame")


def published(client):
    return client.app.state.runtime.worker.published


def pixels(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    raw = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw), formats=["PNG"]))


def test_the_routes_are_public(tmp_path):
    policies = route_policies(create_app(wide_settings(tmp_path)))
    assert policies["GET /api/frame/layer"] == "public"
    assert policies["GET /api/frame/filter"] == "public"


def test_the_frame_links_its_details_where_it_shows_less(client):
    frame = frame_of(client)
    layers = {entry["index"]: entry for entry in frame["layers"]}
    assert layers[CONV1]["act"]["count"] == 32 and layers[CONV1]["act"]["of"] == 40
    frame_id = published(client).frame_details.id     # paused: the frame is the latest
    assert layers[CONV1]["detail_url"] == f"/api/frame/layer?layer={CONV1}&frame={frame_id}"
    assert layers[FC50]["detail_url"] == f"/api/frame/layer?layer={FC50}&frame={frame_id}"
    assert "detail_url" not in layers[CONV2] and "detail_url" not in layers[INPUT]
    assert layers[CONV2]["filters"]["slices_url"] == (
        f"/api/frame/filter?layer={CONV2}&frame={frame_id}")
    assert layers[SOFTMAX]["values"]["labels"] == ["dark", "light"]


def test_every_channel_of_a_layer_a_page_at_a_time(client):
    step = frame_of(client)["step"]
    answer = client.get(f"/api/frame/layer?layer={CONV1}").json()
    assert answer["step"] == step and answer["type"] == "conv" and answer["channels"] == 40
    for key in ("act", "grad", "filters", "filter_grads"):
        assert (answer[key]["count"], answer[key]["of"], answer[key]["start"]) == (40, 40, 0)
    assert pixels("data:image/png;base64," + answer["act"]["grid"]).shape[:2] == (40, 64)
    page = client.get(f"/api/frame/layer?layer={CONV1}&start=36").json()
    assert (page["act"]["count"], page["act"]["start"]) == (4, 36)
    assert page["act"]["max"] == answer["act"]["max"]              # one scale for every page
    bars = client.get(f"/api/frame/layer?layer={FC50}").json()
    assert bars["values"]["count"] == 50 and len(bars["values"]["act"]) == 50


def test_a_filters_slices_are_the_weights_the_frame_was_made_with(client):
    worker = client.app.state.runtime.worker
    details = published(client).frame_details
    answer = client.get(f"/api/frame/filter?layer={CONV2}&index=6").json()
    assert answer["step"] == details.step
    assert (answer["layer"], answer["index"], answer["filters"]) == (CONV2, 6, 7)
    assert answer["in_channels"] == 40 and answer["count"] == 40 and answer["size"] == [1, 3]
    assert [s["channel"] for s in answer["slices"]] == list(range(40))
    w = worker.trainer.net.layers[CONV2].params["w"][6]          # paused: frame == net
    assert answer["min"] == pytest.approx(float(w.min()))
    assert answer["max"] == pytest.approx(float(w.max()))
    expected = np.rint((w - w.min()) * 255.0 / (w.max() - w.min()))
    for s in answer["slices"]:
        assert np.array_equal(pixels(s["image"]), expected[s["channel"]])
    rgb = client.get(f"/api/frame/filter?layer={CONV1}&index=0").json()
    assert [s["name"] for s in rgb["slices"]] == ["R", "G", "B"]
    page = client.get(f"/api/frame/filter?layer={CONV2}&index=0&start=38").json()
    assert [s["channel"] for s in page["slices"]] == [38, 39]


def next_frame(client) -> None:
    old_step = published(client).frame_details.step
    deadline = time.monotonic() + 30
    while published(client).frame_details.step == old_step:
        assert time.monotonic() < deadline, "no frame after a step"
        response = client.post("/api/control", json={"action": "step"}, headers=presenter())
        assert response.status_code == 200, response.text
        time.sleep(0.05)


def test_the_answers_follow_a_new_frame(client):
    before = client.get(f"/api/frame/filter?layer={CONV2}&index=0").json()
    next_frame(client)
    after = client.get(f"/api/frame/filter?layer={CONV2}&index=0").json()
    assert after["step"] > before["step"] and after["frame"] > before["frame"]
    assert after["slices"] != before["slices"]                  # trained: other weights


def test_a_page_gets_the_frame_it_shows_not_a_newer_one(client):
    """A viewer's page gets a frame every 10 s, and frames are made every 3 s: the links in
    the frame it shows must answer for that frame (its image, its weights)."""
    shown = {entry["index"]: entry for entry in frame_of(client)["layers"]}
    slices_url = shown[CONV2]["filters"]["slices_url"]
    detail_url = shown[CONV1]["detail_url"]
    old = client.get(f"{slices_url}&index=0").json()
    old_page = client.get(detail_url).json()
    next_frame(client)
    latest = client.get(f"/api/frame/filter?layer={CONV2}&index=0").json()
    assert latest["step"] > old["step"] and latest["slices"] != old["slices"]
    again = client.get(f"{slices_url}&index=0").json()
    assert again == old                                          # the frame the page shows
    assert client.get(detail_url).json() == old_page
    assert_error(client.get(f"/api/frame/filter?layer={CONV2}&index=0&frame=999999999"),
                 404, "frame_gone")
    assert_error(client.get(f"/api/frame/layer?layer={CONV1}&frame=999999999"), 404,
                 "frame_gone")


@pytest.mark.parametrize("query,status,code", [
    (f"layer={SOFTMAX + 1}", 404, "no_layer"),
    ("layer=999999", 404, "no_layer"),
    ("layer=-1", 422, None),
    ("layer=1.5", 422, None),
    ("layer=abc", 422, None),
    ("layer=" + "1" + "0" * 400, 422, None),
    ("layer=" + "9" * 4301, 422, None),
    ("", 422, None),
    (f"layer={CONV1}&start=40", 422, "invalid_start"),
    (f"layer={CONV1}&start=-3", 422, None),
    (f"layer={CONV1}&frame=0", 422, None),
    (f"layer={CONV1}&frame=abc", 422, None),
    (f"layer={CONV1}&frame={2**53 + 1}", 422, None),
])
def test_bad_layers_are_refused_in_the_one_shape(client, query, status, code):
    before = published(client).frame_details
    assert_error(client.get(f"/api/frame/layer?{query}"), status, code)
    assert published(client).frame_details is before


@pytest.mark.parametrize("query,status,code", [
    (f"layer={POOL}&index=0", 422, "no_filters"),
    (f"layer={FC50}&index=0", 422, "no_filters"),
    (f"layer={BLOCK}&index=0", 422, "no_filters"),
    (f"layer={CONV2}&index=7", 404, "no_filter"),
    (f"layer={CONV2}", 422, None),
    (f"layer={CONV2}&index=x", 422, None),
    (f"layer={CONV2}&index=0&start=40", 422, "invalid_start"),
    ("layer=40&index=0", 404, "no_layer"),
    (f"layer={CONV2}&index=" + "7" * 400, 422, None),
    (f"layer={CONV2}&index=0&frame=-1", 422, None),
    (f"layer={CONV2}&index=0&frame=1e3", 422, None),
])
def test_bad_filters_are_refused_in_the_one_shape(client, query, status, code):
    assert_error(client.get(f"/api/frame/filter?{query}"), status, code)


def test_no_frame_yet_is_a_404(client):
    worker_published = published(client)
    kept = worker_published.frame_details
    worker_published.frame_details = None
    try:
        assert_error(client.get(f"/api/frame/layer?layer={CONV1}"), 404, "no_frame")
        assert_error(client.get(f"/api/frame/filter?layer={CONV1}&index=0"), 404, "no_frame")
    finally:
        worker_published.frame_details = kept


def test_each_answer_is_made_once_per_frame(client, monkeypatch):
    made = []
    real = FrameDetails.filter

    def counted(self, layer, index, start):
        made.append((self.step, layer, index, start))
        return real(self, layer, index, start)

    monkeypatch.setattr(FrameDetails, "filter", counted)
    client.app.state.frame_answers = None
    first = client.get(f"/api/frame/filter?layer={CONV2}&index=3")
    for _ in range(5):
        assert client.get(f"/api/frame/filter?layer={CONV2}&index=3").content == first.content
    assert len(made) == 1
    client.get(f"/api/frame/filter?layer={CONV2}&index=4")
    assert len(made) == 2


def test_the_answers_kept_are_bounded(client, monkeypatch):
    monkeypatch.setattr(filters, "MAX_ANSWERS", 4)
    client.app.state.frame_answers = None
    for start in range(12):
        assert client.get(f"/api/frame/layer?layer={CONV1}&start={start}").status_code == 200
        assert len(client.app.state.frame_answers.done) <= 4
