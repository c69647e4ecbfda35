"""Spec parsing: ConvNetJS compatibility, sugar, blocks, round trips, and every refusal with the
message a user reads (layer index, field, arithmetic, suggestions)."""

import copy
import json
import time

import pytest

from engine.spec.net_spec import (DEFAULT_BUDGET, Budget, NetSpec, SpecError, decode_spec_text,
                                  load_spec_text, parse_spec)

CONVNETJS_DEMO = json.loads("""[
 {"type":"input","out_sx":32,"out_sy":32,"out_depth":3},
 {"type":"conv","sx":5,"filters":16,"stride":1,"pad":2,"activation":"relu"},
 {"type":"pool","sx":2,"stride":2},
 {"type":"conv","sx":5,"filters":20,"stride":1,"pad":2,"activation":"relu"},
 {"type":"pool","sx":2,"stride":2},
 {"type":"conv","sx":5,"filters":20,"stride":1,"pad":2,"activation":"relu"},
 {"type":"pool","sx":2,"stride":2},
 {"type":"softmax","num_classes":10}]""")


def net(*middle, inp=(8, 8, 3), loss=None):
    """input (H, W, C), the middle layers, softmax 2 (or `loss`)."""
    h, w, c = inp
    return ([{"type": "input", "out_sx": w, "out_sy": h, "out_depth": c}, *middle,
             loss or {"type": "softmax", "num_classes": 2}])


def error(spec, **kw) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec(spec, **kw)
    return info.value


def conv(**kw):
    return {"type": "conv", "sx": 3, "filters": 4, **kw}


def types(defs):
    return [d["type"] for d in defs]


# --- ConvNetJS compatibility and sugar ------------------------------------------------------

def test_convnetjs_demo_loads_as_written_and_desugars_like_make_layers():
    spec = parse_spec(copy.deepcopy(CONVNETJS_DEMO))
    assert types(spec.layers) == ["input", "conv", "relu", "pool", "conv", "relu", "pool",
                                  "conv", "relu", "pool", "fc", "softmax"]
    shapes = [d["out_shape"] for d in spec.layers]
    assert shapes[1] == (16, 32, 32) and shapes[3] == (16, 16, 16) and shapes[9] == (20, 4, 4)
    assert spec.layers[10] == {"type": "fc", "num_neurons": 10, "bias": True,
                               "l1_decay_mul": 0.0, "l2_decay_mul": 1.0, "bias_pref": 0.0,
                               "in_shape": (20, 4, 4), "out_shape": (10, 1, 1)}
    assert spec.layers[1]["bias_pref"] == 0.1  # ConvNetJS: relus get a positive bias
    assert spec.layers[3]["stride_x"] == 2 and spec.layers[3]["mode"] == "max"
    assert spec.input_shape == (3, 32, 32) and spec.num_classes == 10
    assert spec.loss_type == "softmax" and spec.num_outputs == 10


def test_conv_normalised_keys_and_defaults():
    d = parse_spec(net(conv())).layers[1]
    assert d == {"type": "conv", "sx": 3, "sy": 3, "filters": 4, "stride_x": 1, "stride_y": 1,
                 "pad_x": 0, "pad_y": 0, "rounding": "exact", "bias": True,
                 "l1_decay_mul": 0.0, "l2_decay_mul": 1.0, "bias_pref": 0.0,
                 "in_shape": (3, 8, 8), "out_shape": (4, 6, 6)}


def test_pool_stride_defaults_to_two_and_overrides_per_axis():
    d = parse_spec(net({"type": "pool", "sx": 2})).layers[1]
    assert (d["stride_x"], d["stride_y"], d["out_shape"]) == (2, 2, (3, 4, 4))
    d = parse_spec(net({"type": "pool", "sx": 3, "sy": 2, "stride": 1, "stride_y": 2,
                        "pad_x": 1, "mode": "avg"}, inp=(8, 6, 1))).layers[1]
    assert (d["sy"], d["sx"], d["stride_y"], d["stride_x"], d["pad_y"], d["pad_x"]) == \
        (2, 3, 2, 1, 0, 1)
    assert d["out_shape"] == (1, 4, 6) and d["mode"] == "avg"


def test_activation_sugar_and_dropout_order():
    spec = parse_spec(net({"type": "fc", "num_neurons": 6, "activation": "maxout",
                           "group_size": 3, "drop_prob": 0.25},
                          conv(activation="leaky_relu", pad=1),
                          {"type": "fc", "num_neurons": 4, "activation": "tanh"},
                          {"type": "fc", "num_neurons": 4, "activation": "sigmoid"}))
    assert types(spec.layers) == ["input", "fc", "maxout", "dropout", "conv", "leaky_relu",
                                  "fc", "tanh", "fc", "sigmoid", "fc", "softmax"]
    assert spec.layers[2]["out_shape"] == (2, 1, 1) and spec.layers[2]["group_size"] == 3
    assert spec.layers[3]["drop_prob"] == 0.25 and spec.layers[5]["alpha"] == 0.01
    assert spec.layers[1]["bias_pref"] == 0.0  # only relu changes the default


def test_gelu_is_a_layer_and_an_activation_of_conv_and_fc():
    spec = parse_spec(net(conv(activation="gelu", pad=1), {"type": "gelu"},
                          {"type": "fc", "num_neurons": 4, "activation": "gelu",
                           "drop_prob": 0.5}))
    assert types(spec.layers) == ["input", "conv", "gelu", "gelu", "fc", "gelu", "dropout",
                                  "fc", "softmax"]
    conv_def, sugar, own = spec.layers[1:4]
    assert own == {"type": "gelu", "in_shape": (4, 8, 8), "out_shape": (4, 8, 8)}
    assert sugar == own and spec.layers[5]["out_shape"] == (4, 1, 1)
    assert conv_def["bias_pref"] == 0.0                    # only relu changes the default
    e = error(net({"type": "gelu", "approximate": "tanh"}))
    assert (e.layer, e.field) == ("1", "approximate") and "none besides type" in str(e)
    e = error(net(conv(activation="gelu_tanh")))
    assert e.field == "activation" and '"gelu"' in str(e)
    e = error(net({"type": "Gelu"}))
    assert e.field == "type" and "gelu" in str(e)


def test_svm_and_regression_get_an_fc():
    spec = parse_spec(net(loss={"type": "svm", "num_classes": 3}))
    assert types(spec.layers) == ["input", "fc", "svm"] and spec.num_classes == 3
    spec = parse_spec(net(loss={"type": "regression", "num_neurons": 1}))
    assert types(spec.layers) == ["input", "fc", "regression"]
    assert spec.num_classes is None and spec.num_outputs == 1


def test_other_layers_defaults():
    spec = parse_spec(net({"type": "batchnorm"}, {"type": "lrn"}, {"type": "dropout"},
                          {"type": "maxout"}, {"type": "leaky_relu", "alpha": 0.2},
                          {"type": "global_avg_pool"}, inp=(4, 4, 6)))
    bn, lrn, drop, maxout, leaky, gap = spec.layers[1:7]
    assert (bn["eps"], bn["momentum"]) == (1e-5, 0.1)
    assert (lrn["k"], lrn["n"], lrn["alpha"], lrn["beta"]) == (2.0, 5, 1e-4, 0.75)
    assert drop["drop_prob"] == 0.5 and maxout["group_size"] == 2
    assert maxout["out_shape"] == (3, 4, 4) and leaky["alpha"] == 0.2
    assert gap["out_shape"] == (3, 1, 1)


def test_convnetjs_in_keys_are_ignored():
    spec = parse_spec(net(conv(in_sx=8, in_sy=8, in_depth=3, filters=4)))
    assert spec.layers[1]["filters"] == 4 and type(spec.layers[1]["filters"]) is int


@pytest.mark.parametrize("layer, key", [
    (conv(), "filters"), (conv(), "sx"), (conv(), "sy"), (conv(), "stride"), (conv(), "pad"),
    (conv(), "stride_x"), (conv(), "pad_y"), ({"type": "fc", "num_neurons": 3}, "num_neurons"),
    ({"type": "maxout"}, "group_size"), ({"type": "lrn"}, "n"),
    (conv(activation="maxout"), "group_size"),
])
def test_integer_fields_refuse_integral_floats(layer, key):
    # JSON.stringify writes 3 for 3, so 3.0 is no ConvNetJS spec: it came from somewhere else.
    e = error(net(dict(layer, **{key: 4.0})))
    assert e.field == key and "must be an integer, got 4.0" in str(e)
    e = error(net(loss={"type": "softmax", "num_classes": 2.0}))
    assert e.field == "num_classes"
    e = error([{"type": "input", "out_sx": 8.0, "out_sy": 8, "out_depth": 3},
               {"type": "softmax", "num_classes": 2}])
    assert e.field == "out_sx"


@pytest.mark.parametrize("key", ["drop_prob", "l2_decay_mul", "l1_decay_mul", "bias_pref"])
def test_float_fields_refuse_integers_beyond_a_float_and_huge_floats(key):
    for value, words in ((10**400, "a number a float can hold, got an integer of about 401"),
                         (10**5000, "got an integer of about 5,001 digits"),
                         (True, "must be a number, got true")):
        e = error(net(conv(**{key: value})))
        assert e.field == key and words in str(e), str(e)
    if key != "drop_prob":
        e = error(net(conv(**{key: 1e30})))
        assert e.field == key and "at most 1e+06 in size" in str(e)


def test_document_form_with_metadata():
    spec = parse_spec({"name": "tiny", "description": "d", "notes": "one note",
                       "layers": net(conv())})
    assert spec.name == "tiny" and spec.notes == ("one note",)
    assert spec == parse_spec(net(conv()))  # metadata is not compared
    assert spec.to_document()["notes"] == ["one note"]
    assert error({"layers": net(), "nmae": "x"}).field == "nmae"
    assert "notes" in str(error({"layers": net(), "notes": [1]}))
    assert "needs \"layers\"" in str(error({"name": "x"}))


def test_floor_rounding_drops_the_last_row():
    d = parse_spec(net(conv(stride=2, pad=1, rounding="floor"))).layers[1]
    assert d["out_shape"] == (4, 4, 4) and d["rounding"] == "floor"  # (8-3+2)/2+1 = 4.5


# --- blocks -------------------------------------------------------------------------------------

def test_residual_identity_and_auto_projection():
    block = {"type": "residual", "layers": [conv(pad=1, filters=3, activation="relu"),
                                            conv(pad=1, filters=3)]}
    d = parse_spec(net(block)).layers[1]
    assert d["shortcut"] == [] and types(d["layers"]) == ["conv", "relu", "conv"]
    assert d["out_shape"] == (3, 8, 8)
    down = {"type": "residual", "layers": [conv(stride=2, pad=1, filters=6, rounding="floor",
                                                bias=False), {"type": "batchnorm"}]}
    d = parse_spec(net(down)).layers[1]
    proj, bn = d["shortcut"]
    assert (proj["sx"], proj["stride_x"], proj["filters"], proj["bias"]) == (1, 2, 6, False)
    assert proj["rounding"] == "floor" and proj["out_shape"] == (6, 4, 4)
    assert bn["type"] == "batchnorm" and d["out_shape"] == (6, 4, 4)
    forced = parse_spec(net({**block, "projection": True})).layers[1]
    assert types(forced["shortcut"]) == ["conv", "batchnorm"]


def test_residual_refusals_say_why():
    down = {"type": "residual", "layers": [conv(stride=2, pad=1, filters=6, rounding="floor")],
            "projection": False}
    e = error(net({"type": "relu"}, down))
    assert (e.layer, e.field) == ("2", "projection")
    assert "8x8x3 into 4x4x6" in str(e) and "identity" in str(e)
    e = error(net({"type": "residual", "layers": [conv(pad=1)], "shortcut": [conv(filters=2,
                                                                                sx=1)]}))
    assert e.field == "shortcut" and "8x8x2" in str(e) and "8x8x4" in str(e)
    e = error(net({"type": "residual", "layers": [conv()], "shortcut": [], "projection": True}))
    assert "either" in str(e)
    e = error(net({"type": "residual", "layers": []}))
    assert e.field == "layers" and "non-empty" in str(e)


def test_error_inside_a_block_names_the_path():
    e = error(net({"type": "relu"}, {"type": "residual", "layers": [
        conv(pad=1), conv(stride=3)]}, inp=(7, 7, 1)))
    assert (e.layer, e.field, e.layer_type) == ("2.layers.1", "stride", "conv")
    assert str(e).startswith("layer 2.layers.1 (conv), field 'stride': (7 - 3 + 2*0)/3 + 1")
    e = error(net({"type": "residual", "layers": [{"type": "softmax", "num_classes": 2}]}))
    assert e.layer == "1.layers.0" and "inside a block" in str(e)


def test_concat_stacks_channels_and_checks_sizes():
    block = {"type": "concat", "branches": [[conv(sx=1, filters=2)], [conv(pad=1, filters=5)],
                                            [{"type": "pool", "sx": 3, "stride": 1, "pad": 1}]]}
    d = parse_spec(net(block)).layers[1]
    assert d["out_shape"] == (10, 8, 8) and len(d["branches"]) == 3
    bad = {"type": "concat", "branches": [[conv(sx=1)], [conv(sx=3)]]}
    e = error(net(bad))
    assert (e.layer, e.field) == ("1", "branches")
    assert "branch 0 gives 8x8x4, branch 1 gives 6x6x4" in str(e)
    e = error(net({"type": "concat", "branches": [[conv()], [conv(stride=4)]]}))
    assert e.layer == "1.branches.1.0" and e.field == "stride"
    assert "branch 1" in str(error(net({"type": "concat", "branches": [[conv()], []]})))


def test_nesting_depth_is_limited():
    block: dict = conv(pad=1, filters=3)
    for _ in range(20):
        block = {"type": "residual", "layers": [block]}
    assert "nested" in str(error(net(block)))


# --- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", [
    CONVNETJS_DEMO,
    net(conv(sx=3, sy=1, stride_x=1, stride_y=5, pad_y=1, bias=False, l2_decay_mul=0.0),
        {"type": "fc", "num_neurons": 4, "activation": "maxout", "drop_prob": 0.1},
        loss={"type": "regression", "num_neurons": 3}, inp=(9, 5, 2)),
    net({"type": "residual", "layers": [conv(stride=2, pad=1, rounding="floor")]},
        {"type": "residual", "layers": [conv(pad=1)], "projection": True},
        {"type": "residual", "layers": [conv(pad=1)],
         "shortcut": [conv(sx=1, filters=4, activation="relu")]},
        {"type": "concat", "branches": [[conv(sx=1)], [{"type": "pool", "sx": 3, "stride": 1,
                                                         "pad": 1, "mode": "avg"}]]},
        {"type": "lrn", "n": 3}, {"type": "batchnorm", "momentum": 0.2},
        {"type": "global_avg_pool"}, loss={"type": "svm", "num_classes": 4}),
])
def test_round_trip(spec):
    parsed = parse_spec(copy.deepcopy(spec))
    text = json.dumps(parsed.to_json())
    again = load_spec_text(text)
    assert again == parsed and again.to_json() == parsed.to_json()
    assert not any(d.get("activation") for d in again.to_json())  # sugar expanded


def test_to_json_leaves_out_the_fc_a_loss_layer_brings():
    out = parse_spec(copy.deepcopy(CONVNETJS_DEMO)).to_json()
    assert [d["type"] for d in out][-2:] == ["pool", "softmax"]
    assert out[1]["stride"] == 1 and "stride_x" not in out[1] and "rounding" not in out[1]


# --- refusals -----------------------------------------------------------------------------------

def test_stride_that_does_not_fit_shows_the_arithmetic_and_what_fits():
    e = error(net(conv(stride=3), inp=(7, 7, 1)))
    assert str(e).startswith("layer 1 (conv), field 'stride': (7 - 3 + 2*0)/3 + 1 = 2.33 is "
                             "not an integer; strides that fit: 1, 2, 4; or pad 1 with stride 3")
    assert "input width of 6 or 9" in str(e) and '"rounding": "floor"' in str(e)


def test_pool_stride_and_per_axis_fields():
    e = error(net({"type": "pool", "sx": 3}, inp=(8, 8, 1)))
    assert e.field == "stride" and "(8 - 3 + 2*0)/2 + 1 = 3.5" in str(e)
    e = error(net(conv(stride_y=2), inp=(8, 7, 1)))
    assert e.field == "stride_y" and "height: (8 - 3 + 2*0)/2 + 1 = 3.5" in str(e)
    e = error(net(conv(sy=2, stride=2), inp=(8, 8, 1)))
    assert e.field == "stride" and str(e).split(": ")[1] == "width"


def test_filter_larger_than_padded_input():
    e = error(net(conv(sx=5), inp=(3, 3, 1)))
    assert e.field == "sx"
    assert "filter width 5 is larger than the padded input width 3 + 2*0 = 3" in str(e)
    assert "at most 3" in str(e) and "pad 1 or more" in str(e)
    e = error(net({"type": "pool", "sx": 2, "pad": 2}))
    assert e.field == "pad" and "at most 1" in str(e)


@pytest.mark.parametrize("value, words", [
    (True, "must be an integer, got true"), ("3", 'must be an integer, got "3"'),
    (3.5, "must be an integer, got 3.5"), (None, "got null"), (0, "at least 1, got 0"),
    (-2, "at least 1, got -2"), (10**13, "at most 1,000,000,000,000"),
])
def test_wrong_integer_values(value, words):
    e = error(net(conv(filters=value)))
    assert (e.layer, e.field, e.layer_type) == ("1", "filters", "conv") and words in str(e)


def test_wrong_values_of_other_kinds():
    assert "true or false, got 1" in str(error(net(conv(bias=1))))
    assert "must be a number" in str(error(net(conv(l2_decay_mul="1"))))
    assert "at least 0" in str(error(net(conv(l2_decay_mul=-1))))
    assert "at least 0, got -1" in str(error(net(conv(pad=-1))))
    assert "at least 1" in str(error(net(conv(sx=0))))
    e = error(net({"type": "pool", "sx": 2, "mode": "maxx"}))
    assert e.field == "mode" and "did you mean 'max'?" in str(e)
    e = error(net(conv(activation="relu6")))
    assert e.field == "activation" and '"leaky_relu"' in str(e)
    assert error(net(conv(group_size=2))).field == "group_size"
    e = error(net(conv(filters=5, activation="maxout")))
    assert "divisible by 2" in str(e) and "5 channels" in str(e)
    assert "odd" in str(error(net({"type": "lrn", "n": 4})))
    assert "more than 0" in str(error(net({"type": "batchnorm", "eps": 0})))
    assert error(net(conv(rounding="ceil"))).field == "rounding"


@pytest.mark.parametrize("p", [1.0, -0.1, 2])
def test_drop_prob_outside_zero_one(p):
    for layer in ({"type": "dropout", "drop_prob": p},
                  {"type": "fc", "num_neurons": 3, "drop_prob": p}):
        e = error(net(layer))
        assert e.field == "drop_prob" and "in [0, 1)" in str(e)


@pytest.mark.parametrize("eps", [0, 0.0, 0.1, 0.5, 0.999])
def test_softmax_label_smoothing_is_read_and_round_trips(eps):
    spec = parse_spec(net(loss={"type": "softmax", "num_classes": 3, "label_smoothing": eps}))
    last = spec.layers[-1]
    assert last["label_smoothing"] == eps and type(last["label_smoothing"]) is float
    assert spec.num_classes == 3 and types(spec.layers)[-2:] == ["fc", "softmax"]
    again = load_spec_text(json.dumps(spec.to_json()))
    assert again == spec and again.layers[-1]["label_smoothing"] == eps
    # the default is 0 and leaves the canonical JSON as it was before the field existed
    plain = parse_spec(net())
    assert plain.layers[-1]["label_smoothing"] == 0.0
    assert plain.to_json()[-1] == {"type": "softmax", "num_classes": 2}
    assert ("label_smoothing" in spec.to_json()[-1]) == (eps != 0)


@pytest.mark.parametrize("eps, words", [
    (-0.1, "in [0, 1), got -0.1"), (1.0, "in [0, 1), got 1"), (1, "in [0, 1), got 1"),
    (2.5, "in [0, 1)"), ("0.1", 'must be a number, got "0.1"'), (True, "must be a number"),
    (None, "must be a number"), ([0.1], "must be a number"),
    (10**400, "a number a float can hold"),
])
def test_label_smoothing_outside_zero_one_is_refused(eps, words):
    e = error(net(loss={"type": "softmax", "num_classes": 3, "label_smoothing": eps}))
    assert (e.layer, e.field, e.layer_type) == ("1", "label_smoothing", "softmax")
    assert words in str(e), str(e)
    text = '[{"type": "input", "out_sx": 4, "out_sy": 4, "out_depth": 1}, ' \
           '{"type": "softmax", "num_classes": 2, "label_smoothing": %s}]'
    for literal in ("1e400", "NaN", "Infinity"):
        with pytest.raises(SpecError):
            load_spec_text(text % literal)


@pytest.mark.parametrize("loss", [{"type": "svm", "num_classes": 3},
                                  {"type": "regression", "num_neurons": 2}])
def test_label_smoothing_is_refused_on_svm_and_regression(loss):
    for eps in (0.1, 0):
        e = error(net(loss=dict(loss, label_smoothing=eps)))
        assert (e.field, e.layer_type) == ("label_smoothing", loss["type"])
        assert "only a softmax layer takes label_smoothing" in str(e)


def test_unknown_type_and_keys_list_what_is_known():
    e = error(net({"type": "convv"}))
    assert (e.layer, e.field) == ("1", "type")
    assert "did you mean 'conv'?" in str(e) and "known types: input, conv, fc, pool" in str(e)
    e = error(net(conv(strides=2)))
    assert e.field == "strides" and "did you mean 'stride'?" in str(e)
    assert "known keys: filters, sx, sy, stride" in str(e)
    assert parse_spec(net({"type": "relu", "in_sx": 3})).layers[1] == {
        "type": "relu", "in_shape": (3, 8, 8), "out_shape": (3, 8, 8)}  # ConvNetJS writes it
    assert error([{"type": "input", "out_sx": 1, "out_sy": 1, "out_depth": 1, "in_sx": 1},
                  {"type": "softmax", "num_classes": 2}]).field == "in_sx"
    assert "is required" in str(error(net({"filters": 3})))
    assert "must be an object" in str(error(net([1, 2])))
    assert error(net({"type": "conv", "filters": 2})).field == "sx"


def test_structure_refusals():
    assert "a spec is a list" in str(error("conv"))
    assert "at least an input layer" in str(error([]))
    e = error(net(conv())[1:])
    assert (e.layer, e.field) == ("0", "type") and "first layer must be an input" in str(e)
    e = error(net(net()[0]))
    assert e.layer == "1" and "only the first layer" in str(e)
    e = error(net(conv())[:-1])
    assert e.layer == "1" and "last layer must be a loss layer" in str(e)
    e = error(net({"type": "softmax", "num_classes": 2}, conv()))
    assert e.layer == "1" and "must be the last layer, but 2 more follow it" in str(e)
    for k in (1, 0, -3):
        e = error(net(loss={"type": "softmax", "num_classes": k}))
        assert e.field == "num_classes" and "at least 2 (a classifier needs two" in str(e)
    assert "at least 1, got 0" in str(error(net(loss={"type": "regression", "num_neurons": 0})))
    assert "integer" in str(error(net(loss={"type": "svm", "num_classes": True})))


def test_budget_refuses_huge_nets_by_arithmetic():
    start = time.perf_counter()
    e = error(net(conv(filters=10**9)))
    assert time.perf_counter() - start < 0.5
    assert e.field == "filters" and "parameters" in str(e) and "30,000,000" in str(e)
    e = error(net(conv(filters=8), inp=(2000, 2000, 3)))
    assert "activation values per image" in str(e)
    e = error(net(conv(sx=11, filters=200, pad=5), inp=(400, 400, 3)),
              budget=Budget(max_activations=10**9))
    assert "FLOPs per image" in str(e)
    e = error(net(*[{"type": "relu"}] * 5), budget=Budget(max_layers=4))
    assert "more than 4 layers" in str(e)
    assert parse_spec(net(conv(filters=10**9)), budget=None).layers[1]["filters"] == 10**9
    assert DEFAULT_BUDGET.max_params == 30_000_000


def test_spec_error_fields_and_text():
    e = error(net(conv(stride=2), inp=(8, 8, 1)))
    assert isinstance(e, ValueError) and e.layer == "1" and e.field == "stride"
    assert e.message.startswith("(8 - 3") and str(e).startswith("layer 1 (conv), field 'stride'")


# --- text ----------------------------------------------------------------------------------------

def test_load_spec_text_and_json_errors():
    assert isinstance(load_spec_text(json.dumps(CONVNETJS_DEMO)), NetSpec)
    assert load_spec_text(json.dumps(CONVNETJS_DEMO).encode()) == parse_spec(CONVNETJS_DEMO)
    with pytest.raises(SpecError, match=r"invalid JSON at line 2, column 3"):
        decode_spec_text('[{"type": "input"},\n  ]')
    with pytest.raises(SpecError, match="NaN is not allowed"):
        decode_spec_text('[{"type": "conv", "sx": NaN}]')
    with pytest.raises(SpecError, match="duplicate key 'sx'"):
        decode_spec_text('[{"type": "conv", "sx": 3, "sx": 5}]')
    with pytest.raises(SpecError, match="UTF-8"):
        decode_spec_text(b"\xff\xfe[")
    with pytest.raises(SpecError, match="at most 1,000,000 characters"):
        decode_spec_text(" " * 1_000_001)
    with pytest.raises(SpecError, match="nested too deeply"):
        decode_spec_text("[" * 100_000)
    with pytest.raises(SpecError, match="must be a number"):
        load_spec_text(json.dumps(net(conv(l2_decay_mul=1))).replace('"l2_decay_mul": 1',
                                                                      '"l2_decay_mul": 1e999'))
    # Python reads at most 4300 digits into an int: a spec with more is refused naming the
    # layer and field, as any integer out of range.
    text = json.dumps(net(conv(drop_prob=0.5)))
    for digits in (4000, 4301, 100_000):
        big = "1" + "0" * (digits - 1)
        e = error(decode_spec_text(text.replace('"filters": 4', f'"filters": {big}')))
        assert (e.layer, e.field) == ("1", "filters")
        assert f"must be at most 1,000,000,000,000, got an integer of {digits:,} digits" in str(e)
        e = error(decode_spec_text(text.replace('"filters": 4', f'"filters": -{big}')))
        assert "must be at least 1, got an integer of" in str(e)
        e = error(decode_spec_text(text.replace('"drop_prob": 0.5', f'"drop_prob": {big}')))
        assert e.field == "drop_prob" and "a number a float can hold" in str(e)
        e = error(decode_spec_text(text.replace('"type": "conv"', f'"type": {big}')))
        assert e.field == "type"
    assert decode_spec_text("[" + "9" * 309 + "]") == [int("9" * 309)]
