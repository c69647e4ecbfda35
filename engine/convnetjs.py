"""ConvNetJS interop: import a `Net.toJSON()` document, export ours where ConvNetJS has the layers.

ConvNetJS stores volumes as {"sx", "sy", "depth", "w"} with w indexed ((sx*y)+x)*depth+d (HWC);
`JSON.stringify` of its Float64Array `w` gives an object with numeric keys, so both a list and
such an object are read. Our conv weights are (F, C, KH, KW) and our fc weights multiply the
input flattened in (C, H, W) order, so import and export transpose. A ConvNetJS net sees
pixel/255 - 0.5, which is our preprocessing with mean 127.5 and std 255 (pixel units).

Missing keys are read as ConvNetJS's own fromJSON reads them (pad 0, l1_decay_mul and
l2_decay_mul 1), so files from older versions import as ConvNetJS would load them.

Dropout: ConvNetJS drops without rescaling while training and multiplies by (1 - p) when
predicting; ours is inverted dropout (the identity when predicting). Import multiplies the
weights of the next conv or fc layer by (1 - p) and export divides them again, so both compute
the same probabilities (ConvNetJS's prebuilt convnet.js multiplies by p instead, a bug; for
its default p = 0.5 the two agree). Export also folds a net's own input normalisation (a
snapshot's preprocess) into its first layer, as ConvNetJS only ever feeds pixel/255 - 0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import values
from engine.calculator import param_shapes
from engine.net import Net
from engine.snapshot import Snapshot, SnapshotError
from engine.spec import SpecError, parse_spec
from engine.spec_layers import MAX_INT
from engine.values import show

CONVNETJS_PREPROCESS = {"mean": [127.5, 127.5, 127.5], "std": [255.0, 255.0, 255.0]}
LOSS_TYPES = ("softmax", "svm", "regression")
SIMPLE_TYPES = ("relu", "sigmoid", "tanh")
# f(c * x) = c * f(x) for c > 0: a dropout's scale can move through these to the next weights.
SCALE_THROUGH = ("relu", "pool", "maxout", "dropout")


class ConvNetJSError(SnapshotError):
    """A ConvNetJS document that cannot be imported (or a net that cannot be exported)."""


def _number(value: Any, where: str) -> float:
    number = values.real(value)
    if number is None:
        raise ConvNetJSError(f"{where}: expected a finite number, got {show(value)}", where)
    return number


def _int(layer: dict, key: str, where: str, default: int | None = None) -> int:
    value = layer.get(key, default)
    if type(value) is not int or abs(value) > MAX_INT:
        raise ConvNetJSError(f"{where}: '{key}' must be an integer, got {show(value)}",
                             f"{where}.{key}")
    return value


def read_vol(vol: Any, where: str, limit: int | None = None) -> np.ndarray:
    """A ConvNetJS Vol -> float64 array (depth, sy, sx); `limit`: the most values it may hold
    (what the layer needs), checked before any is read."""
    if not isinstance(vol, dict):
        raise ConvNetJSError(f"{where}: expected a Vol object with sx, sy, depth and w")
    sx, sy, depth = (_int(vol, k, where) for k in ("sx", "sy", "depth"))
    if min(sx, sy, depth) < 1:
        raise ConvNetJSError(f"{where}: sx, sy and depth must be positive")
    w = vol.get("w")
    count = sx * sy * depth
    if limit is not None and count > limit:
        raise ConvNetJSError(f"{where}: {sx}x{sy}x{depth} values where the layer takes "
                             f"{limit:,}")
    if isinstance(w, dict):
        try:
            values = [w[str(i)] for i in range(count)]
        except KeyError as exc:
            raise ConvNetJSError(f"{where}: w is missing index {exc.args[0]}") from None
        if len(w) != count:
            raise ConvNetJSError(f"{where}: w has {len(w)} entries, expected {count}")
    elif isinstance(w, list):
        if len(w) != count:
            raise ConvNetJSError(f"{where}: w has {len(w)} entries, expected {count}")
        values = w
    else:
        raise ConvNetJSError(f"{where}: w must be a list or an object with numeric keys")
    flat = np.array([_number(v, f"{where}.w") for v in values], dtype=np.float64)
    return flat.reshape(sy, sx, depth).transpose(2, 0, 1)


def write_vol(arr_chw: np.ndarray) -> dict[str, Any]:
    depth, sy, sx = arr_chw.shape
    return {"sx": sx, "sy": sy, "depth": depth,
            "w": [float(v) for v in np.asarray(arr_chw, np.float64).transpose(1, 2, 0).ravel()]}


def _user_layer(layer: dict, where: str) -> dict | None:
    """The user-level spec object for one ConvNetJS layer (None: folded into the loss layer)."""
    kind = layer.get("layer_type")
    if kind == "input":
        return {"type": "input", "out_sx": _int(layer, "out_sx", where),
                "out_sy": _int(layer, "out_sy", where),
                "out_depth": _int(layer, "out_depth", where)}
    if kind == "conv":
        return {"type": "conv", "sx": _int(layer, "sx", where), "sy": _int(layer, "sy", where),
                "filters": _int(layer, "out_depth", where), "stride": _int(layer, "stride", where),
                "pad": _int(layer, "pad", where, 0), "rounding": "floor",
                "l1_decay_mul": _number(layer.get("l1_decay_mul", 1.0), where),
                "l2_decay_mul": _number(layer.get("l2_decay_mul", 1.0), where)}
    if kind == "fc":
        return {"type": "fc", "num_neurons": _int(layer, "out_depth", where),
                "l1_decay_mul": _number(layer.get("l1_decay_mul", 1.0), where),
                "l2_decay_mul": _number(layer.get("l2_decay_mul", 1.0), where)}
    if kind == "pool":
        return {"type": "pool", "sx": _int(layer, "sx", where), "sy": _int(layer, "sy", where),
                "stride": _int(layer, "stride", where), "pad": _int(layer, "pad", where, 0),
                "rounding": "floor"}  # ConvNetJS floors output sizes
    if kind in SIMPLE_TYPES:
        return {"type": kind}
    if kind == "maxout":
        return {"type": "maxout", "group_size": _int(layer, "group_size", where)}
    if kind == "dropout":
        return {"type": "dropout", "drop_prob": _number(layer.get("drop_prob"), where)}
    if kind == "lrn":
        return {"type": "lrn", **{k: _number(layer.get(k), where) for k in ("k", "alpha", "beta")},
                "n": _int(layer, "n", where)}
    if kind in ("softmax", "svm"):
        return {"type": kind, "num_classes": _int(layer, "out_depth", where)}
    if kind == "regression":
        return {"type": kind, "num_neurons": _int(layer, "out_depth", where)}
    raise ConvNetJSError(f"{where}: layer_type {show(kind)} is not supported "
                         f"(known: input, conv, fc, pool, relu, sigmoid, tanh, maxout, dropout, "
                         f"lrn, softmax, svm, regression)")


def import_convnetjs(doc: Any, classes: list[str] | None = None) -> Snapshot:
    """A ConvNetJS `Net.toJSON()` document -> a Snapshot (validated like our own). Every
    filter is read and checked against the shapes the spec implies (arithmetic) before
    anything the size of the net is allocated."""
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list) or not doc["layers"]:
        raise ConvNetJSError("a ConvNetJS net is an object with a non-empty 'layers' list")
    layers = doc["layers"]
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise ConvNetJSError(f"layers[{i}]: expected an object")
    user = []
    for i, layer in enumerate(layers):
        nxt = layers[i + 1].get("layer_type") if i + 1 < len(layers) else None
        if layer.get("layer_type") == "fc" and nxt in LOSS_TYPES:
            continue  # our loss layers bring their own fc, at this same index
        user.append(_user_layer(layer, f"layers[{i}] ({show(layer.get('layer_type'))})"))
    try:
        spec = parse_spec(user)
    except SpecError as exc:
        raise ConvNetJSError(f"the ConvNetJS net does not make a valid spec: {exc}") from None
    if len(spec.layers) != len(layers):
        raise ConvNetJSError("the ConvNetJS layer list does not line up with its spec "
                             f"({len(layers)} layers, {len(spec.layers)} after parsing)")
    shapes = param_shapes(spec)[0]
    factors = dropout_factors(spec.layers)
    params = {}
    for i, (layer, d) in enumerate(zip(layers, spec.layers)):
        if d["type"] not in ("conv", "fc"):
            continue
        where = f"layers[{i}] ({d['type']})"
        w = _read_filters(layer.get("filters"), d, shapes[f"{i}.w"], where) * factors.get(i, 1.0)
        b = read_vol(layer.get("biases"), f"{where}.biases", limit=shapes[f"{i}.b"][0]).ravel()
        if b.shape != shapes[f"{i}.b"]:
            raise ConvNetJSError(f"{where}: {b.size} biases for {shapes[f'{i}.b'][0]} outputs")
        for name, arr in ((f"{i}.w", w), (f"{i}.b", b)):
            with np.errstate(over="ignore"):
                params[name] = arr.astype(np.float32)
            if not np.isfinite(params[name]).all():
                raise ConvNetJSError(f"parameter {name}: values too large for float32")
    n_out = spec.num_outputs
    names = list(classes) if classes and len(classes) == n_out else [str(k) for k in range(n_out)]
    return Snapshot(spec=spec, params=params, buffers={}, preprocess=dict(CONVNETJS_PREPROCESS),
                    classes=names, meta={"imported_from": "convnetjs"})


def _read_filters(filters: Any, d: dict, shape: tuple, where: str) -> np.ndarray:
    """A conv's or fc's ConvNetJS filters -> our weight array of `shape` (checked filter by
    filter)."""
    count = shape[0]
    if not isinstance(filters, list) or len(filters) != count:
        raise ConvNetJSError(f"{where}: expected {count} filters")
    c, h, wd = d["in_shape"]
    # conv: (C, sy, sx) per filter. fc: any Vol of C*H*W values over the input in ConvNetJS's
    # (H, W, C) order (it writes 1x1xN), which we hold in (C, H, W) order.
    need = shape[1:] if d["type"] == "conv" else (c * h * wd,)
    vols = []
    for j, f in enumerate(filters):
        vol = read_vol(f, f"{where}.filters[{j}]", limit=int(np.prod(need)))
        got = vol.shape if d["type"] == "conv" else (vol.size,)
        if got != tuple(need):
            raise ConvNetJSError(f"{where}.filters[{j}]: shape {got} (depth, sy, sx), the layer "
                                 f"needs {tuple(need)}")
        vols.append(vol)
    if d["type"] == "conv":
        return np.stack(vols)
    hwc = np.stack([vol.transpose(1, 2, 0).ravel() for vol in vols]).reshape(count, h, wd, c)
    return hwc.transpose(0, 3, 1, 2).reshape(count, -1)


def dropout_factors(defs: list[dict]) -> dict[int, float]:
    """{index of a conv/fc layer: (1 - p) of the dropout layers before it}, from a spec's
    layer defs: see the module docstring. Refuses a dropout whose scale cannot reach a conv
    or fc unchanged."""
    factors: dict[int, float] = {}
    types = [d["type"] for d in defs]
    for i, d in enumerate(defs):
        if d["type"] != "dropout":
            continue
        j = i + 1
        while j < len(types) and types[j] in SCALE_THROUGH:
            j += 1
        if j == len(types) or types[j] not in ("conv", "fc") or d["drop_prob"] >= 1:
            raise ConvNetJSError(f"layer {i} (dropout): ConvNetJS and this engine scale dropout "
                                 "differently, which can only be reconciled when a conv or fc "
                                 "layer follows it (through relu, pool or maxout only)")
        factors[j] = factors.get(j, 1.0) * (1.0 - d["drop_prob"])
    return factors


def _export_weights(net: Net, preprocess: dict | None, approximate: bool
                    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{layer index: (w, b)} in float64 for every conv and fc, as ConvNetJS must hold them:
    undo the dropout factors (see dropout_factors) and fold the input normalisation."""
    weights = {}
    factors = dropout_factors(net.spec.layers)
    for i, layer in enumerate(net.layers):
        if layer.type in ("conv", "fc") and "b" in layer.params:
            weights[i] = (layer.params["w"].astype(np.float64) / factors.get(i, 1.0),
                          layer.params["b"].astype(np.float64))
    if preprocess is None or preprocess == CONVNETJS_PREPROCESS:
        return weights
    # ours = (pixel - mean) / std = scale * theirs + shift, with theirs = pixel/255 - 0.5
    mean, std = (np.asarray(preprocess[k], np.float64) for k in ("mean", "std"))
    scale, shift = 255.0 / std, (127.5 - mean) / std
    first = net.layers[1]
    if first.type not in ("conv", "fc") or 1 not in weights:
        raise ConvNetJSError("ConvNetJS feeds its nets pixel/255 - 0.5; this net's inputs were "
                             "normalised otherwise, which can only be folded into a first conv "
                             "or fc layer (with a bias)")
    padded = first.type == "conv" and (first.d["pad_x"] or first.d["pad_y"])
    if padded and np.any(shift != 0) and not approximate:
        raise ConvNetJSError("the first conv zero-pads inputs normalised with this data set's "
                             "mean, which ConvNetJS (pixel/255 - 0.5) cannot reproduce exactly; "
                             "export with approximate=True to accept small differences near "
                             "the image border")
    w, b = weights[1]
    c, h, wd = first.in_shape
    w_chw = w.reshape(w.shape[0], c, -1)                   # conv (F, C, taps), fc (K, C, H*W)
    weights[1] = ((w_chw * scale[None, :, None]).reshape(w.shape),
                  b + (w_chw * shift[None, :, None]).sum(axis=(1, 2)))
    return weights


def export_convnetjs(net: Net, preprocess: dict | None = None, *,
                     approximate: bool = False) -> dict[str, Any]:
    """Our net as a ConvNetJS `Net.toJSON()` document; refuses layers ConvNetJS lacks.

    `preprocess` is the normalisation the net was trained with (a snapshot's): ConvNetJS feeds
    pixel/255 - 0.5, so any other is folded into the first conv or fc. That is exact unless
    that conv zero-pads (its padding would then stand for another colour than ConvNetJS's);
    such a net is refused unless `approximate` (outputs differ near the image border).
    """
    weights = _export_weights(net, preprocess, approximate)
    out = []
    for i, layer in enumerate(net.layers):
        d = layer.d
        c, h, w = layer.out_shape
        base = {"out_depth": c, "out_sx": w, "out_sy": h, "layer_type": layer.type}
        kind = layer.type
        if kind == "conv":
            if d["stride_x"] != d["stride_y"] or d["pad_x"] != d["pad_y"] or not d["bias"]:
                raise ConvNetJSError(f"layer {i} (conv): ConvNetJS needs equal x/y stride and "
                                     "pad and a bias")
            filters, biases = weights[i]
            base.update(sx=d["sx"], sy=d["sy"], stride=d["stride_x"], pad=d["pad_x"],
                        in_depth=layer.in_shape[0], l1_decay_mul=d["l1_decay_mul"],
                        l2_decay_mul=d["l2_decay_mul"],
                        filters=[write_vol(f) for f in filters],
                        biases=write_vol(biases.reshape(-1, 1, 1)))
        elif kind == "fc":
            if not d["bias"]:
                raise ConvNetJSError(f"layer {i} (fc): ConvNetJS fc layers have a bias")
            ci, hi, wi = layer.in_shape
            filters, biases = weights[i]
            filters = filters.reshape(-1, ci, hi, wi).transpose(0, 2, 3, 1)
            base.update(num_inputs=ci * hi * wi, l1_decay_mul=d["l1_decay_mul"],
                        l2_decay_mul=d["l2_decay_mul"],
                        filters=[{"sx": 1, "sy": 1, "depth": ci * hi * wi,
                                  "w": [float(v) for v in f.ravel()]} for f in filters],
                        biases=write_vol(biases.reshape(-1, 1, 1)))
        elif kind == "pool":
            if d["mode"] != "max" or d["stride_x"] != d["stride_y"] or d["pad_x"] != d["pad_y"]:
                raise ConvNetJSError(f"layer {i} (pool): ConvNetJS pools are max pools with "
                                     "equal x/y stride and pad")
            base.update(sx=d["sx"], sy=d["sy"], stride=d["stride_x"], pad=d["pad_x"],
                        in_depth=layer.in_shape[0])
        elif kind == "maxout":
            base.update(group_size=d["group_size"])
        elif kind == "dropout":
            base.update(drop_prob=d["drop_prob"])
        elif kind == "lrn":
            base.update(k=d["k"], n=d["n"], alpha=d["alpha"], beta=d["beta"])
        elif kind in LOSS_TYPES:
            base.update(num_inputs=layer.in_shape[0])
        elif kind not in ("input",) + SIMPLE_TYPES:
            raise ConvNetJSError(f"layer {i} ({kind}): ConvNetJS has no {kind} layer, so this "
                                 "net cannot be exported to it")
        out.append(base)
    return {"layers": out}
