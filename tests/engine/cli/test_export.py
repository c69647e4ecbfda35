"""`convnet-demo export`: ONNX, ConvNetJS and our format from a snapshot, a ConvNetJS file or a
shipped net; an inexact ConvNetJS export is refused unless asked for, then measured."""

import json
import sys

import numpy as np
import pytest

from engine.cli.main import main
from engine.formats.convnetjs import import_convnetjs
from engine.data import Normalization, preprocess
from engine.data.cache import CACHE_ENV
from engine.formats.pretrained import load_pretrained, resolve_snapshot
from engine.formats.snapshot import save_snapshot
from tests.builders import learnable_folder, tiny_net
from tests.engine.cifar_sample import cifar_test_images
from tests.naive.convnetjs import forward_batch, make_net_json


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def export(capsys, *argv):
    code = main(["export", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def predict(snapshot, images):
    x = preprocess(images, Normalization.from_dict(snapshot.preprocess))
    return snapshot.build_net().predict(x).reshape(len(images), -1)


def test_onnx_of_a_shipped_net_classifies_as_the_net_does(capsys, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    out_file = tmp_path / "convnetjs.onnx"
    code, out, err = export(capsys, "pretrained:convnetjs", "--format", "onnx", "-o",
                            str(out_file))
    assert code == 0, err
    assert out.startswith(f"wrote {out_file} (") and "ONNX opset 17" in out
    images = cifar_test_images()[0][::4]
    session = ort.InferenceSession(out_file.read_bytes(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"pixels": images.transpose(0, 3, 1, 2).astype(np.float32)})[0]
    expected = predict(load_pretrained("convnetjs"), images)
    assert np.abs(got - expected).max() <= 1e-5


def test_convnetjs_of_the_shipped_convnetjs_net_is_exact(capsys, tmp_path):
    out_file = tmp_path / "net.json"
    code, out, err = export(capsys, "pretrained:convnetjs", "--format", "convnetjs", "-o",
                            str(out_file))
    assert code == 0, err
    assert "exact: ConvNetJS computes what this net computes" in out
    doc = json.loads(out_file.read_text())
    images = cifar_test_images()[0][::50]     # 200 images through the plain ConvNetJS loops
    np.testing.assert_allclose(forward_batch(doc, images),
                               predict(load_pretrained("convnetjs"), images), atol=1e-5)


def test_a_convnetjs_file_becomes_our_snapshot_with_its_dropout_scale(capsys, tmp_path, rng):
    layers = [{"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 3},
              {"type": "conv", "sx": 3, "filters": 4, "stride": 1, "pad": 1,
               "activation": "relu"},
              {"type": "dropout", "drop_prob": 0.2},
              {"type": "fc", "num_neurons": 5},
              {"type": "softmax", "num_classes": 3}]
    theirs = tmp_path / "trained-in-convnetjs.json"
    theirs.write_text(json.dumps(make_net_json(layers, rng)))
    images = rng.integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
    doc = json.loads(theirs.read_text())
    for scale in ("p", "1-p"):
        ours = tmp_path / f"ours-{scale}.json"
        code, _, err = export(capsys, str(theirs), "--format", "ours", "-o", str(ours),
                              "--convnetjs-dropout", scale)
        assert code == 0, err
        np.testing.assert_allclose(predict(resolve_snapshot(str(ours)), images),
                                   forward_batch(doc, images, dropout_scale=scale),
                                   rtol=2e-5, atol=2e-6)


def test_an_inexact_convnetjs_export_needs_approximate_and_is_measured(capsys, tmp_path):
    photos = learnable_folder(tmp_path / "photos")
    net = tiny_net([{"type": "input", "out_sx": 32, "out_sy": 32, "out_depth": 3},
                    {"type": "conv", "sx": 3, "filters": 4, "pad": 1, "activation": "relu"},
                    {"type": "pool", "sx": 4, "stride": 4},
                    {"type": "softmax", "num_classes": 3}], seed=3)
    snapshot_file = tmp_path / "net.json"
    norm = {"mean": [100.0, 110.0, 120.0], "std": [50.0, 60.0, 70.0]}
    save_snapshot(snapshot_file, net, preprocess=norm, classes=["cat", "dog", "frog"])
    out_file = tmp_path / "theirs.json"
    code, _, err = export(capsys, str(snapshot_file), "--format", "convnetjs", "-o",
                          str(out_file))
    assert code == 2 and "zero-pads" in err and "--approximate" in err
    assert not out_file.exists()
    code, out, err = export(capsys, str(snapshot_file), "--format", "convnetjs", "-o",
                            str(out_file), "--approximate", "--data", str(photos))
    assert code == 0, err
    assert "approximate: ConvNetJS gives the same class on " in out and "of 30 test" in out
    assert import_convnetjs(json.loads(out_file.read_text())).classes == ["cat", "dog", "frog"]


@pytest.mark.parametrize("argv, message", [
    (["pretrained:cifar_resnet", "--format", "convnetjs"], "ConvNetJS needs equal x/y stride"),
    (["pretrained:imagenet", "--format", "onnx"], "no pretrained net 'imagenet'"),
])
def test_what_cannot_be_exported_is_an_error_naming_why(capsys, tmp_path, argv, message):
    code, _, err = export(capsys, *argv, "-o", str(tmp_path / "x"))
    assert code == 2 and message in err
    assert not (tmp_path / "x").exists()


def test_onnx_without_the_onnx_package_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    code, _, err = export(capsys, "pretrained:convnetjs", "--format", "onnx", "-o",
                          str(tmp_path / "x.onnx"))
    assert code == 2 and "pip install 'convnet-demo[export]'" in err
