"""Live questions from the lecture, made from the running net (server/polls.py holds the room
and its answers).

Questions (`layer_question`, `predict_question`, `custom_question`) are arithmetic on the
calculator's table (engine/calculator.py) and the net's normalised spec: the right answer is
the calculator's own figure (the output volume, parameter count, activation memory) or the
spec checker's (engine/spec/windows.py: whether a stride fits), and the wrong options are the
lecture's classic mistakes, each labelled so the reveal can say what it forgot: the padding,
the bias, the +1, the depth, the 4 bytes of a float32. Where the mistakes give fewer than
three distinct wrong options (no padding, stride 1), near misses fill in. The option order is
shuffled per question.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from engine.calculator import LECTURE_ACTIVATIONS, flat_rows
from engine.spec.windows import check_axis

KINDS = ("output_size", "params", "stride_fits", "memory", "predict", "custom")
LAYER_KINDS = ("output_size", "params", "stride_fits", "memory")
WRONG_OPTIONS = 3                    # a layer question has 4 options
PREDICT_OPTIONS = 4
STRIDES = range(2, 13)               # strides a stride_fits question may offer
NONE_FIT = "none of these"
MAX_QUESTION_CHARS = 300             # custom questions (the Pydantic bounds use them)
MAX_OPTION_CHARS = 120
MIN_OPTIONS, MAX_OPTIONS = 2, 6
NEAR = (1, -1, 2, -2, 3, 4, 5)         # near misses, where the mistakes give too few options
NEAR_MISS = "a near miss"


class QuestionError(ValueError):
    """A question that cannot be asked of this layer; `field` names the culprit."""

    def __init__(self, message: str, field: str = "layer") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Question:
    kind: str
    text: str
    options: tuple[str, ...]
    answer: int | None              # None: a custom question with no right answer
    explain: str = ""               # the arithmetic, shown when the question closes
    mistakes: tuple[str | None, ...] = ()   # per option: the mistake that gives it
    layer: str | None = None
    image: str | None = None        # predict: the test image, base64 PNG
    reveal: dict = field(default_factory=dict)   # predict: the net's probabilities, the truth


# --- the net: rows of the calculator's table and the normalised layers, by index ----------
def flat_layers(spec) -> dict[str, dict]:
    """The spec's normalised layers by the calculator's index ("5", "5.layers.0", ...)."""
    out: dict[str, dict] = {}

    def visit(d: dict, index: str) -> None:
        out[index] = d
        chains = []
        if d["type"] == "residual":
            chains = [("layers", d["layers"]), ("shortcut", d["shortcut"])]
        elif d["type"] == "concat":
            chains = [(f"branches.{b}", chain) for b, chain in enumerate(d["branches"])]
        for name, chain in chains:
            for j, child in enumerate(chain):
                visit(child, f"{index}.{name}.{j}")

    for i, d in enumerate(spec.layers):
        visit(d, str(i))
    return out


SUITS = {"output_size": ("conv", "pool"), "stride_fits": ("conv", "pool"),
         "params": ("conv", "fc", "batchnorm"),
         "memory": LECTURE_ACTIVATIONS}     # the layers whose outputs the lecture counts


def layers_for(kind: str, rows: dict[str, dict], layers: dict[str, dict]) -> list[str]:
    """The indices a layer question of `kind` can ask about (the page's layer choices)."""
    types = SUITS[kind]
    return [i for i, row in rows.items()
            if row["type"] in types
            and (kind != "stride_fits" or len(failing_strides(layers[i])) >= WRONG_OPTIONS)]


def choices(spec, summary: dict) -> dict[str, list[str]]:
    """Per layer kind, the layers it can ask about."""
    rows, layers = flat_rows(summary), flat_layers(spec)
    return {kind: layers_for(kind, rows, layers) for kind in LAYER_KINDS}


# --- formatting ---------------------------------------------------------------------------
def _vol(h, w, c) -> str:
    return f"{h}×{w}×{c}"


def _pair(y: int, x: int, word: str) -> str:
    return f"{word} {y}" if y == x else f"{word} {y} down, {x} across"


def _bytes(n: int) -> str:
    for unit, size in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            amount = f"{n / size:.1f}".removesuffix(".0")
            return f"{n:,} bytes ({amount} {unit})"
    return f"{n:,} bytes"


def _window(d: dict) -> str:
    c, h, w = d["in_shape"]
    size = f"{d['sy']}×{d['sx']}"
    what = (f"a conv layer with {d['filters']} filters of {size}" if d["type"] == "conv"
            else f"a {size} {d.get('mode', 'max')} pool")
    return f"{what}, on a {_vol(h, w, c)} input"


def _shuffled(right: str, wrong: list[tuple[str, str]], rng: random.Random,
              last: str | None = None) -> tuple[tuple[str, ...], int, tuple]:
    """(options, the right one's position, mistakes) with the options in random order
    (`last`, when given, stays last: "none of these")."""
    entries = [(right, None)] + wrong
    rng.shuffle(entries)
    if last is not None:
        entries = [e for e in entries if e[0] != last] + [e for e in entries if e[0] == last]
    options = tuple(e[0] for e in entries)
    return options, options.index(right), tuple(e[1] for e in entries)


def _distinct(right: str, candidates, count: int = WRONG_OPTIONS) -> list[tuple[str, str]]:
    seen, out = {right}, []
    for text, why in candidates:
        if text not in seen and len(out) < count:
            seen.add(text)
            out.append((text, why))
    return out


# --- the layer questions --------------------------------------------------------------------
def _axis_out(size: int, f: int, pad: int, stride: int, floor: bool) -> int | None:
    """(size - f + 2 pad)/stride + 1 when that is a whole positive number (floored for a
    layer that floors), else None."""
    n = size - f + 2 * pad
    if n < 0 or (n % stride and not floor):
        return None
    return n // stride + 1


def output_size_question(index: str, d: dict, row: dict, rng: random.Random) -> Question:
    c, h, w = d["in_shape"]
    h_out, w_out, c_out = row["out_shape"]
    sy, sx, py, px, fy, fx = (d["stride_y"], d["stride_x"], d["pad_y"], d["pad_x"], d["sy"],
                              d["sx"])
    floor = d.get("rounding") == "floor"
    text = (f"Layer {index} is {_window(d)}, {_pair(sy, sx, 'stride')}, "
            f"{_pair(py, px, 'pad')}{' (rounding down, as PyTorch does)' if floor else ''}. "
            "What is its output volume (H×W×C)?")

    def shape(pad_y, pad_x, plus, divide=True, depth=c_out):
        ys = _axis_out(h, fy, pad_y, sy if divide else 1, floor)
        xs = _axis_out(w, fx, pad_x, sx if divide else 1, floor)
        if ys is None or xs is None or ys - 1 + plus < 1 or xs - 1 + plus < 1:
            return None
        return _vol(ys - 1 + plus, xs - 1 + plus, depth)

    mistakes = [(shape(0, 0, 1), "forgot the padding"),
                (shape(py, px, 0), "forgot the +1"),
                (shape(py, px, 1, depth=c) if d["type"] == "conv" else None,
                 "forgot the depth: a conv layer's output has one channel per filter"),
                (shape(py, px, 1, divide=False), "forgot to divide by the stride"),
                (_half_pad(h, w, d, floor, c_out), "padded one side only")]
    mistakes += [(_vol(h_out + k, w_out + k, c_out), NEAR_MISS) for k in NEAR
                 if min(h_out, w_out) + k >= 1]
    right = _vol(h_out, w_out, c_out)
    wrong = _distinct(right, [(t, why) for t, why in mistakes if t is not None])
    options, answer, why = _shuffled(right, wrong, rng)
    rows_text = f"({h} − {fy} + 2·{py})/{sy} + 1 = {h_out}"
    cols_text = f"({w} − {fx} + 2·{px})/{sx} + 1 = {w_out}"
    depth = (f"{c_out} filters" if d["type"] == "conv" else f"the input's {c_out} channels")
    explain = (f"{rows_text} each way, {depth}" if rows_text == cols_text
               else f"{rows_text} rows, {cols_text} columns, {depth}")
    return Question("output_size", text, options, answer, explain, why, index)


def _half_pad(h: int, w: int, d: dict, floor: bool, depth: int) -> str | None:
    ys = _axis_out(h + d["pad_y"], d["sy"], 0, d["stride_y"], floor)
    xs = _axis_out(w + d["pad_x"], d["sx"], 0, d["stride_x"], floor)
    return None if ys is None or xs is None else _vol(ys, xs, depth)


def params_question(index: str, d: dict, row: dict, rng: random.Random) -> Question:
    c, h, w = d["in_shape"]
    right = row["params"]
    if d["type"] == "conv":
        k, f = d["filters"], d["sy"] * d["sx"]
        weights = k * f * c
        text = (f"Layer {index} is {_window(d)}"
                + ("" if d["bias"] else " (no bias)") + ". How many parameters does it learn?")
        h_out, w_out, _ = row["out_shape"]
        candidates = [(weights, "forgot the bias") if d["bias"] else
                      (weights + k, "added a bias the layer does not have"),
                      (k * f + (k if d["bias"] else 0),
                       "forgot the depth: each filter spans all input channels"),
                      (k * f, "forgot the depth and the bias"),
                      (right * h_out * w_out, "no weight sharing: a filter per output position"),
                      (weights + k * c, "a bias per input channel")]
    elif d["type"] == "fc":
        k, n = d["num_neurons"], c * h * w
        text = (f"Layer {index} is a fully connected layer with {k} neurons on a "
                f"{_vol(h, w, c)} input" + ("" if d["bias"] else " (no bias)")
                + ". How many parameters does it learn?")
        candidates = [(k * n, "forgot the bias") if d["bias"] else
                      (k * n + k, "added a bias the layer does not have"),
                      (k * h * w + (k if d["bias"] else 0), "forgot the depth"),
                      (k * h * w, "forgot the depth and the bias"),
                      (n + k, "one weight per input, not per input and neuron")]
    else:
        text = (f"Layer {index} is a batch norm layer on a {_vol(h, w, c)} input. How many "
                "parameters does it learn?")
        candidates = [(c, "forgot the shift (beta): a scale and a shift per channel"),
                      (4 * c, "counted the running mean and variance, which are not learnt"),
                      (2 * c * h * w, "a scale and shift per value, not per channel")]
    candidates += [(right + k, NEAR_MISS) for k in NEAR]
    wrong = _distinct(f"{right:,}", [(f"{v:,}", why) for v, why in candidates if v > 0])
    options, answer, why = _shuffled(f"{right:,}", wrong, rng)
    explain = row["formula"].replace("x", "×")
    return Question("params", text, options, answer, explain, why, index)


def memory_question(index: str, d: dict, row: dict, rng: random.Random) -> Question:
    h, w, c = row["out_shape"]
    values, right = row["activations"], row["bytes"]
    what = "The input" if d["type"] == "input" else f"Layer {index} ({d['type']})"
    text = (f"{what} makes a {_vol(h, w, c)} volume. How much memory do its activations "
            "take for one image, stored as float32?")
    candidates = [(values, "forgot the 4 bytes of a float32"),
                  (values * 8, "8 bytes a value: float64, not float32"),
                  (h * w * 4, "forgot the depth")]
    if d["type"] in ("conv", "pool") and (d["pad_y"] or d["pad_x"]):
        _, hh, ww = d["in_shape"]
        ys = _axis_out(hh, d["sy"], 0, d["stride_y"], d.get("rounding") == "floor")
        xs = _axis_out(ww, d["sx"], 0, d["stride_x"], d.get("rounding") == "floor")
        if ys and xs:
            candidates.append((ys * xs * c * 4, "forgot the padding"))
    candidates += [(2 * right, NEAR_MISS), (right // 2, NEAR_MISS)]
    candidates += [(right + 4 * k, NEAR_MISS) for k in NEAR]
    wrong = _distinct(_bytes(right), [(_bytes(v), why) for v, why in candidates if v > 0])
    options, answer, why = _shuffled(_bytes(right), wrong, rng)
    explain = f"{h}×{w}×{c} = {values:,} values × 4 bytes = {right:,} bytes"
    return Question("memory", text, options, answer, explain, why, index)


def stride_fits(d: dict, stride: int) -> bool:
    """The spec checker's rule (engine/spec/windows.py), on both axes, as the lecture has it
    (no rounding down)."""
    _, h, w = d["in_shape"]
    pool = d["type"] == "pool"
    return (check_axis(h, d["sy"], d["pad_y"], stride, "exact", axis="y", pool=pool) is None
            and check_axis(w, d["sx"], d["pad_x"], stride, "exact", axis="x", pool=pool) is None)


def failing_strides(d: dict) -> list[int]:
    return [s for s in STRIDES if not stride_fits(d, s)]


def stride_question(index: str, d: dict, row: dict, rng: random.Random) -> Question:
    _, h, w = d["in_shape"]
    fy, fx, py, px = d["sy"], d["sx"], d["pad_y"], d["pad_x"]
    failing = failing_strides(d)
    fitting = [s for s in STRIDES if s not in failing]
    own = max(d["stride_y"], d["stride_x"])
    right = own if own in fitting else (fitting[0] if fitting else None)

    def why(s: int) -> str:
        if (h - fy) % s == 0 and (w - fx) % s == 0:
            return "fits only if you forget the padding"
        if h % s == 0 and w % s == 0:
            return "divides the input, but the formula subtracts the filter and adds the padding"
        if (h - fy + py) % s == 0 and (w - fx + px) % s == 0:
            return "fits only with the padding on one side"
        return "does not fit"

    order = sorted(failing, key=lambda s: (why(s) == "does not fit",
                                           abs(s - (right or own)), s))
    shown = sorted(order[:WRONG_OPTIONS] if right is None
                   else [right] + order[:WRONG_OPTIONS - 1])
    options = tuple(f"stride {s}" for s in shown) + (NONE_FIT,)
    answer = options.index(f"stride {right}") if right else len(options) - 1
    mistakes = tuple(None if s == right else why(s) for s in shown) + (
        None if right is None else "one of them fits",)
    text = (f"Layer {index} is {_window(d)}, {_pair(py, px, 'pad')}. Which stride fits: "
            "which makes (W − F + 2P)/S + 1 a whole number?")

    def sum_text(s):
        n_y, n_x = h - fy + 2 * py, w - fx + 2 * px
        ys = f"{n_y}/{s} + 1 = {n_y / s + 1:.4g}"
        return ys if (n_y, h) == (n_x, w) else f"{ys} and {n_x}/{s} + 1 = {n_x / s + 1:.4g}"

    explain = "; ".join(f"stride {s}: {sum_text(s)}" for s in shown)
    if right is None:
        explain += "; none of them is a whole number"
    return Question("stride_fits", text, options, answer, explain, mistakes, index)


MAKERS = {"output_size": output_size_question, "params": params_question,
          "memory": memory_question, "stride_fits": stride_question}


def layer_question(kind: str, layer: str, spec, summary: dict,
                   rng: random.Random | None = None) -> Question:
    """A question of `kind` about the layer at calculator index `layer` (QuestionError when
    there is no such layer or the kind does not apply to it)."""
    rows, layers = flat_rows(summary), flat_layers(spec)
    if layer not in rows or layer not in layers:
        raise QuestionError(f"there is no layer {layer} in this net (layers "
                            f"0..{len(summary['layers']) - 1}); {kind} can ask about "
                            f"layers {', '.join(layers_for(kind, rows, layers)) or 'none'}")
    choices = layers_for(kind, rows, layers)
    if layer not in choices:
        why = (f"almost every stride fits layer {layer} (its window covers the padded "
               f"input)" if kind == "stride_fits" and rows[layer]["type"] in SUITS[kind]
               else f"layer {layer} is of type {rows[layer]['type']}")
        raise QuestionError(f"{why}: {kind} asks about layers "
                            f"{', '.join(choices) or '(none in this net)'}")
    return MAKERS[kind](layer, layers[layer], rows[layer], rng or random.Random())


def predict_question(position: int, probs: list[float], classes: list[str], truth: int,
                     image_b64: str) -> Question:
    """Which class will the net say for this test image? The options: the net's answer,
    the true class, then the net's next likeliest, in class order."""
    ranked = sorted(range(len(probs)), key=lambda k: (-probs[k], k))
    picked = list(dict.fromkeys([ranked[0], truth] + ranked[1:]))[:PREDICT_OPTIONS]
    picked.sort()
    options = tuple(classes[k] for k in picked)
    reveal = {"truth": classes[truth], "position": position,
              "probs": [round(float(probs[k]), 4) for k in picked]}
    explain = (f"the net gives {classes[ranked[0]]} {100 * probs[ranked[0]]:.0f}%; the image "
               f"is a {classes[truth]}")
    return Question("predict", f"Which class will the net predict for test image "
                    f"#{position}?", options, picked.index(ranked[0]), explain,
                    tuple(None for _ in options), None, image_b64, reveal)


def custom_question(text: str, options: list[str], answer: int | None) -> Question:
    return Question("custom", text, tuple(options), answer, "", tuple(None for _ in options))
