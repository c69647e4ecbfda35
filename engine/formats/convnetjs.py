"""ConvNetJS interop: import a `Net.toJSON()` document, export ours where ConvNetJS has the layers.

ConvNetJS stores volumes as {"sx", "sy", "depth", "w"} with w indexed ((sx*y)+x)*depth+d (HWC);
`JSON.stringify` of its Float64Array `w` gives an object with numeric keys, so both a list and
such an object are read. Our conv weights are (F, C, KH, KW) and our fc weights multiply the
input flattened in (C, H, W) order, so import and export transpose. A ConvNetJS net sees
pixel/255 - 0.5, which is our preprocessing with mean 127.5 and std 255 (pixel units): nets
ConvNetJS can run train on that convention here too (training_normalization), so exporting
them is exact. Missing keys are read as ConvNetJS's own fromJSON reads them (pad 0,
l1_decay_mul and l2_decay_mul 1), so files from older versions import as ConvNetJS loads them.

Dropout: ConvNetJS drops without rescaling while training and, when predicting, multiplies by
drop_prob (convnet_layers_dropout.js), where the expected value of what training saw is
(1 - drop_prob); ours is inverted dropout (the identity when predicting). Both scales can be
moved into the weights of the next conv or fc (relu, max pool and maxout commute with a
positive factor), which is how dropout crosses over:
- import, dropout_scale "1-p" (the default for files ConvNetJS wrote): the next weights are
  multiplied by 1 - p, so the net predicts what ConvNetJS's training meant; "p" multiplies
  them by p and reproduces ConvNetJS's own predictions exactly (they agree when p = 0.5);
- export divides the next weights by p, so ConvNetJS predicts exactly what we do, and notes
  that in the document ("convnet_demo": {"dropout_scale": "p"}; ConvNetJS reads only
  "layers"), which import then follows, so our own files round-trip exactly. A dropout with
  p = 0 is the identity in both engines and is left out.
Export folds a net's own input normalisation (a snapshot's preprocess) into its first layer;
that is exact unless a padded first conv sees a shifted mean (its zero padding would stand for
another colour), which only `approximate=True` accepts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import values
from engine.calculator import param_shapes
from engine.data.normalize import CONVNETJS_INPUT, Normalization
from engine.net import Net
from engine.formats.snapshot import Snapshot, SnapshotError
from engine.spec.net_spec import SpecError, parse_spec
from engine.spec.reader import MAX_INT
from engine.values import show

CONVNETJS_PREPROCESS = CONVNETJS_INPUT.to_dict()
LOSS_TYPES = ("softmax", "svm", "regression")
SIMPLE_TYPES = ("relu", "sigmoid", "tanh")
# f(c * x) = c * f(x) for c > 0: a dropout's scale can move through these to the next weights.
SCALE_THROUGH = ("relu", "pool", "maxout", "dropout")
DROPOUT_SCALES = ("1-p", "p")
NOTE_KEY = "convnet_demo"      # our note in an exported document; ConvNetJS ignores it


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


# --- import ---------------------------------------------------------------------------------
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


def _note(doc: dict) -> dict:
    """Our note in a document we exported ({} in ConvNetJS's own files), checked."""
    note = doc.get(NOTE_KEY, {})
    if not isinstance(note, dict) or note.get("dropout_scale", "1-p") not in DROPOUT_SCALES:
        raise ConvNetJSError(f"'{NOTE_KEY}' must be an object whose dropout_scale is "
                             f"{' or '.join(DROPOUT_SCALES)}", NOTE_KEY)
    return note


def import_convnetjs(doc: Any, classes: list[str] | None = None, *,
                     dropout_scale: str | None = None) -> Snapshot:
    """A ConvNetJS `Net.toJSON()` document -> a Snapshot (validated like our own). Every
    filter is read and checked against the shapes the spec implies (arithmetic) before
    anything the size of the net is allocated.

    dropout_scale: "1-p" or "p" (see the module docstring); None: what the document's note
    says (our own exports), else "1-p". classes: names for the outputs, unless the document's
    note has them."""
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list) or not doc["layers"]:
        raise ConvNetJSError("a ConvNetJS net is an object with a non-empty 'layers' list")
    if dropout_scale is not None and dropout_scale not in DROPOUT_SCALES:
        raise ConvNetJSError(f"dropout_scale must be {' or '.join(DROPOUT_SCALES)}, got "
                             f"{show(dropout_scale)}")
    note = _note(doc)
    scale = dropout_scale or note.get("dropout_scale", "1-p")
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
    factors = dropout_factors(spec.layers, scale)
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
    names = next((names for names in (note.get("classes"), classes)
                  if isinstance(names, (list, tuple)) and len(names) == n_out
                  and all(isinstance(c, str) and len(c) <= 100 for c in names)),
                 [str(k) for k in range(n_out)])
    return Snapshot(spec=spec, params=params, buffers={}, preprocess=dict(CONVNETJS_PREPROCESS),
                    classes=list(names), meta={"imported_from": "convnetjs",
                                               "dropout_scale": scale})


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


def dropout_factors(defs: list[dict], scale: str) -> dict[int, float]:
    """{index of a conv/fc layer: product of the dropout scales before it}, each (1 - p) or p
    (`scale`), from a spec's layer defs: see the module docstring. Dropouts with p = 0 are
    skipped when scale is "p" (export leaves them out). Refuses a dropout whose scale cannot
    reach a conv or fc unchanged."""
    factors: dict[int, float] = {}
    types = [d["type"] for d in defs]
    for i, d in enumerate(defs):
        if d["type"] != "dropout" or (scale == "p" and d["drop_prob"] == 0):
            continue
        j = i + 1
        while j < len(types) and types[j] in SCALE_THROUGH:
            j += 1
        if j == len(types) or types[j] not in ("conv", "fc"):
            raise ConvNetJSError(f"layer {i} (dropout): ConvNetJS and this engine scale dropout "
                                 "differently when predicting, which can only be reconciled "
                                 "when a conv or fc layer follows it (through relu, pool or "
                                 "maxout only)")
        p = d["drop_prob"]
        factors[j] = factors.get(j, 1.0) * (p if scale == "p" else 1.0 - p)
    return factors


# --- what ConvNetJS can run -----------------------------------------------------------------
def layer_problem(i: int, d: dict) -> str | None:
    """Why layer `i` (a spec's layer def) has no ConvNetJS counterpart, or None."""
    kind = d["type"]
    if kind == "conv":
        if d["stride_x"] != d["stride_y"] or d["pad_x"] != d["pad_y"] or not d["bias"]:
            return f"layer {i} (conv): ConvNetJS needs equal x/y stride and pad and a bias"
    elif kind == "fc":
        if not d["bias"]:
            return f"layer {i} (fc): ConvNetJS fc layers have a bias"
    elif kind == "pool":
        if d["mode"] != "max" or d["stride_x"] != d["stride_y"] or d["pad_x"] != d["pad_y"]:
            return (f"layer {i} (pool): ConvNetJS pools are max pools with equal x/y stride "
                    "and pad")
    elif kind not in ("input", "maxout", "dropout", "lrn") + SIMPLE_TYPES + LOSS_TYPES:
        return f"layer {i} ({kind}): ConvNetJS has no {kind} layer"
    return None


def structure_problem(spec) -> str | None:
    """Why a net (a NetSpec) cannot be written as a ConvNetJS net that computes what it
    computes, or None: a layer ConvNetJS lacks, or a dropout whose prediction-time scale
    cannot be moved into the next weights."""
    for i, d in enumerate(spec.layers):
        problem = layer_problem(i, d)
        if problem:
            return problem
    try:
        dropout_factors(spec.layers, "p")
    except ConvNetJSError as exc:
        return str(exc)
    return None


def training_normalization(spec, data_normalization: Normalization) -> Normalization:
    """The input normalisation a fresh net trains on: ConvNetJS's own (pixel/255 - 0.5) for a
    net ConvNetJS can run, so that its export computes exactly what it computes here (a
    zero-padded first conv cannot be folded into another convention exactly); the data set's
    mean and std otherwise."""
    return CONVNETJS_INPUT if structure_problem(spec) is None else data_normalization


def _fold(spec, preprocess: dict | None) -> tuple[np.ndarray, np.ndarray, str | None] | None:
    """How our input normalisation maps onto ConvNetJS's: None when they are the same, else
    (scale, shift) per channel with ours = scale * theirs + shift, and why that fold is not
    exact (None when it is). Raises when there is no first layer to fold it into."""
    if preprocess is None or Normalization.from_dict(preprocess) == CONVNETJS_INPUT:
        return None
    mean, std = (np.asarray(preprocess[k], np.float64) for k in ("mean", "std"))
    scale, shift = 255.0 / std, (127.5 - mean) / std      # theirs = pixel/255 - 0.5
    first = spec.layers[1]
    if first["type"] not in ("conv", "fc") or not first["bias"]:
        raise ConvNetJSError("ConvNetJS feeds its nets pixel/255 - 0.5; this net's inputs were "
                             "normalised otherwise, which can only be folded into a first conv "
                             "or fc layer (with a bias)")
    padded = first["type"] == "conv" and (first["pad_x"] or first["pad_y"])
    inexact = None
    if padded and np.any(shift != 0):
        inexact = ("the first conv zero-pads inputs normalised with this data set's mean (its "
                   "padding stands for the mean colour here, for mid-grey in ConvNetJS, which "
                   "feeds pixel/255 - 0.5), so ConvNetJS's outputs differ near the border")
    return scale, shift, inexact


def export_status(spec, preprocess: dict | None) -> dict[str, Any]:
    """{"possible", "exact", "detail"}: whether export_convnetjs writes this net at all, and
    whether ConvNetJS then computes exactly what it computes here (cheap: no weights read)."""
    problem = structure_problem(spec)
    if problem is None:
        try:
            fold = _fold(spec, preprocess)
        except ConvNetJSError as exc:
            problem = str(exc)
    if problem is not None:
        return {"possible": False, "exact": False, "detail": problem}
    dropped = training_only_note(spec)
    if fold is not None and fold[2] is not None:
        return {"possible": True, "exact": False, "detail": fold[2] + dropped}
    return {"possible": True, "exact": True,
            "detail": "ConvNetJS computes what this net computes (to float rounding)" + dropped}


def training_only_note(spec) -> str:
    """What the export leaves out that shapes training only ("" when nothing): a softmax
    layer's label_smoothing, which ConvNetJS's softmax lacks. Predictions do not depend on it,
    so whether ConvNetJS computes what this net computes is unchanged."""
    last = len(spec.layers) - 1
    eps = spec.layers[last].get("label_smoothing", 0.0)
    if not eps:
        return ""
    return (f"; layer {last} (softmax): its label_smoothing ({eps:g}) is left out, as "
            "ConvNetJS has none: it shapes training only, so predictions are the same, but "
            "training the export in ConvNetJS would use plain cross-entropy")


# --- export ---------------------------------------------------------------------------------
def _export_weights(net: Net, preprocess: dict | None, approximate: bool
                    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{layer index: (w, b)} in float64 for every conv and fc, as ConvNetJS must hold them:
    undo the dropout factors (see dropout_factors) and fold the input normalisation."""
    factors = dropout_factors(net.spec.layers, "p")
    weights = {i: (layer.params["w"].astype(np.float64) / factors.get(i, 1.0),
                   layer.params["b"].astype(np.float64))
               for i, layer in enumerate(net.layers)
               if layer.type in ("conv", "fc") and "b" in layer.params}
    fold = _fold(net.spec, preprocess)
    if fold is None:
        return weights
    scale, shift, inexact = fold
    if inexact and not approximate:
        raise ConvNetJSError(inexact + "; export with approximate=True to accept that")
    w, b = weights[1]
    c = net.layers[1].in_shape[0]
    w_chw = w.reshape(w.shape[0], c, -1)                   # conv (F, C, taps), fc (K, C, H*W)
    weights[1] = ((w_chw * scale[None, :, None]).reshape(w.shape),
                  b + (w_chw * shift[None, :, None]).sum(axis=(1, 2)))
    return weights


def export_convnetjs(net: Net, preprocess: dict | None = None, *, approximate: bool = False,
                     classes: list[str] | None = None) -> dict[str, Any]:
    """Our net as a ConvNetJS `Net.toJSON()` document; refuses layers ConvNetJS lacks.

    `preprocess` is the normalisation the net was trained with (a snapshot's, a trainer's):
    ConvNetJS feeds pixel/255 - 0.5, so any other is folded into the first conv or fc. That is
    exact unless that conv zero-pads (see export_status); such a net is refused unless
    `approximate`. `classes` are kept in the document's note for our own import. A softmax
    layer's label_smoothing is left out (training only; see training_only_note).
    """
    problem = structure_problem(net.spec)
    if problem:
        raise ConvNetJSError(f"{problem}, so this net cannot be exported to ConvNetJS")
    weights = _export_weights(net, preprocess, approximate)
    out = []
    for i, layer in enumerate(net.layers):
        d = layer.d
        c, h, w = layer.out_shape
        base = {"out_depth": c, "out_sx": w, "out_sy": h, "layer_type": layer.type}
        kind = layer.type
        if kind == "conv":
            filters, biases = weights[i]
            base.update(sx=d["sx"], sy=d["sy"], stride=d["stride_x"], pad=d["pad_x"],
                        in_depth=layer.in_shape[0], l1_decay_mul=d["l1_decay_mul"],
                        l2_decay_mul=d["l2_decay_mul"],
                        filters=[write_vol(f) for f in filters],
                        biases=write_vol(biases.reshape(-1, 1, 1)))
        elif kind == "fc":
            ci, hi, wi = layer.in_shape
            filters, biases = weights[i]
            filters = filters.reshape(-1, ci, hi, wi).transpose(0, 2, 3, 1)
            base.update(num_inputs=ci * hi * wi, l1_decay_mul=d["l1_decay_mul"],
                        l2_decay_mul=d["l2_decay_mul"],
                        filters=[{"sx": 1, "sy": 1, "depth": ci * hi * wi,
                                  "w": [float(v) for v in f.ravel()]} for f in filters],
                        biases=write_vol(biases.reshape(-1, 1, 1)))
        elif kind == "pool":
            base.update(sx=d["sx"], sy=d["sy"], stride=d["stride_x"], pad=d["pad_x"],
                        in_depth=layer.in_shape[0])
        elif kind == "maxout":
            base.update(group_size=d["group_size"])
        elif kind == "dropout":
            if d["drop_prob"] == 0:
                continue                         # the identity in both engines
            base.update(drop_prob=d["drop_prob"])
        elif kind == "lrn":
            base.update(k=d["k"], n=d["n"], alpha=d["alpha"], beta=d["beta"])
        elif kind in LOSS_TYPES:
            base.update(num_inputs=layer.in_shape[0])
        out.append(base)
    note: dict[str, Any] = {"dropout_scale": "p"}
    if classes and len(classes) == net.spec.num_outputs:
        note["classes"] = list(classes)
    return {"layers": out, NOTE_KEY: note}


def convnetjs_agreement(net: Net, preprocess: dict, images: np.ndarray) -> dict[str, Any]:
    """What ConvNetJS would predict from export_convnetjs(net, preprocess, approximate=True)
    next to what `net` predicts, on uint8 (N, H, W, 3) images: {"images", "same_class",
    "max_abs_diff"} (of the outputs: probabilities for softmax). ConvNetJS's side is computed
    by importing the export, which reproduces ConvNetJS's forward pass exactly (tested against
    ConvNetJS itself)."""
    from engine.data.normalize import preprocess as normalise
    theirs = import_convnetjs(export_convnetjs(net, preprocess, approximate=True)).build_net(
        net.dtype)
    ours_out = net.predict(normalise(images, Normalization.from_dict(preprocess)).astype(
        net.dtype, copy=False)).reshape(len(images), -1)
    theirs_out = theirs.predict(normalise(images, CONVNETJS_INPUT).astype(
        net.dtype, copy=False)).reshape(len(images), -1)
    return {"images": len(images),
            "same_class": int((ours_out.argmax(1) == theirs_out.argmax(1)).sum()),
            "max_abs_diff": float(np.abs(ours_out.astype(np.float64) - theirs_out).max())}
