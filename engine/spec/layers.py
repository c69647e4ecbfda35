"""One user-level layer object -> normalised LayerDefs: key checks, defaults, shapes, sugar.

ConvNetJS's makeLayers sugar is applied here: softmax/svm/regression get an fc in front of them,
`activation` on conv/fc appends that activation layer, `drop_prob` appends a dropout layer, and
bias_pref defaults to 0.1 before a relu. Residual and concat blocks recurse through
`normalise_chain`. Every error names the layer's index path and the field at fault.
"""

from __future__ import annotations

from typing import Any, Callable

from engine.spec.blocks import normalise_block
from engine.spec.reader import MAX_INT, REQUIRED, Reader, Shape, SpecError, closest, show
from engine.spec.windows import AXIS_WORDS, check_axis, window_out

# ConvNetJS's makeLayers writes these into every def after the first; they mean nothing here.
IGNORED_KEYS = ("in_sx", "in_sy", "in_depth")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "maxout", "leaky_relu", "gelu")
WINDOW_KEYS = ("sx", "sy", "stride", "stride_x", "stride_y", "pad", "pad_x", "pad_y", "rounding")
WEIGHT_KEYS = ("bias", "l1_decay_mul", "l2_decay_mul", "bias_pref")
SUGAR_KEYS = ("activation", "group_size", "drop_prob")
LAYER_KEYS: dict[str, tuple[str, ...]] = {
    "input": ("out_sx", "out_sy", "out_depth"),
    "conv": ("filters",) + WINDOW_KEYS + WEIGHT_KEYS + SUGAR_KEYS + ("init", "bias_epochs"),
    "fc": ("num_neurons",) + WEIGHT_KEYS + SUGAR_KEYS,
    "pool": WINDOW_KEYS + ("mode",),
    "global_avg_pool": (),
    "relu": (), "sigmoid": (), "tanh": (), "gelu": (),
    "scale": ("factor",),
    "leaky_relu": ("alpha",),
    "maxout": ("group_size",),
    "dropout": ("drop_prob",),
    "batchnorm": ("eps", "momentum", "scale", "lr_mul", "l2_decay_mul"),
    "lrn": ("k", "n", "alpha", "beta"),
    "residual": ("layers", "projection", "shortcut"),
    "concat": ("branches",),
    "softmax": ("num_classes", "label_smoothing", "bias"),
    "svm": ("num_classes",),
    "regression": ("num_neurons",),
}
LOSS_TYPES = ("softmax", "svm", "regression")
ELEMENTWISE = ("relu", "sigmoid", "tanh", "leaky_relu", "gelu", "dropout", "batchnorm", "lrn",
               "scale")
MAX_LR_MUL = 1000.0


def _window(r: Reader, in_shape: Shape, *, pool: bool) -> dict:
    """sx/sy, stride, pad (+ per-axis overrides) and rounding, checked per axis."""
    sx = r.int("sx")
    sy = r.int("sy", sx)
    stride = r.int("stride", 2 if pool else 1)
    pad = r.int("pad", 0, minimum=0)
    d = {"sx": sx, "sy": sy,
         "stride_x": r.int("stride_x", stride), "stride_y": r.int("stride_y", stride),
         "pad_x": r.int("pad_x", pad, minimum=0), "pad_y": r.int("pad_y", pad, minimum=0),
         "rounding": r.choice("rounding", ("exact", "floor"), "exact")}
    _, h, w = in_shape
    axes = {"x": (w, sx, d["pad_x"], d["stride_x"]), "y": (h, sy, d["pad_y"], d["stride_y"])}
    for axis, (size, f, p, s) in axes.items():
        problem = check_axis(size, f, p, s, d["rounding"], axis=axis, pool=pool)
        if problem:
            role, message = problem
            field = {"f": "sx" if axis == "x" or not r.has("sy") else "sy",
                     "pad": f"pad_{axis}" if r.has(f"pad_{axis}") else "pad",
                     "stride": f"stride_{axis}" if r.has(f"stride_{axis}") else "stride"}[role]
            if axes["x"] != axes["y"]:
                message = f"{AXIS_WORDS[axis][0]}: {message}"
            raise r.error(field, message)
    d["out_hw"] = (window_out(h, sy, d["pad_y"], d["stride_y"]),
                   window_out(w, sx, d["pad_x"], d["stride_x"]))
    return d


# he: N(0, 2 / fan_in); whiten: fitted to the data (engine/train/whitening.py); dirac:
# airbench94's U(+-1/sqrt(fan_in)) with an identity in the first filters (engine/layers/inits.py)
CONV_INITS = ("he", "whiten", "dirac")
MAX_WHITEN_FILTER = 5


def _check_whiten(r: Reader, path: str, in_shape: Shape, d: dict) -> None:
    """"init": "whiten" (engine/train/whitening.py) fits the filters to the input image's own
    patches, every one of them, as +/- pairs: only the first layer after the input, stride 1,
    no padding, a small filter and 2 x C x sx x sy filters."""
    c, sx, sy = in_shape[0], d["sx"], d["sy"]
    if path != "1":
        raise r.error("init", "\"whiten\" applies only to a conv right after the input "
                              "(layer 1): its filters are fitted to the image's own patches")
    if (d["stride_x"], d["stride_y"]) != (1, 1):
        raise r.error("stride", "a whitening conv (\"init\": \"whiten\") takes every "
                                "patch: it needs stride 1")
    if (d["pad_x"], d["pad_y"]) != (0, 0):
        raise r.error("pad", "a whitening conv (\"init\": \"whiten\") is fitted to patches "
                             "of the image itself, without a zero border: it needs pad 0")
    if max(sx, sy) > MAX_WHITEN_FILTER:
        raise r.error("sx", f"a whitening conv (\"init\": \"whiten\") needs a small filter, "
                            f"at most {MAX_WHITEN_FILTER}x{MAX_WHITEN_FILTER}; got {sx}x{sy}")
    wanted = 2 * c * sx * sy
    if d["filters"] != wanted:
        raise r.error("filters", f"a whitening conv (\"init\": \"whiten\") has one filter "
                                 f"per direction of its {sx}x{sy}x{c} patches and one for its "
                                 f"negative: filters must be 2 x {c} x {sx} x {sy} = {wanted}, "
                                 f"got {d['filters']}")


def _check_bias_epochs(r: Reader, d: dict) -> None:
    """"bias_epochs": N trains a whitening conv's bias for the first N epochs, then freezes it
    (engine/train/param_groups.py), as airbench94 does with N = 3."""
    if d.get("init") != "whiten":
        raise r.error("bias_epochs", "applies only to a whitening conv (\"init\": \"whiten\"), "
                                     "whose weights are fixed and whose bias trains")
    if not d["bias"]:
        raise r.error("bias_epochs", "the conv has no bias (\"bias\": false) to train")


def _batchnorm_options(r: Reader) -> dict:
    """The keys airbench94's batch norms need, present only when not the default: "scale":
    false fixes gamma at 1; "lr_mul" multiplies the learning rate of gamma and beta (their
    weight decay per step stays as l2_decay_mul makes it); "l2_decay_mul" (default 0) decays
    them."""
    out: dict = {}
    if not r.bool("scale", True):
        out["scale"] = False
    lr_mul = r.float("lr_mul", 1.0, minimum=0.0, maximum=MAX_LR_MUL, open_min=True)
    if lr_mul != 1.0:
        out["lr_mul"] = lr_mul
    l2 = r.float("l2_decay_mul", 0.0, minimum=0.0)
    if l2 != 0.0:
        out["l2_decay_mul"] = l2
    return out


def _weights(r: Reader, activation: str | None) -> dict:
    return {"bias": r.bool("bias", True),
            "l1_decay_mul": r.float("l1_decay_mul", 0.0, minimum=0.0),
            "l2_decay_mul": r.float("l2_decay_mul", 1.0, minimum=0.0),
            "bias_pref": r.float("bias_pref", 0.1 if activation == "relu" else 0.0)}


def _maxout_shape(r: Reader, in_shape: Shape, group_size: int, field: str) -> Shape:
    c, h, w = in_shape
    if c % group_size:
        raise r.error(field, f"maxout with group_size {group_size} needs a channel count "
                             f"divisible by {group_size}, but its input has {c} channels")
    return (c // group_size, h, w)


def _sugar(r: Reader, out_shape: Shape) -> list[dict]:
    """The layers ConvNetJS appends for `activation` and `drop_prob` (in that order)."""
    after = []
    activation = r.choice("activation", ACTIVATIONS, None)
    if r.has("group_size") and activation != "maxout":
        raise r.error("group_size", "only applies with \"activation\": \"maxout\"")
    if activation == "maxout":
        g = r.int("group_size", 2)
        shape = _maxout_shape(r, out_shape, g, "group_size")
        after.append({"type": "maxout", "group_size": g, "in_shape": out_shape,
                      "out_shape": shape})
        out_shape = shape
    elif activation == "leaky_relu":
        after.append({"type": "leaky_relu", "alpha": 0.01})
    elif activation is not None:
        after.append({"type": activation})
    if r.has("drop_prob"):
        after.append({"type": "dropout",
                      "drop_prob": r.float("drop_prob", minimum=0.0, maximum=1.0,
                                           open_max=True)})
    for d in after:
        d.setdefault("in_shape", out_shape)
        d.setdefault("out_shape", out_shape)
    return after


def normalise_layer(obj: Any, path: str, in_shape: Shape | None, depth: int,
                    on_layer: Callable[[dict, Reader], None]) -> list[dict]:
    """The normalised LayerDefs one user-level object stands for (sugar expanded).
    `on_layer(d, reader)` is called for every def made (the budget tally)."""
    if not isinstance(obj, dict):
        raise SpecError(f'must be an object like {{"type": "conv", ...}}, got {show(obj)}', path)
    layer_type = obj.get("type", REQUIRED)
    if layer_type is REQUIRED:
        raise SpecError("is required", path, "type")
    if not isinstance(layer_type, str) or layer_type not in LAYER_KEYS:
        hint = closest(layer_type, LAYER_KEYS) if isinstance(layer_type, str) else ""
        raise SpecError(f"unknown layer type {show(layer_type)}; {hint}known types: "
                        f"{', '.join(LAYER_KEYS)}", path, "type")
    r = Reader(obj, path, layer_type)
    known = LAYER_KEYS[layer_type] + (IGNORED_KEYS if layer_type != "input" else ())
    for key in obj:
        if not isinstance(key, str):            # JSON keys are; a Python caller's may not be
            raise r.error(None, f"keys must be strings, got {show(key)}")
        if key == "label_smoothing" and layer_type in ("svm", "regression"):
            raise r.error(key, "only a softmax layer takes label_smoothing (it smooths the "
                               "one-hot target of the cross-entropy)")
        if key != "type" and key not in known:
            listed = ", ".join(LAYER_KEYS[layer_type]) or "none besides type"
            raise r.error(key, f"unknown key for a {layer_type} layer; {closest(key, known)}"
                               f"known keys: {listed}")
    if layer_type == "input":
        d = {"type": "input", "out_sx": r.int("out_sx"), "out_sy": r.int("out_sy"),
             "out_depth": r.int("out_depth")}
        d["in_shape"] = d["out_shape"] = (d["out_depth"], d["out_sy"], d["out_sx"])
        on_layer(d, r)
        return [d]
    assert in_shape is not None
    c, h, w = in_shape
    before: list[dict] = []
    after: list[dict] = []
    if layer_type == "conv":
        win = _window(r, in_shape, pool=False)
        filters = r.int("filters")
        d = {"type": "conv", "sx": win["sx"], "sy": win["sy"], "filters": filters,
             **{k: win[k] for k in ("stride_x", "stride_y", "pad_x", "pad_y", "rounding")},
             **_weights(r, obj.get("activation")), "out_shape": (filters,) + win["out_hw"]}
        init = r.choice("init", CONV_INITS, "he")
        if init == "whiten":
            _check_whiten(r, path, in_shape, d)
        if init != "he":                                     # "he": the key stays out
            d["init"] = init
        if r.has("bias_epochs"):
            _check_bias_epochs(r, d)
            d["bias_epochs"] = r.int("bias_epochs", minimum=0)
    elif layer_type == "fc":
        k = r.int("num_neurons")
        d = {"type": "fc", "num_neurons": k, **_weights(r, obj.get("activation")),
             "out_shape": (k, 1, 1)}
    elif layer_type == "pool":
        win = _window(r, in_shape, pool=True)
        win.update(mode=r.choice("mode", ("max", "avg"), "max"))
        d = {"type": "pool", **{k: v for k, v in win.items() if k != "out_hw"},
             "out_shape": (c,) + win["out_hw"]}
    elif layer_type == "global_avg_pool":
        d = {"type": layer_type, "out_shape": (c, 1, 1)}
    elif layer_type in ("relu", "sigmoid", "tanh", "gelu"):
        d = {"type": layer_type}
    elif layer_type == "leaky_relu":
        d = {"type": layer_type, "alpha": r.float("alpha", 0.01, minimum=0.0)}
    elif layer_type == "maxout":
        g = r.int("group_size", 2)
        d = {"type": layer_type, "group_size": g,
             "out_shape": _maxout_shape(r, in_shape, g, "group_size")}
    elif layer_type == "dropout":
        d = {"type": layer_type,
             "drop_prob": r.float("drop_prob", 0.5, minimum=0.0, maximum=1.0, open_max=True)}
    elif layer_type == "batchnorm":
        d = {"type": layer_type, "eps": r.float("eps", 1e-5, minimum=0.0, open_min=True),
             "momentum": r.float("momentum", 0.1, minimum=0.0, maximum=1.0)}
        d.update(_batchnorm_options(r))
    elif layer_type == "scale":
        d = {"type": layer_type, "factor": r.float("factor")}
        if d["factor"] == 0.0:
            raise r.error("factor", "must not be 0 (the layer would erase its input)")
    elif layer_type == "lrn":
        n = r.int("n", 5)
        if n % 2 == 0:
            raise r.error("n", f"must be odd (a window centred on each channel), got {n}; "
                               f"use {n - 1} or {n + 1}")
        d = {"type": layer_type, "k": r.float("k", 2.0, minimum=0.0, open_min=True), "n": n,
             "alpha": r.float("alpha", 1e-4, minimum=0.0),
             "beta": r.float("beta", 0.75, minimum=0.0)}
    elif layer_type in ("residual", "concat"):
        d = normalise_block(r, in_shape, depth, on_layer, normalise_chain)
    else:  # loss layers: ConvNetJS puts an fc with one neuron per output in front
        key = "num_neurons" if layer_type == "regression" else "num_classes"
        k = r.int(key, minimum=1 if key == "num_neurons" else -MAX_INT)
        if key == "num_classes" and k < 2:
            raise r.error(key, f"must be at least 2 (a classifier needs two classes), got {k}")
        # softmax's "bias": false drops the bias of this fc (airbench94's head); the key stays
        # on the softmax, since user_layers leaves this fc out and parsing puts it back.
        has_bias = r.bool("bias", True) if layer_type == "softmax" else True
        fc = {"type": "fc", "num_neurons": k, "bias": has_bias, "l1_decay_mul": 0.0,
              "l2_decay_mul": 1.0, "bias_pref": 0.0, "in_shape": in_shape,
              "out_shape": (k, 1, 1)}
        before.append(fc)
        d = {"type": layer_type, key: k, "in_shape": (k, 1, 1), "out_shape": (k, 1, 1)}
        if layer_type == "softmax":
            # target = (1 - eps) * onehot + eps / K, as PyTorch's CrossEntropyLoss
            d["label_smoothing"] = r.float("label_smoothing", 0.0, minimum=0.0, maximum=1.0,
                                           open_max=True)
            if not has_bias:                # the default: the key stays out
                d["bias"] = False
    d_in, d_out = d.pop("in_shape", in_shape), d.pop("out_shape", in_shape)
    d["in_shape"], d["out_shape"] = d_in, d_out  # keys last, in this order
    if layer_type in ("conv", "fc"):
        after = _sugar(r, d["out_shape"])
    for made in before + [d] + after:
        on_layer(made, r)
    return before + [d] + after


def normalise_chain(objs: list, path: str, in_shape: Shape, depth: int,
                    on_layer: Callable[[dict, Reader], None]) -> list[dict]:
    """A list of user-level layers inside a block (no input or loss layers there)."""
    defs: list[dict] = []
    shape = in_shape
    for j, obj in enumerate(objs):
        sub = f"{path}.{j}"
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind == "input" or kind in LOSS_TYPES:
            raise SpecError(f"a {kind} layer cannot sit inside a block; only the net's first "
                            "layer is an input layer and only its last a loss layer",
                            sub, "type", kind)
        made = normalise_layer(obj, sub, shape, depth, on_layer)
        defs.extend(made)
        shape = made[-1]["out_shape"]
    return defs
