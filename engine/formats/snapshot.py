"""Snapshots: one versioned JSON document holding everything needed to resume or to classify.

    {"format": "convnet-demo-snapshot", "version": 1,
     "spec": [...user-level layer objects...],
     "params": {"<layer>.<name>": ARRAY, ...}, "buffers": {...},
     "optimizer": {... optimizer.state_dict(), arrays as ARRAY ...} | null,
     "step": int, "preprocess": {"mean": [r, g, b], "std": [r, g, b]} (pixel units 0..255),
     "classes": [...], "metrics": {...}, "meta": {...}}
    ARRAY = {"dtype": "float32", "shape": [...], "data": base64 of the little-endian bytes}

Arrays are stored bit for bit (base64), so a round trip is exact. Loading validates every
array's dtype, shape and finiteness against a net built from the spec before anything replaces
a running net; nothing here ever unpickles.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import values
from engine.calculator import param_shapes
from engine.fsutil import atomic_write_bytes
from engine.net import Net
from engine.spec.net_spec import SpecError, parse_spec
from engine.values import show, show_repr

FORMAT = "convnet-demo-snapshot"
VERSION = 1
ALLOWED_DTYPES = {"float32", "float64", "int64", "int32"}
MAX_SNAPSHOT_BYTES = 512 * 1024 * 1024
TOP_KEYS = ("format", "version", "spec", "params", "buffers", "optimizer", "step",
            "preprocess", "classes", "metrics", "meta")
MAX_STEP = 10**12          # steps, examples: far beyond any run, exact in a float64
MAX_DIM = 2**48            # one array dimension (products stay printable)
MAX_TREE_DEPTH = 32        # nesting of the optimizer state, metrics and meta
# Pixel statistics in pixel units (x = (pixel - mean) / std): every real convention fits
# (0..255 pixels: mean ~120, std ~60; ConvNetJS's pixel/255 - 0.5: mean 127.5, std 255; raw
# pixels: mean 0, std 1). A std of 1e-300 or a mean of 1e308 only makes a net diverge at once.
MEAN_RANGE = (-1e3, 1e3)
STD_RANGE = (1e-3, 1e4)
# meta numbers a load reads: (kind, upper bound); None (a diverged run's figure) reads as 0.
META_NUMBERS = {"examples_seen": (int, MAX_STEP), "epoch": (float, 1e9),
                "wall_seconds": (float, 1e10), "schedule_start": (int, MAX_STEP)}


class SnapshotError(ValueError):
    """A snapshot that cannot be used; the message says which part and why, and `field` names
    it (e.g. "meta.epoch", "params.1.w", "preprocess.std") where there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Snapshot:
    spec: Any                                  # engine.spec.NetSpec
    params: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]
    optimizer: dict[str, Any] | None = None
    step: int = 0
    preprocess: dict[str, list[float]] = field(
        default_factory=lambda: {"mean": [127.5] * 3, "std": [255.0] * 3})
    classes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def build_net(self, dtype=np.float32) -> Net:
        """A new Net with these weights (the spec was validated when the snapshot loaded)."""
        net = Net(self.spec, dtype=dtype)
        apply_weights(net, self.params, self.buffers)
        return net


# --- arrays ---------------------------------------------------------------------------------
def encode_array(arr: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(arr)
    return {"dtype": arr.dtype.name, "shape": list(arr.shape),
            "data": base64.b64encode(arr.astype(arr.dtype.newbyteorder("<")).tobytes()).decode()}


def decode_array(obj: Any, where: str) -> np.ndarray:
    if not isinstance(obj, dict) or set(obj) != {"dtype", "shape", "data"}:
        raise SnapshotError(f"{where}: expected an array object with dtype, shape and data",
                            where)
    dtype, shape, data = obj["dtype"], obj["shape"], obj["data"]
    if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
        raise SnapshotError(f"{where}: dtype {show_repr(dtype)} is not one of "
                            f"{sorted(ALLOWED_DTYPES)}", where)
    if (not isinstance(shape, list) or len(shape) > 8
            or not all(type(s) is int and 0 <= s <= MAX_DIM for s in shape)):
        raise SnapshotError(f"{where}: shape must be a list of at most 8 non-negative "
                            f"integers (each at most {MAX_DIM:,})", where)
    if not isinstance(data, str):
        raise SnapshotError(f"{where}: data must be a base64 string", where)
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise SnapshotError(f"{where}: data is not valid base64 ({exc})", where) from None
    # Python integers: np.prod would wrap around for a hostile shape and let it "match".
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise SnapshotError(f"{where}: {len(raw)} bytes of data for shape {shape} {dtype} "
                            f"(expected {expected})", where)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)


def _encode_tree(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__array__": encode_array(value)}
    if isinstance(value, dict):
        return {str(k): _encode_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_tree(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None     # JSON has no NaN; a diverged run's figures must not stop a save
    return value


def _decode_tree(value: Any, where: str, depth: int = 0) -> Any:
    if depth > MAX_TREE_DEPTH and isinstance(value, (dict, list)):
        raise SnapshotError(f"{where}: nested more than {MAX_TREE_DEPTH} deep", where)
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return decode_array(value["__array__"], where)
        return {k: _decode_tree(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_tree(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    return value


# --- weights --------------------------------------------------------------------------------
def checked_weights(spec, params: dict[str, np.ndarray], buffers: dict[str, np.ndarray],
                    dtype=np.float32) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every array the spec's net has, with its exact shape (arithmetic: no net is built),
    finite once converted to `dtype` (a float64 1e39 is finite and becomes inf in float32);
    nothing more, nothing less. Returns the arrays in `dtype` (fresh when converted)."""
    out: tuple[dict, dict] = ({}, {})
    for kind, given, expected, converted in zip(("params", "buffers"), (params, buffers),
                                                param_shapes(spec), out):
        if not isinstance(given, dict):
            raise SnapshotError(f"{kind}: expected an object of arrays", kind)
        missing = [n for n in expected if n not in given]
        extra = [n for n in given if n not in expected]
        if missing:
            raise SnapshotError(f"{kind}: missing {', '.join(missing[:5])} for this spec",
                                f"{kind}.{missing[0]}")
        if extra:
            raise SnapshotError(f"{kind}: {', '.join(map(show, extra[:5]))} do not belong to "
                                "this spec", kind)
        for name, shape in expected.items():
            arr, where = given[name], f"{kind}.{name}"
            if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
                raise SnapshotError(f"{where}: dtype {getattr(arr, 'dtype', type(arr).__name__)} "
                                    "is not a float type", where)
            if arr.shape != tuple(shape):
                raise SnapshotError(f"{where}: shape {list(arr.shape)} does not match the "
                                    f"spec's {list(shape)}", where)
            with np.errstate(over="ignore", invalid="ignore"):
                arr = arr.astype(dtype, copy=False)
            if not np.isfinite(arr).all():
                raise SnapshotError(f"{where}: contains NaN or infinite values (in "
                                    f"{np.dtype(dtype)})", where)
            converted[name] = arr
    return out


def check_weights(net: Net, params: dict[str, np.ndarray], buffers: dict[str, np.ndarray]) -> None:
    """Every array the net has, with its exact shape, finite in the net's dtype."""
    checked_weights(net.spec, params, buffers, net.dtype)


def apply_weights(net: Net, params: dict[str, np.ndarray], buffers: dict[str, np.ndarray]) -> None:
    """Check, then copy into the net's arrays in place (blocks and optimizers hold references
    to them): nothing is written unless everything fits."""
    params, buffers = checked_weights(net.spec, params, buffers, net.dtype)
    for name, arr, _ in net.named_params():
        np.copyto(arr, params[name])
    for name, arr in net.named_buffers():
        np.copyto(arr, buffers[name])


# --- files ----------------------------------------------------------------------------------
def snapshot_to_json(net: Net, *, optimizer_state: dict | None = None, step: int = 0,
                     preprocess: dict | None = None, classes: list[str] | None = None,
                     metrics: dict | None = None, meta: dict | None = None) -> dict[str, Any]:
    doc = {
        "format": FORMAT, "version": VERSION,
        "spec": net.spec.to_document(),     # the layers, plus the net's name if it has one
        "params": {name: encode_array(arr) for name, arr, _ in net.named_params()},
        "buffers": {name: encode_array(arr) for name, arr in net.named_buffers()},
        "optimizer": _encode_tree(optimizer_state) if optimizer_state is not None else None,
        "step": int(step),
        "preprocess": preprocess or {"mean": [127.5] * 3, "std": [255.0] * 3},
        "classes": list(classes or []),
        "metrics": _encode_tree(metrics or {}),
        "meta": _encode_tree(meta or {}),
    }
    return doc


def dumps(doc: dict[str, Any]) -> bytes:
    # allow_nan=False: a browser's JSON.parse and other tools reject NaN.
    return json.dumps(doc, allow_nan=False, separators=(",", ":")).encode()


def save_snapshot(path: str | Path, net: Net, **kwargs) -> None:
    atomic_write_bytes(path, dumps(snapshot_to_json(net, **kwargs)))


def snapshot_from_json(doc: Any) -> Snapshot:
    """A validated Snapshot: every part is checked (weights by arithmetic against the spec,
    before anything is allocated for a net) or this raises a SnapshotError naming the part."""
    if not isinstance(doc, dict):
        spec = " (a net spec's layer list? open it in the network editor)" if isinstance(
            doc, list) else ""
        raise SnapshotError(f"this JSON is a {_json_kind(doc)}{spec}; a snapshot is a JSON "
                            f"object: {SNAPSHOT_IS}")
    if doc.get("format") != FORMAT:
        if "layers" in doc and isinstance(doc["layers"], list):
            raise SnapshotError("this looks like a ConvNetJS Net.toJSON() file: import it with "
                                "the ConvNetJS importer (engine.formats.convnetjs)")
        raise SnapshotError(f"not a convnet-demo snapshot (format is not {FORMAT!r}): "
                            f"{SNAPSHOT_IS}", "format")
    unknown = [k for k in doc if k not in TOP_KEYS]
    if unknown:
        raise SnapshotError(f"unknown key {show(unknown[0])} in a snapshot; known keys: "
                            f"{', '.join(TOP_KEYS)}", show(unknown[0]))
    version = doc.get("version")
    if type(version) is int and version > VERSION:
        raise SnapshotError(f"snapshot version {version} was written by a newer convnet-demo; "
                            f"this one reads version {VERSION}: upgrade convnet-demo "
                            f"(pip install -U convnet-demo) to load it", "version")
    if type(version) is not int or version != VERSION:   # true == 1 in Python: not here
        raise SnapshotError(f"snapshot version {show_repr(version)} is not supported (this "
                            f"convnet-demo reads version {VERSION}); re-save the snapshot with "
                            f"the convnet-demo that wrote it", "version")
    try:
        spec = parse_spec(doc.get("spec"))
    except SpecError as exc:
        raise SnapshotError(f"spec: {exc}", "spec") from None
    for key, expected in zip(("params", "buffers"), param_shapes(spec)):
        if not isinstance(doc.get(key), dict):
            raise SnapshotError(f"{key}: expected an object of arrays", key)
        if not all(isinstance(name, str) for name in doc[key]):
            raise SnapshotError(f"{key}: names must be strings", key)
        # Names first: a small file that declares a large net is refused before any array
        # is decoded, let alone a net allocated.
        missing = [n for n in expected if n not in doc[key]]
        if missing:
            raise SnapshotError(f"{key}: missing {', '.join(missing[:5])} for this spec",
                                f"{key}.{missing[0]}")
    params = {k: decode_array(v, f"params.{k}") for k, v in doc["params"].items()}
    buffers = {k: decode_array(v, f"buffers.{k}") for k, v in doc["buffers"].items()}
    checked_weights(spec, params, buffers)
    step = doc.get("step", 0)
    if type(step) is not int or not 0 <= step <= MAX_STEP:
        raise SnapshotError(f"step: expected a non-negative integer (at most {MAX_STEP:,}), "
                            f"got {show(step)}", "step")
    preprocess = checked_preprocess(doc.get("preprocess") or {"mean": [127.5] * 3,
                                                               "std": [255.0] * 3},
                                    spec.input_shape[0])
    classes = doc.get("classes") or []
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise SnapshotError("classes: expected a list of strings", "classes")
    if classes and len(classes) != spec.num_outputs:
        raise SnapshotError(f"classes: {len(classes)} names for a net with "
                            f"{spec.num_outputs} outputs", "classes")
    optimizer = doc.get("optimizer")
    if optimizer is not None and not isinstance(optimizer, dict):
        raise SnapshotError("optimizer: expected an object or null", "optimizer")
    optimizer = _decode_tree(optimizer, "optimizer") if optimizer else None
    if optimizer is not None:
        checked_optimizer(optimizer, spec)
    for key in ("metrics", "meta"):
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            raise SnapshotError(f"{key}: expected an object or null", key)
    meta = checked_meta(_decode_tree(doc.get("meta") or {}, "meta"))
    return Snapshot(spec=spec, params=params, buffers=buffers, optimizer=optimizer,
                    step=step, preprocess=preprocess, classes=classes,
                    metrics=_decode_tree(doc.get("metrics") or {}, "metrics"), meta=meta)


def checked_optimizer(state: Any, spec, dtype=np.float32):
    """A snapshot's optimizer state checked against the spec's parameters (arithmetic: no net
    needed): (hyperparams, t, rule_t, state arrays in `dtype`), or a SnapshotError."""
    from engine.optim import OptimError
    from engine.optim.optimizer import checked_state_dict
    shapes = param_shapes(spec)[0]
    try:
        return checked_state_dict(state, shapes, dict.fromkeys(shapes, np.dtype(dtype)))
    except OptimError as exc:
        raise SnapshotError(f"optimizer: {exc}", f"optimizer.{exc.field}") from None


def checked_preprocess(pre: Any, channels: int) -> dict[str, list[float]]:
    """{"mean": [...], "std": [...]} as floats, one per channel, within MEAN_RANGE and
    STD_RANGE (pixel units), or a SnapshotError naming preprocess.mean or preprocess.std."""
    if not isinstance(pre, dict) or set(pre) != {"mean", "std"}:
        raise SnapshotError("preprocess: expected an object with mean and std", "preprocess")
    out = {}
    for key, (low, high) in (("mean", MEAN_RANGE), ("std", STD_RANGE)):
        given, where = pre[key], f"preprocess.{key}"
        numbers = ([values.real(v) for v in given]
                   if isinstance(given, list) and len(given) == channels else [None])
        if any(v is None for v in numbers):
            raise SnapshotError(f"{where}: expected {channels} finite numbers, got "
                                f"{show(given)}", where)
        if key == "std" and any(v <= 0 for v in numbers):
            raise SnapshotError(f"{where}: every value must be positive", where)
        if not all(low <= v <= high for v in numbers):
            raise SnapshotError(f"{where}: every value must lie in [{low:g}, {high:g}] (pixel "
                                f"units, 0..255), got {show(given)}", where)
        out[key] = numbers
    return out


def checked_meta(meta: Any) -> dict[str, Any]:
    """A snapshot's free-form meta, with the numbers a load reads (META_NUMBERS) checked:
    each absent, null or a number of its kind in 0..its bound; else a SnapshotError."""
    if not isinstance(meta, dict):
        raise SnapshotError("meta: expected an object", "meta")
    for key, (kind, high) in META_NUMBERS.items():
        value, where = meta.get(key), f"meta.{key}"
        if value is None:
            continue
        number = values.integer(value) if kind is int else values.real(value)
        if number is None or not 0 <= number <= high:
            what = "an integer" if kind is int else "a number"
            raise SnapshotError(f"{where}: expected {what} in 0..{high:,g}, got {show(value)}",
                                where)
    return meta


def meta_number(meta: dict[str, Any], key: str) -> int | float:
    """A number checked_meta let through (null or absent: 0)."""
    value = meta.get(key)
    return 0 if value is None else value


# What a person who picked the wrong file needs to hear after what the file is.
SNAPSHOT_IS = ("a snapshot is a .json file saved by convnet-demo (Save snapshot) or ConvNetJS's "
               "Net.toJSON()")


def decode_json(data: bytes | str) -> Any:
    """Bytes of a snapshot file -> the decoded JSON value (size-capped; NaN refused). A file
    that is no JSON at all is refused by what it is (an image, an archive...), not by how
    the JSON decoder failed on its first byte."""
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(f"snapshot is larger than {MAX_SNAPSHOT_BYTES // 2**20} MiB")
    from engine.formats.file_kinds import what_it_is
    kind = what_it_is(data.encode() if isinstance(data, str) else data)
    if kind is not None:
        raise SnapshotError(f"this is {kind} (not valid JSON), not a snapshot: {SNAPSHOT_IS}")
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:   # the int digit limit is a ValueError
        raise SnapshotError(f"not valid JSON: {str(exc).split(';')[0]}; this is text, not "
                            f"a snapshot: {SNAPSHOT_IS}") from None
    except RecursionError:
        raise SnapshotError("not valid JSON: nested too deeply") from None


def _json_kind(value: Any) -> str:
    return {list: "list", str: "string", bool: "true/false", type(None): "null"}.get(
        type(value), "number")


def loads(data: bytes | str) -> Snapshot:
    return snapshot_from_json(decode_json(data))


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed in a snapshot")


def read_capped(path: str | Path) -> bytes:
    """A snapshot file's bytes; refuses (without reading it all) one over the size cap."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SNAPSHOT_BYTES + 1)
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(f"{path}: snapshot is larger than {MAX_SNAPSHOT_BYTES // 2**20} MiB")
    return data


def load_snapshot(path: str | Path) -> Snapshot:
    path = Path(path)
    data = read_capped(path)
    try:
        return loads(data)
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from None
