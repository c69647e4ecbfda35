"""ConvNetJS interop: an imported Net.toJSON() gives ConvNetJS's probabilities (checked against
a plain re-implementation of its forward pass, tests/naive/convnetjs.py), and export->import
is exact."""

import json

import numpy as np
import pytest

from engine.convnetjs import ConvNetJSError, export_convnetjs, import_convnetjs
from engine.data import Normalization, preprocess
from engine.snapshot import SnapshotError, dumps, loads, snapshot_to_json
from tests.builders import BN_LAYERS, tiny_net
from tests.naive.convnetjs import forward_batch, make_net_json

# Non-square input (sx 7, sy 5) so any x/y mix-up shows; pad and stride that ConvNetJS floors.
SMALL_INPUT = {"type": "input", "out_sx": 7, "out_sy": 5, "out_depth": 3}
CONV_RELU_POOL_FC = [
    SMALL_INPUT,
    {"type": "conv", "sx": 3, "filters": 4, "stride": 1, "pad": 1, "activation": "relu"},
    {"type": "pool", "sx": 2, "stride": 2},
    {"type": "fc", "num_neurons": 6, "activation": "relu"},
    {"type": "softmax", "num_classes": 3},
]
EVERY_LAYER = [
    SMALL_INPUT,
    {"type": "conv", "sx": 3, "sy": 2, "filters": 6, "stride": 2, "pad": 2},   # floors
    {"type": "tanh"},
    {"type": "lrn", "k": 1.0, "n": 3, "alpha": 0.5, "beta": 0.75},
    {"type": "maxout", "group_size": 2},
    {"type": "pool", "sx": 3, "stride": 2, "pad": 1},
    {"type": "sigmoid"},
    {"type": "fc", "num_neurons": 8},
    {"type": "relu"},
    {"type": "dropout", "drop_prob": 0.3},
    {"type": "fc", "num_neurons": 4},
    {"type": "softmax", "num_classes": 5},
]


def images(rng, n, h=5, w=7):
    return rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def our_output(snapshot, pictures):
    net = snapshot.build_net()
    x = preprocess(pictures, Normalization.from_dict(snapshot.preprocess))
    return net.predict(x).reshape(len(pictures), -1)


@pytest.mark.parametrize("layer_defs", [CONV_RELU_POOL_FC, EVERY_LAYER],
                         ids=["conv-relu-pool-fc-softmax", "every-layer"])
def test_an_imported_net_gives_convnetjs_probabilities(rng, layer_defs):
    doc = json.loads(json.dumps(make_net_json(layer_defs, rng)))  # through real JSON text
    assert any(isinstance(f["w"], dict) for f in doc["layers"][1]["filters"])
    assert any(isinstance(f["w"], list) for f in doc["layers"][1]["filters"])
    snapshot = import_convnetjs(doc)
    assert snapshot.preprocess == {"mean": [127.5] * 3, "std": [255.0] * 3}
    pictures = images(rng, 4)
    expected = forward_batch(doc, pictures)
    got = our_output(snapshot, pictures)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-6)
    assert snapshot.spec.layers[1]["out_shape"] == (
        doc["layers"][1]["out_depth"], doc["layers"][1]["out_sy"], doc["layers"][1]["out_sx"])


def test_the_imported_snapshot_saves_and_loads_like_our_own(rng):
    doc = make_net_json(CONV_RELU_POOL_FC, rng)
    snapshot = import_convnetjs(doc, classes=["a", "b", "c"])
    assert snapshot.classes == ["a", "b", "c"] and snapshot.meta["imported_from"] == "convnetjs"
    net = snapshot.build_net()
    again = loads(dumps(snapshot_to_json(net, preprocess=snapshot.preprocess,
                                         classes=snapshot.classes)))
    pictures = images(rng, 3)
    assert np.array_equal(our_output(again, pictures), our_output(snapshot, pictures))
    assert import_convnetjs(doc, classes=["too", "few"]).classes == ["0", "1", "2"]


def test_old_files_without_pad_or_decay_multipliers_load_as_convnetjs_reads_them(rng):
    # fromJSON defaults: pad 0, l1_decay_mul 1, l2_decay_mul 1.
    defs = [SMALL_INPUT, {"type": "conv", "sx": 3, "filters": 4, "stride": 1},
            {"type": "relu"}, {"type": "pool", "sx": 2, "stride": 1},
            {"type": "softmax", "num_classes": 3}]
    old = make_net_json(defs, rng)
    for layer in old["layers"]:
        for key in ("pad", "l1_decay_mul", "l2_decay_mul"):
            layer.pop(key, None)
    snapshot = import_convnetjs(old)
    conv = snapshot.spec.layers[1]
    assert (conv["pad_x"], conv["l1_decay_mul"], conv["l2_decay_mul"]) == (0, 1.0, 1.0)
    pictures = images(rng, 2)
    np.testing.assert_allclose(our_output(snapshot, pictures), forward_batch(old, pictures),
                               rtol=2e-5, atol=2e-6)


def test_export_then_import_is_exact_and_convnetjs_computes_the_same(rng):
    net = tiny_net(seed=4)                            # conv-relu-pool-fc-relu-softmax, 32x32
    doc = json.loads(json.dumps(export_convnetjs(net)))
    assert [layer["layer_type"] for layer in doc["layers"]] == [
        "input", "conv", "relu", "pool", "fc", "relu", "fc", "softmax"]
    back = import_convnetjs(doc)
    for name, arr, _ in net.named_params():
        assert np.array_equal(back.params[name], arr)
    pictures = images(rng, 3, 32, 32)
    ours = our_output(back, pictures)
    np.testing.assert_allclose(ours, forward_batch(doc, pictures), rtol=2e-5, atol=2e-6)
    direct = net.predict(preprocess(pictures, Normalization.from_dict(back.preprocess)))
    assert np.array_equal(ours, direct.reshape(3, -1))


def test_dropout_is_exported_so_convnetjs_computes_what_we_do(rng):
    doc = make_net_json(EVERY_LAYER, rng)
    snapshot = import_convnetjs(doc)
    exported = export_convnetjs(snapshot.build_net())
    pictures = images(rng, 3)
    np.testing.assert_allclose(forward_batch(exported, pictures), forward_batch(doc, pictures),
                               rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("first", ["conv", "fc"])
def test_export_folds_our_normalisation_into_the_first_layer(rng, first):
    layers = [SMALL_INPUT, {"type": "conv", "sx": 3, "filters": 4, "activation": "relu"}
              if first == "conv" else {"type": "fc", "num_neurons": 6, "activation": "relu"},
              {"type": "softmax", "num_classes": 3}]
    net = tiny_net(layers, seed=2)
    norm = {"mean": [125.0, 100.0, 90.0], "std": [60.0, 70.0, 50.0]}
    doc = export_convnetjs(net, norm)
    pictures = images(rng, 3)
    ours = net.predict(preprocess(pictures, Normalization.from_dict(norm))).reshape(3, -1)
    np.testing.assert_allclose(forward_batch(doc, pictures), ours, rtol=1e-5, atol=1e-6)


def test_export_refuses_an_inexact_fold_unless_approximate_is_asked_for(rng):
    layers = [SMALL_INPUT, {"type": "conv", "sx": 3, "filters": 4, "pad": 1},
              {"type": "softmax", "num_classes": 3}]
    net = tiny_net(layers, seed=2)
    norm = {"mean": [125.0, 100.0, 90.0], "std": [60.0, 70.0, 50.0]}
    with pytest.raises(ConvNetJSError, match="zero-pads"):
        export_convnetjs(net, norm)
    doc = export_convnetjs(net, norm, approximate=True)     # differs only near the border
    pictures = images(rng, 2)
    np.testing.assert_allclose(forward_batch(doc, pictures).sum(axis=1), 1.0)
    scaled_only = {"mean": [127.5] * 3, "std": [64.0, 32.0, 128.0]}     # no shift: exact
    pictures_out = forward_batch(export_convnetjs(net, scaled_only), pictures)
    ours = net.predict(preprocess(pictures, Normalization.from_dict(scaled_only)))
    np.testing.assert_allclose(pictures_out, ours.reshape(2, -1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer, message", [
    ({"type": "batchnorm"}, "ConvNetJS has no batchnorm layer"),
    ({"type": "pool", "sx": 2, "stride": 2, "mode": "avg"}, "max pools"),
    ({"type": "conv", "sx": 1, "filters": 2, "stride": 1, "bias": False}, "bias"),
    ({"type": "conv", "sx": 4, "filters": 2, "stride_x": 1, "stride_y": 2, "pad": 1},
     "equal x/y stride"),
    ({"type": "leaky_relu"}, "no leaky_relu"),
    ({"type": "dropout", "drop_prob": 0.5}, "dropout"),             # then a tanh
])
def test_layers_convnetjs_lacks_are_refused_on_export(layer, message):
    layers = [BN_LAYERS[0], {"type": "conv", "sx": 3, "filters": 2, "pad": 1}, layer,
              {"type": "tanh"}, {"type": "softmax", "num_classes": 3}]
    with pytest.raises(ConvNetJSError, match=message):
        export_convnetjs(tiny_net(layers))


def _broken(rng, change):
    doc = make_net_json(CONV_RELU_POOL_FC, rng, object_every=1)
    change(doc["layers"])
    return doc


@pytest.mark.parametrize("change, message", [
    (lambda ls: ls[1]["filters"][0]["w"].pop("5"), "missing index 5"),
    (lambda ls: ls[1]["filters"][0]["w"].update({"5": None}), "finite number"),
    (lambda ls: ls[1]["filters"][0].update(w="abc"), "list or an object"),
    (lambda ls: ls[1]["filters"].pop(), "expected 4 filters"),
    (lambda ls: ls[1]["filters"][0].update(sx=2), "27 entries, expected 18"),
    (lambda ls: ls[1]["filters"][0].update(sx=2, sy=2, depth=3, w=[0.0] * 12), "shape"),
    (lambda ls: ls[1]["biases"]["w"].pop("3"), "biases"),
    (lambda ls: ls[1].update(stride=1.5), "'stride' must be an integer"),
    (lambda ls: ls[1]["biases"]["w"].update({"0": 1e300}), "too large for float32"),
    (lambda ls: ls[2].update(layer_type="quadtransform"), "not supported"),
    (lambda ls: ls.__setitem__(2, "relu"), "expected an object"),
    (lambda ls: ls.pop(0), "first layer must be an input"),
], ids=["missing-key", "null", "w-string", "filter-count", "filter-size", "filter-shape",
        "bias-count",
        "float-stride", "overflow", "unknown-type", "not-an-object", "no-input"])
def test_broken_convnetjs_files_are_refused_naming_the_layer(rng, change, message):
    with pytest.raises(ConvNetJSError, match=message) as info:
        import_convnetjs(_broken(rng, change))
    assert isinstance(info.value, SnapshotError)


@pytest.mark.parametrize("doc", [[], {}, {"layers": []}, {"layers": "x"}])
def test_not_a_convnetjs_net(doc):
    with pytest.raises(ConvNetJSError, match="non-empty 'layers' list"):
        import_convnetjs(doc)
