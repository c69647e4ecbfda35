"""ONNX export: onnxruntime runs the exported model on real CIFAR-10 test images and gives what
our forward pass gives, for every trainable preset and for nets holding every layer type."""

import json
import sys

import numpy as np
import pytest

from engine.data import Normalization, preprocess
from engine.net import Net
from engine.formats.onnx_export import (INSTALL_HINT, OPSET, OnnxExportError, OnnxMissingError,
                                        export_onnx)
from engine.presets import TRAINABLE, load_preset
from engine.formats.pretrained import available_pretrained, load_pretrained
from engine.spec.net_spec import parse_spec
from tests.engine.cifar_sample import cifar_test_images

onnx = pytest.importorskip("onnx", reason="the export extra (onnx) is not installed")
ort = pytest.importorskip("onnxruntime", reason="the export extra (onnxruntime) is not "
                                                "installed")

TOLERANCE = 1e-5
# Our wide 3x3 convs run as Winograd F(4x4, 3x3), whose float32 rounding is about 1e-5 of the
# outputs' scale (engine/kernels/winograd.py); onnxruntime sums them directly.
WINOGRAD_TOLERANCE = 5e-5
DATA_NORM = {"mean": [125.3, 122.9, 113.9], "std": [63.0, 62.1, 66.7]}
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]


def pictures(n=100):
    images, _ = cifar_test_images()
    return images[::len(images) // n][:n]


def run_onnx(data: bytes, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {"pixels": images.transpose(0, 3, 1, 2).astype(np.float32)})[0]


def ours(net, norm, images) -> np.ndarray:
    x = preprocess(images, Normalization.from_dict(norm))
    return net.predict(x).reshape(len(images), -1)


def assert_same(net, norm, images, classes=CLASSES):
    data = export_onnx(net, norm, classes)
    got, expected = run_onnx(data, images), ours(net, norm, images)
    assert got.shape == expected.shape
    winograd = any(layer.type == "conv" and layer.uses_winograd(len(images))
                   for layer in net.layers)
    tolerance = WINOGRAD_TOLERANCE if winograd else TOLERANCE
    assert np.abs(got - expected).max() <= tolerance, np.abs(got - expected).max()
    return onnx.load_from_string(data), got


def speak_up(net, gain=30.0):
    """Fresh nets score every class about the same; a louder classifier makes a wrong scale
    anywhere show in the probabilities."""
    net.layers[-2].params["w"] *= gain
    return net


@pytest.mark.parametrize("preset", TRAINABLE)
def test_every_trainable_preset_runs_in_onnxruntime_as_here(preset):
    images = pictures()
    spec = load_preset(preset)
    # cifar_speedrun's head scales the scores by 1/9 ("scale"): as loud as the others
    quieter = np.prod([d["factor"] for d in spec.layers if d["type"] == "scale"])
    net = speak_up(Net(spec, rng=np.random.default_rng(5)), 30.0 / quieter)
    model, probs = assert_same(net, DATA_NORM, images)
    assert np.unique(probs.argmax(1)).size > 1 and probs.max(1).mean() > 0.3
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17 == OPSET
    assert [n.op_type for n in model.graph.node[:2]] == ["Sub", "Div"]
    assert model.graph.node[0].input[0] == model.graph.input[0].name == "pixels"
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["classes"]) == CLASSES
    assert json.loads(props["preprocess"]) == DATA_NORM
    assert model.graph.output[0].name == "probabilities"


@pytest.mark.parametrize("name", ["convnetjs", "cifar_resnet", "speedrun"])
def test_the_shipped_nets_classify_in_onnxruntime_as_here(name):
    if name not in available_pretrained():
        pytest.skip(f"engine/formats/pretrained_nets lacks {name}")
    snapshot = load_pretrained(name)
    images, labels = cifar_test_images()
    _, probs = assert_same(snapshot.build_net(), snapshot.preprocess, images[::2],
                           snapshot.classes)
    assert (probs.argmax(1) == labels[::2]).mean() > 0.6


# Every layer type, with windows that are not square, strides and paddings that floor, an
# even and an odd group count: input 14x12.
EVERY_LAYER = [
    {"type": "input", "out_sx": 14, "out_sy": 12, "out_depth": 3},
    {"type": "conv", "sx": 3, "sy": 2, "filters": 8, "stride_x": 2, "stride_y": 1,
     "pad_x": 1, "pad_y": 0, "rounding": "floor"},
    {"type": "batchnorm"},
    {"type": "leaky_relu", "alpha": 0.1},
    {"type": "lrn", "k": 1.5, "n": 5, "alpha": 0.3, "beta": 0.75},
    {"type": "maxout", "group_size": 2},
    {"type": "pool", "sx": 3, "sy": 2, "stride": 2, "pad": 1, "mode": "avg",
     "rounding": "floor"},
    {"type": "residual", "projection": True, "layers": [
        {"type": "conv", "sx": 3, "filters": 6, "pad": 1, "bias": False},
        {"type": "batchnorm"}, {"type": "relu"},
        {"type": "conv", "sx": 3, "filters": 6, "pad": 1}]},
    {"type": "tanh"},
    {"type": "gelu"},
    {"type": "residual", "layers": [{"type": "conv", "sx": 1, "filters": 6},
                                    {"type": "sigmoid"}]},
    {"type": "concat", "branches": [
        [{"type": "conv", "sx": 1, "filters": 3}, {"type": "sigmoid"}],
        [{"type": "pool", "sx": 3, "stride": 1, "pad": 1}],
        [{"type": "conv", "sx": 3, "filters": 2, "pad": 1}, {"type": "lrn", "k": 2.0,
                                                              "n": 3, "alpha": 0.1,
                                                              "beta": 0.5}]]},
    {"type": "dropout", "drop_prob": 0.3},
    {"type": "pool", "sx": 2, "stride": 2, "rounding": "floor"},
    {"type": "conv", "sx": 1, "filters": 9, "bias": False},
    {"type": "maxout", "group_size": 3},
    {"type": "global_avg_pool"},
    {"type": "fc", "num_neurons": 7, "activation": "relu", "drop_prob": 0.5},
    {"type": "softmax", "num_classes": 4},
]
HEADS = {"softmax": {"type": "softmax", "num_classes": 4},
         "svm": {"type": "svm", "num_classes": 4},
         "regression": {"type": "regression", "num_neurons": 3}}


def every_layer_net(head: str, seed: int = 7) -> Net:
    spec = parse_spec(EVERY_LAYER[:-1] + [HEADS[head]])
    net = Net(spec, rng=np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    for name, arr in net.named_buffers():        # batch norm statistics far from 0 and 1
        arr[...] = rng.uniform(0.5, 2.0, arr.shape) if "var" in name else rng.normal(
            0, 0.5, arr.shape)
    for name, arr, _ in net.named_params():
        if name.endswith(("gamma", "beta")) or name.endswith(".b"):
            arr[...] = rng.normal(0.3, 0.5, arr.shape)
    return speak_up(net, 10.0)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_a_net_with_every_layer_type_runs_in_onnxruntime_as_here(head):
    net = every_layer_net(head)
    types = {layer.type for layer in net.layers}
    for layer in net.layers:
        for _, child in getattr(layer, "walk", lambda: [])():
            types.add(child.type)
    assert types >= {"input", "conv", "batchnorm", "leaky_relu", "lrn", "maxout", "pool",
                     "residual", "tanh", "gelu", "sigmoid", "concat", "dropout",
                     "global_avg_pool", "fc", "relu", head}
    images = np.stack([np.asarray(_resize(img, 14, 12)) for img in pictures()])
    model, out = assert_same(net, DATA_NORM, images, [f"c{k}" for k in range(
        net.spec.num_outputs)])
    assert out.std(axis=0).mean() > 1e-3                   # the outputs depend on the image
    assert "Erf" in {n.op_type for n in model.graph.node}    # gelu, spelled out for opset 17
    assert model.graph.output[0].name == {"softmax": "probabilities", "svm": "scores",
                                          "regression": "values"}[head]


def _resize(image, width, height):
    from PIL import Image
    return Image.fromarray(image).resize((width, height), Image.BILINEAR)


def test_a_layer_with_no_translation_is_named():
    net = Net(load_preset("convnetjs"))
    net.layers[4].type = "quadtransform"      # a type this exporter has never heard of
    with pytest.raises(OnnxExportError, match=r"layer 4 \(quadtransform\): there is no ONNX "
                                              "translation") as info:
        export_onnx(net, DATA_NORM, CLASSES)
    assert info.value.layer == "4"


def test_without_the_onnx_package_export_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)         # import onnx raises ImportError
    with pytest.raises(OnnxMissingError, match="pip install 'convnet-demo\\[export\\]'"):
        export_onnx(Net(load_preset("convnetjs")), DATA_NORM, CLASSES)
    assert "onnx" in INSTALL_HINT
