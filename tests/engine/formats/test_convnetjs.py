"""ConvNetJS interop, checked against ConvNetJS itself (the library, run in node: tests/naive/
convnetjs_node.py) and against our plain-loop rewrite of its forward pass (tests/naive/
convnetjs.py): an import predicts what ConvNetJS predicts, an export makes ConvNetJS predict
what we predict, and a round trip keeps our predictions. Predictions are compared, not only
weights: equal weights under another input convention predict something else."""

import json

import numpy as np
import pytest

from engine.formats.convnetjs import (ConvNetJSError, convnetjs_agreement, export_convnetjs,
                                      export_status, import_convnetjs, training_normalization)
from engine.data import Normalization, preprocess
from engine.data.normalize import CONVNETJS_INPUT
from engine.formats.pretrained import load_pretrained
from engine.formats.snapshot import SnapshotError, dumps, loads, snapshot_to_json
from tests.builders import BN_LAYERS, tiny_net, tiny_spec
from tests.engine.cifar_sample import cifar_test_images
from tests.naive import convnetjs_node
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
# Our own nets ConvNetJS can run: dropout (p != 0.5, where ConvNetJS's scale differs from the
# expected one) through relu and max pool, maxout, lrn, svm and regression.
OURS_WITH_DROPOUT = [
    {"type": "input", "out_sx": 32, "out_sy": 32, "out_depth": 3},
    {"type": "conv", "sx": 5, "filters": 8, "stride": 1, "pad": 2, "activation": "relu"},
    {"type": "lrn", "k": 2.0, "n": 3, "alpha": 0.1, "beta": 0.75},
    {"type": "dropout", "drop_prob": 0.2},
    {"type": "pool", "sx": 2, "stride": 2},
    {"type": "conv", "sx": 3, "filters": 6, "stride": 2, "pad": 1, "rounding": "floor"},
    {"type": "maxout", "group_size": 2},
    {"type": "dropout", "drop_prob": 0.4},
    {"type": "fc", "num_neurons": 10},
    {"type": "softmax", "num_classes": 10},
]
HEADS = [{"type": "svm", "num_classes": 10}, {"type": "regression", "num_neurons": 3}]
TOLERANCE = {"rtol": 2e-5, "atol": 2e-6}     # float32 here, float64 in ConvNetJS


def images(rng, n, h=5, w=7):
    return rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def our_output(snapshot, pictures):
    net = snapshot.build_net()
    x = preprocess(pictures, Normalization.from_dict(snapshot.preprocess))
    return net.predict(x).reshape(len(pictures), -1)


def net_output(net, norm, pictures):
    x = preprocess(pictures, Normalization.from_dict(norm))
    return net.predict(x).reshape(len(pictures), -1)


def ours_with(layers, seed=3):
    """A net of `layers` whose classifier speaks up (fresh nets score every class about the
    same, which would hide a wrong scale)."""
    net = tiny_net(layers, seed=seed, classes=layers[-1].get("num_classes", 3))
    net.layers[-2].params["w"] *= 40
    return net


# --- import: ConvNetJS's own files ------------------------------------------------------------
@pytest.mark.parametrize("layer_defs", [CONV_RELU_POOL_FC, EVERY_LAYER],
                         ids=["conv-relu-pool-fc-softmax", "every-layer"])
def test_an_imported_net_predicts_what_convnetjs_predicts(rng, layer_defs):
    doc = json.loads(json.dumps(make_net_json(layer_defs, rng)))  # through real JSON text
    assert any(isinstance(f["w"], dict) for f in doc["layers"][1]["filters"])
    assert any(isinstance(f["w"], list) for f in doc["layers"][1]["filters"])
    pictures = images(rng, 4)
    theirs = convnetjs_node.predict(doc, pictures)
    np.testing.assert_allclose(forward_batch(doc, pictures), theirs, rtol=1e-12, atol=1e-15)
    snapshot = import_convnetjs(doc, dropout_scale="p")
    assert snapshot.preprocess == {"mean": [127.5] * 3, "std": [255.0] * 3}
    np.testing.assert_allclose(our_output(snapshot, pictures), theirs, **TOLERANCE)
    assert snapshot.spec.layers[1]["out_shape"] == (
        doc["layers"][1]["out_depth"], doc["layers"][1]["out_sy"], doc["layers"][1]["out_sx"])


def test_by_default_dropout_predicts_its_expected_value_not_convnetjs_scale(rng):
    # ConvNetJS predicts with x * p; what its training saw is x * (1 - p) on average.
    doc = make_net_json(EVERY_LAYER, rng)
    pictures = images(rng, 4)
    default = import_convnetjs(doc)
    assert default.meta["dropout_scale"] == "1-p"
    np.testing.assert_allclose(our_output(default, pictures),
                               forward_batch(doc, pictures, dropout_scale="1-p"), **TOLERANCE)
    theirs = convnetjs_node.predict(doc, pictures)
    assert np.abs(our_output(default, pictures) - theirs).max() > 1e-3
    with pytest.raises(ConvNetJSError, match="dropout_scale must be"):
        import_convnetjs(doc, dropout_scale="0.5")


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
    np.testing.assert_allclose(our_output(snapshot, pictures),
                               convnetjs_node.predict(old, pictures), **TOLERANCE)


# --- export: ConvNetJS predicts what we predict ---------------------------------------------
@pytest.mark.parametrize("layers", [OURS_WITH_DROPOUT] + [OURS_WITH_DROPOUT[:-1] + [head]
                                                         for head in HEADS],
                         ids=["softmax", "svm", "regression"])
def test_convnetjs_predicts_what_we_predict_from_our_export(rng, layers):
    net = ours_with(layers)
    doc = json.loads(json.dumps(export_convnetjs(net, CONVNETJS_INPUT.to_dict())))
    pictures = images(rng, 6, 32, 32)
    ours = net_output(net, CONVNETJS_INPUT.to_dict(), pictures)
    theirs = convnetjs_node.predict(doc, pictures)
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5)
    if layers[-1]["type"] == "softmax":
        assert ours.max(axis=1).mean() > 0.25 and np.unique(ours.argmax(1)).size > 1


@pytest.mark.parametrize("layers", [OURS_WITH_DROPOUT, [SMALL_INPUT] + [
    {**layer, "rounding": "floor"} if layer["type"] == "pool" else layer
    for layer in CONV_RELU_POOL_FC[1:]]], ids=["dropout", "conv-relu-pool-fc"])
def test_a_round_trip_keeps_our_predictions_and_class_names(rng, layers):
    net = ours_with(layers)
    classes = [f"class {k}" for k in range(net.spec.num_outputs)]
    doc = json.loads(json.dumps(export_convnetjs(net, CONVNETJS_INPUT.to_dict(),
                                                 classes=classes)))
    back = import_convnetjs(doc)              # the document's note: dropout scaled by p
    assert back.classes == classes and back.meta["dropout_scale"] == "p"
    h, w = net.input_shape[1:]
    pictures = images(rng, 6, h, w)
    before = net_output(net, CONVNETJS_INPUT.to_dict(), pictures)
    np.testing.assert_allclose(our_output(back, pictures), before, rtol=1e-6, atol=1e-7)
    assert np.array_equal(our_output(back, pictures).argmax(1), before.argmax(1))


def test_a_dropout_with_p_zero_is_left_out():
    layers = [SMALL_INPUT, {"type": "conv", "sx": 3, "filters": 4, "pad": 1},
              {"type": "dropout", "drop_prob": 0.0}, {"type": "tanh"},
              {"type": "softmax", "num_classes": 3}]
    doc = export_convnetjs(tiny_net(layers))
    assert "dropout" not in [layer["layer_type"] for layer in doc["layers"]]


@pytest.mark.parametrize("first", ["conv", "fc"])
def test_export_folds_our_normalisation_into_the_first_layer(rng, first):
    layers = [SMALL_INPUT, {"type": "conv", "sx": 3, "filters": 4, "activation": "relu"}
              if first == "conv" else {"type": "fc", "num_neurons": 6, "activation": "relu"},
              {"type": "softmax", "num_classes": 3}]
    net = ours_with(layers, seed=2)
    norm = {"mean": [125.0, 100.0, 90.0], "std": [60.0, 70.0, 50.0]}
    assert export_status(net.spec, norm)["exact"]
    doc = export_convnetjs(net, norm)
    pictures = images(rng, 3)
    np.testing.assert_allclose(convnetjs_node.predict(doc, pictures),
                               net_output(net, norm, pictures), rtol=1e-5, atol=1e-6)


def test_an_inexact_fold_is_refused_unless_approximate_and_its_agreement_measured(rng):
    layers = [SMALL_INPUT, {"type": "conv", "sx": 3, "filters": 4, "pad": 1},
              {"type": "softmax", "num_classes": 3}]
    net = ours_with(layers, seed=2)
    norm = {"mean": [125.0, 100.0, 90.0], "std": [60.0, 70.0, 50.0]}
    status = export_status(net.spec, norm)
    assert status["possible"] and not status["exact"] and "zero-pads" in status["detail"]
    with pytest.raises(ConvNetJSError, match="zero-pads"):
        export_convnetjs(net, norm)
    doc = export_convnetjs(net, norm, approximate=True)
    pictures = images(rng, 40)
    theirs = convnetjs_node.predict(doc, pictures)
    ours = net_output(net, norm, pictures)
    measured = convnetjs_agreement(net, norm, pictures)
    assert measured["images"] == 40
    assert measured["same_class"] == int((theirs.argmax(1) == ours.argmax(1)).sum())
    assert measured["max_abs_diff"] == pytest.approx(np.abs(theirs - ours).max(), rel=1e-4)
    assert measured["max_abs_diff"] > 1e-3
    scaled_only = {"mean": [127.5] * 3, "std": [64.0, 32.0, 128.0]}     # no shift: exact
    assert export_status(net.spec, scaled_only)["exact"]
    np.testing.assert_allclose(convnetjs_node.predict(export_convnetjs(net, scaled_only),
                                                      pictures),
                               net_output(net, scaled_only, pictures), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer, message", [
    ({"type": "batchnorm"}, "ConvNetJS has no batchnorm layer"),
    ({"type": "pool", "sx": 2, "stride": 2, "mode": "avg"}, "max pools"),
    ({"type": "conv", "sx": 1, "filters": 2, "stride": 1, "bias": False}, "bias"),
    ({"type": "conv", "sx": 4, "filters": 2, "stride_x": 1, "stride_y": 2, "pad": 1},
     "equal x/y stride"),
    ({"type": "leaky_relu"}, "no leaky_relu"),
    ({"type": "gelu"}, r"layer 2 \(gelu\): ConvNetJS has no gelu layer"),
    ({"type": "conv", "sx": 1, "filters": 2, "activation": "gelu"},   # the sugar's gelu too
     r"layer 3 \(gelu\): ConvNetJS has no gelu layer"),
    ({"type": "dropout", "drop_prob": 0.5}, "dropout"),             # then a tanh
])
def test_layers_convnetjs_lacks_are_refused_on_export(layer, message):
    layers = [BN_LAYERS[0], {"type": "conv", "sx": 3, "filters": 2, "pad": 1}, layer,
              {"type": "tanh"}, {"type": "softmax", "num_classes": 3}]
    net = tiny_net(layers)
    with pytest.raises(ConvNetJSError, match=message):
        export_convnetjs(net)
    status = export_status(net.spec, None)
    assert not status["possible"] and message.split()[0] in status["detail"]
    assert training_normalization(net.spec, NOT_CONVNETJS) == NOT_CONVNETJS


NOT_CONVNETJS = Normalization((120.0, 121.0, 122.0), (60.0, 61.0, 62.0))


def test_label_smoothing_is_left_out_of_the_export_and_the_status_says_so(rng):
    layers = [SMALL_INPUT, {"type": "conv", "sx": 3, "filters": 4, "activation": "relu"},
              {"type": "softmax", "num_classes": 3, "label_smoothing": 0.1}]
    net = ours_with(layers, seed=2)
    status = export_status(net.spec, None)
    assert status["possible"] and status["exact"]          # predictions do not depend on it
    assert "layer 4 (softmax): its label_smoothing (0.1) is left out" in status["detail"]
    assert "training only" in status["detail"]
    assert "label_smoothing" not in export_status(tiny_spec(layers[:-1] + [
        {"type": "softmax", "num_classes": 3}]), None)["detail"]
    # a net ConvNetJS can run keeps training on ConvNetJS's input convention
    assert training_normalization(net.spec, NOT_CONVNETJS) == CONVNETJS_INPUT
    doc = export_convnetjs(net)
    assert "label_smoothing" not in json.dumps(doc)
    pictures = images(rng, 3)
    np.testing.assert_allclose(convnetjs_node.predict(doc, pictures),
                               net_output(net, CONVNETJS_INPUT.to_dict(), pictures), rtol=1e-5,
                               atol=1e-6)


def test_nets_convnetjs_can_run_train_on_its_input_convention():
    from engine.presets import load_preset
    for preset in ("convnetjs", "cifar_small"):
        assert training_normalization(load_preset(preset), NOT_CONVNETJS) == CONVNETJS_INPUT
    assert training_normalization(load_preset("cifar_resnet"), NOT_CONVNETJS) == NOT_CONVNETJS
    assert training_normalization(tiny_spec(OURS_WITH_DROPOUT), NOT_CONVNETJS) == CONVNETJS_INPUT


# --- the shipped net --------------------------------------------------------------------------
def test_the_shipped_convnetjs_net_exports_exactly_and_round_trips():
    """Real CIFAR-10 test images: ConvNetJS gives our classes and probabilities for all 200,
    and the file read back predicts what the shipped net predicts."""
    snapshot = load_pretrained("convnetjs")
    assert Normalization.from_dict(snapshot.preprocess) == CONVNETJS_INPUT
    net = snapshot.build_net()
    assert export_status(net.spec, snapshot.preprocess)["exact"]
    doc = json.loads(dumps(export_convnetjs(net, snapshot.preprocess, classes=snapshot.classes)))
    pictures, labels = cifar_test_images()
    ours = net_output(net, snapshot.preprocess, pictures)
    theirs = convnetjs_node.predict(doc, pictures)
    assert np.array_equal(theirs.argmax(1), ours.argmax(1))
    np.testing.assert_allclose(theirs, ours, atol=1e-5)
    assert (ours.argmax(1) == labels).mean() > 0.6
    back = import_convnetjs(doc)
    assert back.classes == snapshot.classes
    np.testing.assert_allclose(our_output(back, pictures), ours, atol=1e-6)


# --- refusals -------------------------------------------------------------------------------
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


@pytest.mark.parametrize("note", ["p", [], {"dropout_scale": "half"}])
def test_a_malformed_note_of_ours_is_refused(rng, note):
    doc = {**make_net_json(CONV_RELU_POOL_FC, rng), "convnet_demo": note}
    with pytest.raises(ConvNetJSError, match="convnet_demo"):
        import_convnetjs(doc)


@pytest.mark.parametrize("doc", [[], {}, {"layers": []}, {"layers": "x"}])
def test_not_a_convnetjs_net(doc):
    with pytest.raises(ConvNetJSError, match="non-empty 'layers' list"):
        import_convnetjs(doc)


# --- the reference itself ---------------------------------------------------------------------
@pytest.mark.parametrize("env, outcome", [
    ({}, pytest.skip.Exception),
    ({"CONVNET_DEMO_CI": "1"}, pytest.fail.Exception),       # what .ci/run exports
    ({"CI": "true"}, pytest.fail.Exception),                 # what CI services set
])
def test_without_node_the_reference_skips_except_under_ci(monkeypatch, env, outcome):
    monkeypatch.delenv("CONVNET_DEMO_CI", raising=False)
    monkeypatch.delenv("CI", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(convnetjs_node.shutil, "which", lambda _name: None)
    with pytest.raises(outcome, match="node is not installed"):
        convnetjs_node.node()
