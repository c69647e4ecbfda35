"""The spec keys airbench94's net needs: batchnorm "scale", "lr_mul", "l2_decay_mul"; the
"scale" layer; softmax "bias"; a whitening conv's "bias_epochs". Defaults stay out of the
JSON (every other net normalises as before); bad values are refused naming the field."""

import pytest

from engine.presets import PRESETS, load_preset
from engine.spec.net_spec import SpecError, parse_spec

INPUT = {"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 3}
SOFTMAX = {"type": "softmax", "num_classes": 10}
WHITEN = {"type": "conv", "sx": 2, "filters": 24, "init": "whiten"}


def test_the_options_are_kept_and_round_trip():
    spec = parse_spec([INPUT, dict(WHITEN, bias_epochs=3),
                       {"type": "batchnorm", "scale": False, "lr_mul": 64, "l2_decay_mul": 1},
                       {"type": "scale", "factor": 0.5},
                       dict(SOFTMAX, bias=False)])
    conv, bn, scale, fc, softmax = spec.layers[1:]
    assert conv["bias_epochs"] == 3
    assert (bn["scale"], bn["lr_mul"], bn["l2_decay_mul"]) == (False, 64.0, 1.0)
    assert scale["factor"] == 0.5 and scale["out_shape"] == (24, 7, 7)
    assert fc["type"] == "fc" and fc["bias"] is False and softmax["bias"] is False
    assert parse_spec(spec.to_json()) == spec
    assert spec.to_json()[-1] == {"type": "softmax", "num_classes": 10, "bias": False}


def test_defaults_stay_out_of_the_defs_and_the_json():
    spec = parse_spec([INPUT, {"type": "batchnorm", "scale": True, "lr_mul": 1,
                               "l2_decay_mul": 0}, dict(SOFTMAX, bias=True)])
    assert spec == parse_spec([INPUT, {"type": "batchnorm"}, SOFTMAX])
    assert spec.layers[1] == {"type": "batchnorm", "eps": 1e-5, "momentum": 0.1,
                              "in_shape": (3, 8, 8), "out_shape": (3, 8, 8)}
    assert spec.layers[2]["bias"] is True and "bias" not in spec.layers[3]


@pytest.mark.parametrize("name", [p for p in PRESETS if p != "cifar_speedrun"])
def test_no_other_preset_uses_them(name):
    try:
        spec = load_preset(name, budget=None)
    except SpecError:
        pytest.skip("not a spec preset")
    for d in spec.layers:
        assert d["type"] != "scale" and "bias_epochs" not in d
        if d["type"] == "batchnorm":
            assert not {"scale", "lr_mul", "l2_decay_mul"} & set(d)
        if d["type"] == "softmax":
            assert "bias" not in d


@pytest.mark.parametrize("layer, field, text", [
    ({"type": "batchnorm", "scale": 0}, "scale", "must be true or false, got 0"),
    ({"type": "batchnorm", "lr_mul": 0}, "lr_mul", "must be in (0, 1000], got 0"),
    ({"type": "batchnorm", "lr_mul": 5000}, "lr_mul", "must be in (0, 1000], got 5000"),
    ({"type": "batchnorm", "lr_mul": "64"}, "lr_mul", "must be a number"),
    ({"type": "batchnorm", "l2_decay_mul": -1}, "l2_decay_mul", "must be at least 0"),
    ({"type": "scale"}, "factor", "is required"),
    ({"type": "scale", "factor": 0}, "factor", "must not be 0"),
    ({"type": "scale", "factor": None}, "factor", "must be a number"),
    ({"type": "scale", "factor": 1e9}, "factor", "at most 1e+06 in size"),
    ({"type": "scale", "factor": 2, "bias": False}, "bias", "unknown key for a scale layer"),
    ({"type": "conv", "sx": 1, "filters": 4, "bias_epochs": 3}, "bias_epochs",
     "applies only to a whitening conv"),
])
def test_bad_values_are_refused_naming_the_field(layer, field, text):
    with pytest.raises(SpecError) as info:
        parse_spec([INPUT, layer, SOFTMAX])
    assert info.value.field == field and text in str(info.value)
    assert "layer 1" in str(info.value)


@pytest.mark.parametrize("conv, text", [
    (dict(WHITEN, bias_epochs=-1), "must be at least 0, got -1"),
    (dict(WHITEN, bias_epochs=2.5), "must be an integer"),
    (dict(WHITEN, bias_epochs=3, bias=False), "has no bias"),
])
def test_bias_epochs_needs_a_whitening_conv_with_a_bias(conv, text):
    with pytest.raises(SpecError) as info:
        parse_spec([INPUT, conv, SOFTMAX])
    assert info.value.field == "bias_epochs" and text in str(info.value)


@pytest.mark.parametrize("head", [{"type": "svm", "num_classes": 3},
                                  {"type": "regression", "num_neurons": 3}])
def test_only_softmax_takes_bias(head):
    with pytest.raises(SpecError) as info:
        parse_spec([INPUT, dict(head, bias=False)])
    assert info.value.field == "bias" and "unknown key" in str(info.value)
    with pytest.raises(SpecError, match="must be true or false"):
        parse_spec([INPUT, dict(SOFTMAX, bias="no")])
