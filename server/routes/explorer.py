"""The convolution explorer's JSON twin: GET /api/conv?w=&h=&f=&s=&p=&c_in=&c_out= answers
with the numbers the page's explorer (static/js/explorer.js) shows for one convolution: the
output size per axis, (W - F + 2P)/S + 1, whether the stride fits and what would fit instead
(the spec checker's own rule and words: engine/spec/windows.py), and the parameter count and
FLOPs (the architecture calculator's: engine/calculator.py).

Arithmetic only, on bounded integers: nothing is kept and nothing reaches the worker. The
bounds cover the lecture's cases (AlexNet's 227x227 input, 11x11 filters, VGG's 512 and
4096 channels) and keep the page's drawing readable; the page holds the same ones (a test
compares them). A query is refused, naming its field, for a missing, malformed, repeated,
unknown or out-of-range parameter.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from engine.calculator import own_flops, own_params
from engine.spec.windows import AXIS_WORDS, check_axis, stride_fixes, window_out
from server.auth import PUBLIC
from server.errors import ApiError

router = APIRouter(prefix="/api", tags=["explorer"])

# name: (smallest, largest, default; None: required, "w": as w)
FIELDS = {
    "w": (1, 256, None), "h": (1, 256, "w"), "f": (1, 32, None), "s": (1, 32, 1),
    "p": (0, 32, 0), "c_in": (1, 4096, 1), "c_out": (1, 4096, 1),
}
WORDS = {"w": "the input width W", "h": "the input height H", "f": "the filter size F",
         "s": "the stride S", "p": "the zero padding P", "c_in": "the input channels",
         "c_out": "the output channels (filters)"}
MAX_DIGITS = 12          # longer is out of range anyway; int() of it costs nothing
SHOWN_CHARS = 24         # of a refused value, in the error's sentence


def _refuse(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_conv", f"{field}: {message}", field=field)


def read_case(query) -> dict[str, int]:
    """The query's seven integers, each within FIELDS's bounds, or a 422 naming the field."""
    for key in query.keys():
        if key not in FIELDS:
            raise _refuse(key[:SHOWN_CHARS], f"unknown parameter; this address takes "
                                             f"{', '.join(FIELDS)}")
        if len(query.getlist(key)) > 1:
            raise _refuse(key, "given more than once")
    case: dict[str, int] = {}
    for name, (low, high, default) in FIELDS.items():
        text = query.get(name)
        if text is None or text == "":
            if default is None:
                raise _refuse(name, f"{WORDS[name]} is required (an integer from {low} to "
                                    f"{high})")
            case[name] = case[default] if isinstance(default, str) else default
            continue
        digits = text[1:] if text.startswith("-") else text
        if not (digits.isascii() and digits.isdigit()):
            raise _refuse(name, f"{WORDS[name]} must be an integer from {low} to {high}, got "
                                f"{text[:SHOWN_CHARS]!r}")
        value = int(text) if len(digits) <= MAX_DIGITS else None
        if value is None or not low <= value <= high:
            raise _refuse(name, f"{WORDS[name]} must be from {low} to {high}, got "
                                f"{text[:SHOWN_CHARS]}")
        case[name] = value
    return case


def axis_numbers(size: int, f: int, pad: int, stride: int, axis: str) -> dict:
    """One axis: the padded size, the numerator W - F + 2P, whether the stride fits, the output
    size (exact when it fits; `floor` is what flooring, as PyTorch does, would give) and, when
    it does not fit, the spec checker's suggestions and its message."""
    padded, numerator = size + 2 * pad, size - f + 2 * pad
    problem = check_axis(size, f, pad, stride, "exact", axis=axis, pool=False)
    out = {"size": size, "padded": padded, "numerator": numerator, "fits": problem is None,
           "out": None, "floor": None, "value": None, "strides": [], "pads": [], "sizes": [],
           "dropped": 0, "max_f": None, "min_pad": None,
           "message": problem[1] if problem else None}
    if f > padded:       # no window fits at all: a smaller filter or more padding
        out["max_f"] = padded
        need = (f - size + 1) // 2
        out["min_pad"] = need if need <= f - 1 else None
        return out
    out["floor"] = window_out(size, f, pad, stride)
    if problem is None:
        out["out"] = out["floor"]
        out["value"] = str(out["out"])
    else:
        out.update(stride_fixes(size, f, pad, stride, pool=False))
    return out


def conv_numbers(case: dict[str, int]) -> dict:
    """What GET /api/conv answers for a case read by read_case."""
    w, h, f, s, p, c_in, c_out = (case[k] for k in FIELDS)
    axes = {AXIS_WORDS["x"][0]: axis_numbers(w, f, p, s, "x"),
            AXIS_WORDS["y"][0]: axis_numbers(h, f, p, s, "y")}
    width, height = axes["width"], axes["height"]
    fits = width["fits"] and height["fits"]
    layer = {"type": "conv", "in_shape": (c_in, h, w), "filters": c_out, "sx": f, "sy": f,
             "bias": True, "out_shape": (c_out, height["out"], width["out"])}
    params, formula = own_params(layer)
    return {
        "case": case,
        "axes": axes,
        "fits": fits,
        "output_shape": [height["out"], width["out"], c_out] if fits else None,
        "params": {"weights": f * f * c_in * c_out, "biases": c_out, "total": params,
                   "per_filter": f * f * c_in + 1, "formula": formula},
        "flops": own_flops(layer) if fits else None,
        "message": width["message"] or height["message"],
        "limits": {name: [low, high] for name, (low, high, _) in FIELDS.items()},
    }


def _query(name: str):
    """A parameter as /docs lists it (FastAPI checks its type and bounds first); read_case
    then reads the raw query by the stricter rules (digits only, no repeats, no unknown
    keys), so every refusal names its field with one code."""
    low, high, default = FIELDS[name]
    return Query(... if default is None else None, ge=low, le=high,
                 description=f"{WORDS[name]}, an integer from {low} to {high}"
                             + ("" if default is None else f" (default: {default})"))


@router.get("/conv", dependencies=[PUBLIC],
            summary="one convolution's arithmetic: output size per axis, (W - F + 2P)/S + 1, "
                    "whether the stride fits and what would, parameters and FLOPs")
async def get_conv(request: Request, w: int = _query("w"), h: int | None = _query("h"),
                   f: int = _query("f"), s: int | None = _query("s"),
                   p: int | None = _query("p"), c_in: int | None = _query("c_in"),
                   c_out: int | None = _query("c_out")):
    return conv_numbers(read_case(request.query_params))
