"""Questions made from every preset's layers agree with the calculator and the spec checker,
their wrong options are the lecture's mistakes, and the room publishes a bounded number of
poll events however many answer."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.calculator import summarize
from engine.presets import PRESETS, load_preset
from engine.spec.net_spec import parse_spec
from engine.spec.windows import window_out
from server.polls import PollError, PollRoom
from server.questions import (LAYER_KINDS, NONE_FIT, QuestionError, choices, custom_question,
                              flat_layers, flat_rows, layer_question, predict_question)


@pytest.fixture(scope="module", params=PRESETS)
def net(request):
    spec = load_preset(request.param, budget=None)
    # the server asks about the running net as it publishes it: the spec's JSON, parsed again
    return request.param, parse_spec(spec.to_json(), budget=None), summarize(spec)


def vol(h, w, c) -> str:
    return f"{h}×{w}×{c}"


def expected_right(kind: str, d: dict, row: dict) -> str | None:
    """The right option, worked out here from the layer (the test's own arithmetic)."""
    c, h, w = d["in_shape"]
    if kind == "output_size":
        h_out = window_out(h, d["sy"], d["pad_y"], d["stride_y"])
        w_out = window_out(w, d["sx"], d["pad_x"], d["stride_x"])
        depth = d["filters"] if d["type"] == "conv" else c
        assert [h_out, w_out, depth] == row["out_shape"]       # the calculator agrees
        return vol(h_out, w_out, depth)
    if kind == "params":
        if d["type"] == "conv":
            n = d["filters"] * d["sy"] * d["sx"] * c + (d["filters"] if d["bias"] else 0)
        elif d["type"] == "fc":
            n = d["num_neurons"] * c * h * w + (d["num_neurons"] if d["bias"] else 0)
        else:
            n = 2 * c
        assert n == row["params"]
        return f"{n:,}"
    if kind == "memory":
        out_c, out_h, out_w = d["out_shape"]
        assert out_c * out_h * out_w * 4 == row["bytes"]
        return f"{row['bytes']:,} bytes"
    return None


def fits(d: dict, stride: int) -> bool:
    _, h, w = d["in_shape"]
    return ((h - d["sy"] + 2 * d["pad_y"]) % stride == 0
            and (w - d["sx"] + 2 * d["pad_x"]) % stride == 0)


def test_every_layer_question_of_every_preset(net):
    name, spec, summary = net
    rows, layers = flat_rows(summary), flat_layers(spec)
    offered = choices(spec, summary)
    asked = 0
    for kind in LAYER_KINDS:
        assert offered[kind], (name, kind)
        for index in offered[kind]:
            q = layer_question(kind, index, spec, summary, random.Random(index))
            asked += 1
            assert len(q.options) == 4 == len(set(q.options)) == len(q.mistakes), q
            assert 0 <= q.answer < 4 and q.mistakes[q.answer] is None
            assert all(q.mistakes[i] for i in range(4) if i != q.answer), q
            assert f"Layer {index}" in q.text or kind == "memory" and index == "0"
            d, row = layers[index], rows[index]
            right = expected_right(kind, d, row)
            if kind == "stride_fits":
                strides = [int(o.split()[1]) for o in q.options if o != NONE_FIT]
                assert q.options[-1] == NONE_FIT and len(strides) == 3
                fitting = [s for s in strides if fits(d, s)]
                assert len(fitting) <= 1, q
                assert q.options[q.answer] == (f"stride {fitting[0]}" if fitting else NONE_FIT)
            elif kind == "memory":
                assert q.options[q.answer].startswith(right), (q, right)
            else:
                assert q.options[q.answer] == right, (q, right)
    assert asked >= 5


def test_the_lectures_mistakes_are_the_wrong_options():
    spec = load_preset("convnetjs")
    summary = summarize(spec)
    size = layer_question("output_size", "1", spec, summary, random.Random(0))
    by_mistake = {why: option for option, why in zip(size.options, size.mistakes)}
    assert by_mistake[None] == "32×32×16"                      # 32x32x3, 16 5x5 filters, pad 2
    assert by_mistake["forgot the padding"] == "28×28×16"
    assert by_mistake["forgot the +1"] == "31×31×16"
    assert any(why and "depth" in why and option == "32×32×3"
               for option, why in zip(size.options, size.mistakes))
    params = layer_question("params", "1", spec, summary, random.Random(0))
    by_mistake = {why: option for option, why in zip(params.options, params.mistakes)}
    assert by_mistake[None] == "1,216" and by_mistake["forgot the bias"] == "1,200"
    assert by_mistake["forgot the depth: each filter spans all input channels"] == "416"
    memory = layer_question("memory", "1", spec, summary, random.Random(0))
    by_mistake = {why: option for option, why in zip(memory.options, memory.mistakes)}
    assert by_mistake[None] == "65,536 bytes (64 KiB)"
    assert by_mistake["forgot the 4 bytes of a float32"] == "16,384 bytes (16 KiB)"
    # AlexNet's conv1 on 227: stride 4 fits, 5 and 7 do not
    alexnet = load_preset("alexnet", budget=None)
    stride = layer_question("stride_fits", "1", alexnet, summarize(alexnet), random.Random(0))
    assert stride.options[stride.answer] == "stride 4"
    assert "216/4 + 1 = 55" in stride.explain
    # 32 - 5 + 4 = 31 is prime: no stride from 2 up fits the demo net's first conv
    prime = layer_question("stride_fits", "1", spec, summary, random.Random(0))
    assert prime.options[prime.answer] == NONE_FIT


def test_options_are_shuffled_per_question():
    spec = load_preset("convnetjs")
    summary = summarize(spec)
    positions = {layer_question("params", "4", spec, summary, random.Random(seed)).answer
                 for seed in range(40)}
    assert len(positions) == 4


def test_layers_a_kind_cannot_ask_about():
    spec = load_preset("cifar_speedrun")
    summary = summarize(spec)
    rows = flat_rows(summary)
    relu_like = next(i for i, r in rows.items() if r["type"] == "gelu")
    for kind in LAYER_KINDS:
        with pytest.raises(QuestionError, match="type gelu"):
            layer_question(kind, relu_like, spec, summary)
    with pytest.raises(QuestionError, match="no layer 999"):
        layer_question("params", "999", spec, summary)
    last_pool = max((i for i, r in rows.items() if r["type"] == "pool"), key=int)
    assert last_pool not in choices(spec, summary)["stride_fits"]      # 3x3 on 3x3
    with pytest.raises(QuestionError, match="almost every stride fits"):
        layer_question("stride_fits", last_pool, spec, summary)


def test_predict_offers_the_nets_answer_and_the_truth():
    classes = ["plane", "car", "bird", "cat", "deer", "dog"]
    probs = [0.05, 0.1, 0.5, 0.2, 0.1, 0.05]
    q = predict_question(7, probs, classes, truth=4, image_b64="AAAA")
    assert q.options == ("car", "bird", "cat", "deer")           # class order
    assert q.options[q.answer] == "bird" and q.reveal["truth"] == "deer"
    assert q.reveal["probs"] == [0.1, 0.5, 0.2, 0.1]


class FakeHub:
    def __init__(self) -> None:
        self.events: list[dict] = []

    def publish(self, kind: str, payload) -> None:
        assert kind == "poll"
        self.events.append(json.loads(json.dumps(payload)))


def test_a_burst_of_answers_makes_few_events_and_none_says_who():
    async def scenario():
        hub = FakeHub()
        room = PollRoom(hub, publish_every_s=0.2, max_answers=1000)
        poll = room.open(custom_question("q?", ["a", "b", "c"], 2))
        for n in range(300):
            room.answer(f"viewer{n:03d}", n % 3, poll.id)
        assert len(hub.events) == 1                  # the opening; the counts are due later
        await asyncio.sleep(0.35)
        assert len(hub.events) == 2 and hub.events[-1]["counts"] == [100, 100, 100]
        room.answer("viewer000", 2, None)           # a change of mind moves one count
        await asyncio.sleep(0.35)
        assert hub.events[-1]["counts"] == [99, 100, 101] and hub.events[-1]["total"] == 300
        closed = room.close()
        assert hub.events[-1]["answer"] == 2 and not hub.events[-1]["open"]
        assert len(hub.events) == 4 and closed.answers["viewer000"] == 2
        text = json.dumps(hub.events)
        assert "viewer" not in text and "yours" not in text
        with pytest.raises(PollError):
            room.answer("late", 0, None)
    asyncio.run(scenario())


@st.composite
def conv_layers(draw):
    """A conv layer that fits its input: (W - F + 2P) divisible by S, P < F."""
    f = draw(st.integers(1, 7))
    pad = draw(st.integers(0, f - 1))
    stride = draw(st.integers(1, 4))
    out_h, out_w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    h, w = (out_h - 1) * stride + f - 2 * pad, (out_w - 1) * stride + f - 2 * pad
    assume(h >= 1 and w >= 1)
    return h, w, draw(st.integers(1, 8)), f, pad, stride, draw(st.integers(1, 16)), \
        draw(st.booleans())


@settings(max_examples=150, deadline=None, derandomize=True)
@given(layer=conv_layers(), seed=st.integers(0, 1000))
def test_any_conv_layer_is_asked_about_with_the_calculators_answers(layer, seed):
    h, w, c, f, pad, stride, k, bias = layer
    spec = parse_spec([{"type": "input", "out_sx": w, "out_sy": h, "out_depth": c},
                       {"type": "conv", "sx": f, "filters": k, "stride": stride, "pad": pad,
                        "bias": bias},
                       {"type": "softmax", "num_classes": 2}], budget=None)
    summary = summarize(spec)
    row, d = flat_rows(summary)["1"], flat_layers(spec)["1"]
    offered = choices(spec, summary)
    for kind in LAYER_KINDS:
        if "1" not in offered[kind]:
            assert kind == "stride_fits"
            with pytest.raises(QuestionError):
                layer_question(kind, "1", spec, summary, random.Random(seed))
            continue
        q = layer_question(kind, "1", spec, summary, random.Random(seed))
        assert len(set(q.options)) == len(q.options) == 4 and q.mistakes[q.answer] is None
        right = expected_right(kind, d, row)
        if kind == "stride_fits":
            strides = [int(o.split()[1]) for o in q.options if o != NONE_FIT]
            fitting = [s for s in strides if fits(d, s)]
            assert len(fitting) <= 1
            assert q.options[q.answer] == (f"stride {fitting[0]}" if fitting else NONE_FIT)
        else:
            assert q.options[q.answer].startswith(right), (q, right)
