"""The architecture calculator: per-layer formulas, FLOPs, activations, receptive fields,
totals and both memory figures, checked against hand arithmetic."""

import json

from engine.calculator import (CONVENTIONS, EXAMPLE_BATCH, OPTIMIZER_SLOTS, render_summary,
                               summarize)
from engine.spec.net_spec import parse_spec

DEMO = [{"type": "input", "out_sx": 32, "out_sy": 32, "out_depth": 3},
        {"type": "conv", "sx": 5, "filters": 16, "stride": 1, "pad": 2, "activation": "relu"},
        {"type": "pool", "sx": 2, "stride": 2},
        {"type": "conv", "sx": 5, "filters": 20, "stride": 1, "pad": 2, "activation": "relu"},
        {"type": "pool", "sx": 2, "stride": 2},
        {"type": "conv", "sx": 5, "filters": 20, "stride": 1, "pad": 2, "activation": "relu"},
        {"type": "pool", "sx": 2, "stride": 2},
        {"type": "softmax", "num_classes": 10}]


def rows_by_type(summary, kind):
    return [r for r in summary["layers"] if r["type"] == kind]


def test_demo_net_rows_and_totals():
    s = summarize(parse_spec(DEMO))
    conv1 = s["layers"][1]
    assert conv1["formula"] == "16x5x5x3+16 = 1216" and conv1["params"] == 1216
    assert conv1["out_shape"] == [32, 32, 16]
    assert conv1["flops"] == 2 * 32 * 32 * 16 * 5 * 5 * 3  # a multiply-add is 2 FLOPs
    assert conv1["activations"] == 32 * 32 * 16 and conv1["bytes"] == 4 * 32 * 32 * 16
    fc = rows_by_type(s, "fc")[0]
    assert fc["formula"] == "10x320+10 = 3210" and fc["flops"] == 2 * 10 * 320
    assert s["params"] == 1216 + 8020 + 10020 + 3210 == 22466
    # lecture convention: input, conv, pool, fc count; relu and softmax do not
    assert all(r["activations"] == 0 for r in s["layers"] if r["type"] in ("relu", "softmax"))
    assert s["activations"] == 3072 + 16384 + 4096 + 5120 + 1280 + 1280 + 320 + 10
    assert s["input_shape"] == [32, 32, 3] and s["conventions"] == CONVENTIONS
    json.dumps(s)


def test_memory_figures():
    s = summarize(parse_spec(DEMO))
    mem = s["memory"]
    assert mem["forward_bytes_per_image"] == 4 * s["activations"]
    # every layer output, relu and softmax included, plus its gradient
    stored = 3072 + 2 * 16384 + 4096 + 2 * 5120 + 1280 + 2 * 1280 + 320 + 10 + 10
    assert mem["training_values_per_image"] == 2 * stored
    assert mem["training_bytes_per_image"] == 8 * stored
    assert mem["training_fixed_bytes"] == 4 * (2 + OPTIMIZER_SLOTS) * 22466
    assert mem["training_bytes_example_batch"] == \
        mem["training_fixed_bytes"] + EXAMPLE_BATCH * mem["training_bytes_per_image"]


def test_receptive_field_and_jump():
    spec = parse_spec([{"type": "input", "out_sx": 16, "out_sy": 16, "out_depth": 1},
                       {"type": "conv", "sx": 3, "filters": 2, "pad": 1},
                       {"type": "conv", "sx": 3, "filters": 2, "pad": 1},
                       {"type": "pool", "sx": 2},
                       {"type": "conv", "sx": 3, "sy": 1, "filters": 2, "pad_x": 1},
                       {"type": "softmax", "num_classes": 2}])
    rows = summarize(spec)["layers"]
    assert [r["receptive_field"] for r in rows[:5]] == [[1, 1], [3, 3], [5, 5], [6, 6], [6, 10]]
    assert rows[3]["jump"] == [2, 2] and rows[4]["jump"] == [2, 2]
    assert rows[5]["receptive_field"] == [6 + 7 * 2, 10 + 7 * 2]  # fc sees its whole input


def test_every_activation_function_counts_one_flop_per_value_and_no_activations():
    kinds = [{"type": "relu"}, {"type": "leaky_relu"}, {"type": "gelu"}, {"type": "sigmoid"},
             {"type": "tanh"}]
    spec = parse_spec([{"type": "input", "out_sx": 5, "out_sy": 4, "out_depth": 3},
                       {"type": "conv", "sx": 1, "filters": 6, "activation": "gelu"}, *kinds,
                       {"type": "softmax", "num_classes": 2}])
    rows = summarize(spec)["layers"][2:8]
    assert [r["type"] for r in rows] == ["gelu", "relu", "leaky_relu", "gelu", "sigmoid", "tanh"]
    assert all(r["flops"] == 6 * 4 * 5 and r["activations"] == 0 for r in rows)


def test_batchnorm_no_bias_and_blocks():
    block = {"type": "residual", "layers": [
        {"type": "conv", "sx": 3, "pad": 1, "stride": 2, "rounding": "floor", "filters": 64,
         "bias": False}, {"type": "batchnorm"}]}
    spec = parse_spec([{"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 32}, block,
                       {"type": "concat", "branches": [
                           [{"type": "conv", "sx": 1, "filters": 2}],
                           [{"type": "pool", "sx": 3, "stride": 1, "pad": 1}]]},
                       {"type": "softmax", "num_classes": 2}])
    s = summarize(spec)
    res = s["layers"][1]
    conv, bn, proj, proj_bn = res["children"]
    assert conv["formula"] == "64x3x3x32 = 18432" and bn["formula"] == "2x64 = 128"
    assert proj["index"] == "1.shortcut.0" and proj["formula"] == "64x1x1x32 = 2048"
    assert conv["index"] == "1.layers.0" and conv["depth"] == 1
    assert res["params"] == 18432 + 128 + 2048 + 128
    assert res["formula"] == "18432+128+2048+128 = 20736"
    assert res["flops"] == sum(c["flops"] for c in res["children"]) + 4 * 4 * 64  # the add
    assert res["activations"] == conv["activations"] + proj["activations"]
    assert res["buffers"] == 2 * 2 * 64
    cat = s["layers"][2]
    assert cat["out_shape"] == [4, 4, 66] and cat["children"][1]["index"] == "2.branches.1.0"
    assert s["params"] == sum(r["params"] for r in s["layers"])
    mem = s["memory"]
    assert mem["training_fixed_bytes"] == 4 * ((2 + OPTIMIZER_SLOTS) * s["params"] + 256)


def test_render_summary_has_table_totals_and_notes():
    spec = parse_spec({"name": "demo", "notes": ["a note"], "layers": DEMO})
    text = render_summary(summarize(spec))
    lines = text.splitlines()
    assert lines[0] == "demo" and lines[1].split()[:4] == ["layer", "type", "output", "HxWxC"]
    assert any("16x5x5x3+16 = 1216" in line and "32x32x16" in line for line in lines)
    assert "params: 22,466" in text and "- a note" in text
    assert "memory per image, forward (lecture: activations x 4 bytes)" in text
    assert "memory for training in this engine" in text and "a multiply-add counts 2" in text
    header = lines[1]
    conv_line = next(line for line in lines if "1216" in line)
    assert conv_line.index("32x32x16") == header.index("output")  # aligned columns
