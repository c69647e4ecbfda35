"""A conv's "init": "he" (the default, left out of the JSON) or "whiten" (engine/train/
whitening.py), and the places where whitening does not apply, refused naming the field."""

import pytest

from engine.spec.net_spec import SpecError, parse_spec

INPUT = {"type": "input", "out_sx": 32, "out_sy": 32, "out_depth": 3}
SOFTMAX = {"type": "softmax", "num_classes": 10}
WHITEN = {"type": "conv", "sx": 2, "filters": 24, "init": "whiten"}


def test_whiten_is_kept_and_round_trips():
    spec = parse_spec([INPUT, WHITEN, {"type": "gelu"}, SOFTMAX])
    assert spec.layers[1]["init"] == "whiten"
    assert spec.layers[1]["out_shape"] == (24, 31, 31)
    assert spec.to_json()[1]["init"] == "whiten"
    assert parse_spec(spec.to_json()) == spec


def test_he_is_the_default_and_stays_out_of_the_json():
    plain = parse_spec([INPUT, {"type": "conv", "sx": 2, "filters": 24}, SOFTMAX])
    he = parse_spec([INPUT, {"type": "conv", "sx": 2, "filters": 24, "init": "he"}, SOFTMAX])
    assert he == plain and "init" not in plain.layers[1] and "init" not in he.to_json()[1]


def test_other_sizes_need_their_own_filter_count():
    spec = parse_spec([INPUT, {"type": "conv", "sx": 3, "sy": 2, "filters": 36,
                               "init": "whiten"}, SOFTMAX])
    assert spec.layers[1]["out_shape"] == (36, 31, 30)
    gray = {"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 1}
    parse_spec([gray, {"type": "conv", "sx": 2, "filters": 8, "init": "whiten"}, SOFTMAX])


@pytest.mark.parametrize("layers, where, field, text", [
    ([{"type": "conv", "sx": 3, "pad": 1, "filters": 8}, WHITEN], "layer 2 (conv)", "init",
     '"whiten" applies only to a conv right after the input (layer 1)'),
    ([{"type": "residual", "layers": [dict(WHITEN, pad=0)]}], "layer 1.layers.0 (conv)",
     "init", "applies only to a conv right after the input"),
    ([dict(WHITEN, stride=2, rounding="floor")], "layer 1 (conv)", "stride",
     "it needs stride 1"),
    ([dict(WHITEN, pad=1)], "layer 1 (conv)", "pad", "it needs pad 0"),
    ([dict(WHITEN, filters=12)], "layer 1 (conv)", "filters",
     "filters must be 2 x 3 x 2 x 2 = 24, got 12"),
    ([dict(WHITEN, sx=6, filters=216)], "layer 1 (conv)", "sx",
     "needs a small filter, at most 5x5; got 6x6"),
    ([dict(WHITEN, init="xavier")], "layer 1 (conv)", "init", '"he", "whiten"'),
    ([dict(WHITEN, init=None)], "layer 1 (conv)", "init", '"he", "whiten"'),
])
def test_whiten_is_refused_where_it_does_not_apply(layers, where, field, text):
    with pytest.raises(SpecError) as info:
        parse_spec([INPUT, *layers, SOFTMAX])
    assert info.value.field == field
    assert where in str(info.value) and text in str(info.value)


def test_only_convs_take_init():
    with pytest.raises(SpecError, match="unknown key for a fc layer") as info:
        parse_spec([INPUT, {"type": "fc", "num_neurons": 8, "init": "whiten"}, SOFTMAX])
    assert info.value.field == "init"
