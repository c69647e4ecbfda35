"""Downloads for other tools, checked inside those tools: the "Download ConvNetJS JSON" file
run by ConvNetJS itself (node) on 200 CIFAR-10 test images, the same file uploaded back, the
ONNX download run by onnxruntime; and /api/state saying, before any download, whether
ConvNetJS computes exactly what the net computes (and how often it agrees when not)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from engine.data import Normalization, preprocess
from engine.data.dataset import Dataset, SourceInfo, Split
from engine.data.normalize import CONVNETJS_INPUT
from engine.data.sources import CIFAR10_CLASSES
from engine.net import Net
from engine.presets import load_preset
from engine.formats.snapshot import dumps, loads, snapshot_to_json
from tests.engine.cifar_sample import cifar_test_images
from tests.naive import convnetjs_node
from tests.server.conftest import (TestClient, assert_error, fingerprint, presenter,
                                   tiny_settings, wait_ready)
from server.app import create_app

DATA_NORM = {"mean": [125.3, 122.9, 113.9], "std": [63.0, 62.1, 66.7]}


def cifar_sample_dataset() -> Dataset:
    """200 real CIFAR-10 test images (20 per class), as both splits: the server's gallery,
    test runs and agreement measurements see real pictures."""
    images, labels = cifar_test_images()
    norm = Normalization(tuple(DATA_NORM["mean"]), tuple(DATA_NORM["std"]))
    info = SourceInfo("folder", "tests/engine/cifar_sample", "sha256:sample", None, False)

    def split(name):
        return Split(name, images, labels, None, CIFAR10_CLASSES, norm)

    return Dataset(source=info, class_names=CIFAR10_CLASSES, image_size=(32, 32),
                   normalization=norm, train=split("train"),
                   validation=Split("validation", images, labels, np.arange(0, 200, 10),
                                    CIFAR10_CLASSES, norm),
                   test=split("test"))


@pytest.fixture(scope="module")
def cifar_client(tmp_path_factory):
    settings = tiny_settings(tmp_path_factory.mktemp("interop"), net="convnetjs",
                             dataset=cifar_sample_dataset(), gallery_per_class=1)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        yield client


def our_predictions(snapshot_bytes: bytes, images: np.ndarray) -> np.ndarray:
    snapshot = loads(snapshot_bytes)
    x = preprocess(images, Normalization.from_dict(snapshot.preprocess))
    return snapshot.build_net().predict(x).reshape(len(images), -1)


def download(client, fmt: str | None = None):
    response = client.get("/api/snapshot", params={"format": fmt} if fmt else {},
                          headers=presenter())
    assert response.status_code == 200, response.text
    return response


def upload(client, data: bytes) -> None:
    response = client.put("/api/snapshot", files={"file": ("net.json", data)},
                          headers=presenter())
    assert response.status_code == 200, response.text


def classify(client, image: np.ndarray) -> dict:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    response = client.post("/api/classify", files={"file": ("x.png", buffer.getvalue(),
                                                            "image/png")})
    assert response.status_code == 200, response.text
    return response.json()["probs"]


def test_the_shipped_convnetjs_net_downloads_exactly_and_uploads_back_unchanged(cifar_client):
    client = cifar_client
    assert client.post("/api/pretrained", json={"name": "convnetjs"},
                       headers=presenter()).status_code == 200
    exports = client.get("/api/state").json()["exports"]["convnetjs"]
    assert exports["possible"] and exports["exact"] and exports["agreement"] is None
    images, labels = cifar_test_images()
    ours_before = our_predictions(download(client).content, images)
    classified_before = [classify(client, images[i]) for i in (0, 55, 130)]
    response = download(client, "convnetjs")
    assert response.headers["x-convnetjs-exact"] == "true"
    theirs = convnetjs_node.predict(json.loads(response.content), images)
    assert np.array_equal(theirs.argmax(1), ours_before.argmax(1))        # 200 of 200
    assert np.abs(theirs - ours_before).max() <= 1e-5
    assert (theirs.argmax(1) == labels).mean() > 0.6
    upload(client, response.content)
    ours_after = our_predictions(download(client).content, images)
    np.testing.assert_allclose(ours_after, ours_before, atol=1e-6)
    assert np.array_equal(ours_after.argmax(1), ours_before.argmax(1))
    for before, i in zip(classified_before, (0, 55, 130)):
        after = classify(client, images[i])
        assert after.keys() == before.keys()
        assert max(abs(after[c] - before[c]) for c in before) <= 1e-5


def test_a_net_convnetjs_cannot_reproduce_is_announced_with_its_agreement(cifar_client):
    client = cifar_client
    net = Net(load_preset("convnetjs"), rng=np.random.default_rng(2))
    net.layers[-2].params["w"] *= 30           # a decisive classifier: agreement can fail
    upload(client, dumps(snapshot_to_json(net, preprocess=DATA_NORM,
                                          classes=list(CIFAR10_CLASSES))))
    state = client.get("/api/state").json()
    exports = state["exports"]["convnetjs"]
    assert exports["possible"] and not exports["exact"] and "zero-pads" in exports["detail"]
    agreement = exports["agreement"]
    assert agreement["images"] == 200 and agreement["step"] == state["metrics"]["step"]
    response = download(client, "convnetjs")
    assert response.headers["x-convnetjs-exact"] == "false"
    images, _ = cifar_test_images()
    theirs = convnetjs_node.predict(json.loads(response.content), images)
    ours = our_predictions(download(client).content, images)
    assert agreement["same_class"] == int((theirs.argmax(1) == ours.argmax(1)).sum()) < 200
    assert agreement["max_abs_diff"] == pytest.approx(np.abs(theirs - ours).max(), rel=1e-3)


def test_a_fresh_convnetjs_net_trains_on_convnetjs_input_and_exports_exactly(cifar_client):
    client = cifar_client
    assert client.put("/api/net", json={"preset": "convnetjs"},
                      headers=presenter()).status_code == 200
    for _ in range(2):
        client.post("/api/control", json={"action": "step"}, headers=presenter())
    snapshot = loads(download(client).content)
    assert Normalization.from_dict(snapshot.preprocess) == CONVNETJS_INPUT
    assert client.get("/api/state").json()["exports"]["convnetjs"]["exact"]


def test_the_onnx_download_runs_in_onnxruntime_as_the_server_predicts(cifar_client):
    ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    client = cifar_client
    assert client.get("/api/state").json()["exports"]["onnx"]["available"]
    response = download(client, "onnx")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].endswith('.onnx"')
    images, _ = cifar_test_images()
    session = ort.InferenceSession(response.content, providers=["CPUExecutionProvider"])
    got = session.run(None, {"pixels": images.transpose(0, 3, 1, 2).astype(np.float32)})[0]
    assert np.abs(got - our_predictions(download(client).content, images)).max() <= 1e-5


def test_without_onnx_the_download_is_501_and_changes_nothing(cifar_client, monkeypatch):
    from server import exports
    monkeypatch.setattr(exports, "onnx_available", lambda: False)
    before = fingerprint(cifar_client)
    body = assert_error(cifar_client.get("/api/snapshot", params={"format": "onnx"},
                                         headers=presenter()), 501, "onnx_missing")
    assert "pip install" in body["detail"]
    assert fingerprint(cifar_client) == before


def test_a_net_convnetjs_lacks_says_so_and_its_download_is_refused(cifar_client):
    client = cifar_client
    assert client.put("/api/net", json={"preset": "cifar_resnet"},
                      headers=presenter()).status_code == 200
    exports = client.get("/api/state").json()["exports"]["convnetjs"]
    assert not exports["possible"] and "ConvNetJS needs" in exports["detail"]
    before = fingerprint(client)
    assert_error(client.get("/api/snapshot", params={"format": "convnetjs"},
                            headers=presenter()), 422, "not_exportable")
    assert fingerprint(client) == before


# A ConvNetJS demo-style net with dropout, as ConvNetJS writes it (32x32, 10 classes).
DROPOUT_NET = [
    {"type": "input", "out_sx": 32, "out_sy": 32, "out_depth": 3},
    {"type": "conv", "sx": 5, "filters": 4, "stride": 2, "pad": 2, "activation": "relu"},
    {"type": "pool", "sx": 2, "stride": 2},
    {"type": "dropout", "drop_prob": 0.2},
    {"type": "fc", "num_neurons": 8, "activation": "relu", "drop_prob": 0.3},
    {"type": "softmax", "num_classes": 10},
]


def test_an_uploaded_convnetjs_file_predicts_as_convnetjs_with_dropout_p(cifar_client):
    from tests.naive.convnetjs import make_net_json
    client = cifar_client
    doc = make_net_json(DROPOUT_NET, np.random.default_rng(4))
    for layer in doc["layers"]:                  # decisive outputs: scales show in argmax
        if layer["layer_type"] == "fc" and layer["out_depth"] == 10:
            for f in layer["filters"]:
                f["w"] = [30.0 * float(v) for v in (f["w"].values() if isinstance(f["w"], dict)
                                                   else f["w"])]
    data = json.dumps(doc).encode()
    images, _ = cifar_test_images()
    theirs = convnetjs_node.predict(json.loads(data), images)
    response = client.put("/api/snapshot", params={"convnetjs_dropout": "p"},
                          files={"file": ("net.json", data)}, headers=presenter())
    assert response.status_code == 200, response.text
    assert np.abs(our_predictions(download(client).content, images) - theirs).max() <= 1e-5
    upload(client, data)                          # the default: what its training meant
    assert np.abs(our_predictions(download(client).content, images) - theirs).max() > 1e-3
    before = fingerprint(client)
    body = assert_error(client.put("/api/snapshot", params={"convnetjs_dropout": "half"},
                                   files={"file": ("net.json", data)}, headers=presenter()),
                        422)
    assert "convnetjs_dropout" in json.dumps(body)
    assert fingerprint(client) == before


def test_a_download_folds_the_nets_own_normalisation_for_convnetjs(cifar_client):
    """A net trained on the data set's mean and std, first conv unpadded: the fold into its
    first layer is exact, so ConvNetJS predicts what the server predicts (the download once
    left the normalisation out, and ConvNetJS then agreed on 9 of 200 images)."""
    client = cifar_client
    spec = [dict(layer) for layer in DROPOUT_NET if layer["type"] != "dropout"]
    spec[1] = {**spec[1], "sx": 6, "pad": 0}           # (32 - 6)/2 + 1 = 14
    from engine.spec.net_spec import parse_spec
    net = Net(parse_spec(spec), rng=np.random.default_rng(6))
    net.layers[-2].params["w"] *= 30
    upload(client, dumps(snapshot_to_json(net, preprocess=DATA_NORM,
                                          classes=list(CIFAR10_CLASSES))))
    assert client.get("/api/state").json()["exports"]["convnetjs"]["exact"]
    response = download(client, "convnetjs")
    assert response.headers["x-convnetjs-exact"] == "true"
    images, _ = cifar_test_images()
    theirs = convnetjs_node.predict(json.loads(response.content), images)
    ours = our_predictions(download(client).content, images)
    assert np.array_equal(theirs.argmax(1), ours.argmax(1))
    assert np.abs(theirs - ours).max() <= 1e-5
