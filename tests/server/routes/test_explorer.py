"""GET /api/conv, the convolution explorer's JSON twin: the lecture's cases, agreement with the
spec checker (a net with that conv parses exactly when the route says the stride fits, with
the same output shape, the calculator's parameter count and the same refusal message), every
suggestion fits, and every bad query is a 422 naming its field."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.calculator import summarize
from engine.spec.net_spec import SpecError, parse_spec
from server.app import create_app
from server.auth import route_policies
from server.routes.explorer import FIELDS, conv_numbers
from tests.server.conftest import assert_error, tiny_settings

HYPOTHESIS = settings(max_examples=150, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])


def conv(client, **query):
    response = client.get("/api/conv", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_route_is_public_and_documented(tmp_path, client):
    assert route_policies(create_app(tiny_settings(tmp_path)))["GET /api/conv"] == "public"
    documented = client.get("/openapi.json").json()["paths"]["/api/conv"]["get"]["parameters"]
    assert [p["name"] for p in documented] == list(FIELDS)
    assert {p["name"] for p in documented if p["required"]} == {"w", "f"}


def test_the_lectures_32x32x3_input_with_ten_5x5_filters(client):
    answer = conv(client, w=32, h=32, f=5, s=1, p=2, c_in=3, c_out=10)
    assert answer["fits"] and answer["output_shape"] == [32, 32, 10]
    assert answer["params"] == {"weights": 750, "biases": 10, "total": 760, "per_filter": 76,
                                "formula": "10x5x5x3+10 = 760"}
    assert answer["axes"]["width"]["value"] == "32" and answer["message"] is None
    # one 5x5x3 filter, no padding: a 28x28x1 activation map
    assert conv(client, w=32, f=5, c_in=3)["output_shape"] == [28, 28, 1]


@pytest.mark.parametrize("stride, out", [(1, 5), (2, 3)])
def test_7x7_with_a_3x3_filter_at_strides_that_fit(client, stride, out):
    answer = conv(client, w=7, f=3, s=stride)
    assert answer["fits"] and answer["output_shape"] == [out, out, 1]


def test_stride_3_does_not_fit_7x7_and_the_route_says_what_would(client):
    answer = conv(client, w=7, f=3, s=3)
    width = answer["axes"]["width"]
    assert not answer["fits"] and answer["output_shape"] is None and answer["flops"] is None
    assert width["value"] == "2.33" and width["floor"] == 2 and width["dropped"] == 1
    assert width["strides"] == [1, 2, 4] and width["pads"] == [1] and width["sizes"] == [6, 9]
    assert answer["message"].startswith("(7 - 3 + 2*0)/3 + 1 = 2.33 is not an integer")
    assert answer["params"]["total"] == 10          # parameters do not depend on the fit


def test_alexnet_conv1_fits_227_and_not_224(client):
    fits = conv(client, w=227, f=11, s=4, c_in=3, c_out=96)
    assert fits["output_shape"] == [55, 55, 96] and fits["params"]["total"] == 34944
    refused = conv(client, w=224, f=11, s=4, c_in=3, c_out=96)
    width = refused["axes"]["width"]
    assert not refused["fits"] and width["value"] == "54.25"
    assert width["sizes"] == [223, 227] and width["pads"] == []   # 213 + 2P is always odd
    assert width["strides"] == [1, 3, 71, 213]


def test_a_filter_larger_than_the_padded_input(client):
    answer = conv(client, w=3, h=5, f=9)
    width, height = answer["axes"]["width"], answer["axes"]["height"]
    assert not answer["fits"] and width["floor"] is None and width["value"] is None
    assert (width["max_f"], width["min_pad"]) == (3, 3)
    assert (height["max_f"], height["min_pad"]) == (5, 2)
    assert answer["message"].startswith("the filter width 9 is larger than the padded input")


def test_defaults_height_is_the_width(client):
    answer = conv(client, w=9, f=3)
    assert answer["case"] == {"w": 9, "h": 9, "f": 3, "s": 1, "p": 0, "c_in": 1, "c_out": 1}


def _checked(case: dict) -> tuple[list | None, int | None, str | None]:
    """What the spec checker and the calculator make of a net with this conv: (output shape,
    conv params, refusal message)."""
    layers = [{"type": "input", "out_sx": case["w"], "out_sy": case["h"],
               "out_depth": case["c_in"]},
              {"type": "conv", "sx": case["f"], "filters": case["c_out"], "stride": case["s"],
               "pad": case["p"]},
              {"type": "softmax", "num_classes": 2}]
    try:
        spec = parse_spec(layers, budget=None)
    except SpecError as exc:
        return None, None, exc.message
    row = summarize(spec)["layers"][1]
    return row["out_shape"], row["params"], None


def _agrees_with_the_spec_checker(case: dict) -> None:
    answer = conv_numbers(case)
    shape, params, message = _checked(case)
    assert answer["output_shape"] == shape, case
    assert answer["fits"] == (message is None), case
    if message is None:
        assert answer["params"]["total"] == params
    else:      # the first axis refused (width when both) is the one the checker names
        assert message.endswith(answer["message"]), (message, answer["message"])
    for axis in answer["axes"].values():
        size, f, p = axis["size"], case["f"], case["p"]
        for stride in axis["strides"]:
            assert (size - f + 2 * p) % stride == 0
        for pad in axis["pads"]:
            assert (size - f + 2 * pad) % case["s"] == 0 and pad <= f - 1
        for other in axis["sizes"]:
            assert (other - f + 2 * p) % case["s"] == 0 and other >= 1
        if axis["min_pad"] is not None:
            assert size + 2 * axis["min_pad"] >= f


def test_agrees_with_the_spec_checker_and_calculator_on_a_grid():
    for w, f, s, p in itertools.product((1, 5, 7, 32, 224, 227), (1, 3, 5, 11), (1, 2, 3, 4),
                                        (0, 1, 2)):
        _agrees_with_the_spec_checker({"w": w, "h": w, "f": f, "s": s, "p": p, "c_in": 3,
                                       "c_out": 10})


@HYPOTHESIS
@given(st.fixed_dictionaries({name: st.integers(low, high)
                              for name, (low, high, _) in FIELDS.items()}))
def test_agrees_with_the_spec_checker_for_any_case_in_bounds(case):
    _agrees_with_the_spec_checker(case)


@pytest.mark.parametrize("query, field", [
    ("f=3", "w"), ("w=7", "f"), ("w=&f=3", "w"), ("w=abc&f=3", "w"), ("w=7&f=3.0", "f"),
    ("w=7&f=1e1", "f"), ("w=7&f=3&s=0", "s"), ("w=7&f=3&p=-1", "p"), ("w=0&f=1", "w"),
    ("w=257&f=1", "w"), ("w=7&f=33", "f"), ("w=7&f=3&c_in=4097", "c_in"),
    ("w=7&f=3&c_out=0", "c_out"), ("w=7&f=3&h=" + "9" * 5000, "h"), ("w=%D9%A3&f=1", "w"),
    ("w=7&f=3&stride=2", "stride"), ("w=7&f=3&s=1&s=2", "s"), ("w=+7&f=3", "w"),
    ("w=7&f=3&s=%00", "s"), ("w=7&f=3&<script>=1", "<script>"),
])
def test_bad_queries_are_refused_naming_the_field(client, query, field):
    body = assert_error(client.get(f"/api/conv?{query}"), 422, "invalid_conv")
    assert body["field"] == field and body["detail"].startswith(field)
    assert len(body["detail"]) < 200


@HYPOTHESIS
@given(st.sampled_from(list(FIELDS)), st.text(max_size=30))
def test_any_text_in_any_field_is_an_answer_or_a_422_naming_it(client, name, text):
    response = client.get("/api/conv", params={"w": "9", "f": "3", name: text})
    if response.status_code == 200:     # an integer in bounds, or empty: the default
        assert text == "" or str(response.json()["case"][name]) == text
    else:
        body = assert_error(response, 422, "invalid_conv")
        assert body["field"] == name
