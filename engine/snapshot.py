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

from engine.fsutil import atomic_write_bytes
from engine.net import Net
from engine.spec import SpecError, parse_spec

FORMAT = "convnet-demo-snapshot"
VERSION = 1
ALLOWED_DTYPES = {"float32", "float64", "int64", "int32"}
MAX_SNAPSHOT_BYTES = 512 * 1024 * 1024


class SnapshotError(ValueError):
    """A snapshot that cannot be used; the message says which part and why."""


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
        raise SnapshotError(f"{where}: expected an array object with dtype, shape and data")
    dtype, shape, data = obj["dtype"], obj["shape"], obj["data"]
    if dtype not in ALLOWED_DTYPES:
        raise SnapshotError(f"{where}: dtype {dtype!r} is not one of {sorted(ALLOWED_DTYPES)}")
    if (not isinstance(shape, list) or len(shape) > 8
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise SnapshotError(f"{where}: shape must be a list of non-negative integers")
    if not isinstance(data, str):
        raise SnapshotError(f"{where}: data must be a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise SnapshotError(f"{where}: data is not valid base64 ({exc})") from None
    # Python integers: np.prod would wrap around for a hostile shape and let it "match".
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise SnapshotError(f"{where}: {len(raw)} bytes of data for shape {shape} {dtype} "
                            f"(expected {expected})")
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


def _decode_tree(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return decode_array(value["__array__"], where)
        return {k: _decode_tree(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_tree(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


# --- weights --------------------------------------------------------------------------------
def check_weights(net: Net, params: dict[str, np.ndarray], buffers: dict[str, np.ndarray]) -> None:
    """Every array the net has, with its exact shape, finite; nothing more, nothing less."""
    named_params = {n: a for n, a, _ in net.named_params()}
    for kind, given, expected in (("params", params, named_params),
                                  ("buffers", buffers, dict(net.named_buffers()))):
        missing = sorted(set(expected) - set(given))
        extra = sorted(set(given) - set(expected))
        if missing:
            raise SnapshotError(f"{kind}: missing {', '.join(missing[:5])} for this spec")
        if extra:
            raise SnapshotError(f"{kind}: {', '.join(extra[:5])} do not belong to this spec")
        for name, arr in given.items():
            if arr.shape != expected[name].shape:
                raise SnapshotError(f"{kind}.{name}: shape {list(arr.shape)} does not match the "
                                    f"spec's {list(expected[name].shape)}")
            if arr.dtype.kind != "f":
                raise SnapshotError(f"{kind}.{name}: dtype {arr.dtype} is not a float type")
            if not np.all(np.isfinite(arr)):
                raise SnapshotError(f"{kind}.{name}: contains NaN or infinite values")


def apply_weights(net: Net, params: dict[str, np.ndarray], buffers: dict[str, np.ndarray]) -> None:
    """Copy into the net's arrays in place (blocks and optimizers hold references to them)."""
    check_weights(net, params, buffers)
    for name, arr, _ in net.named_params():
        np.copyto(arr, params[name], casting="same_kind")
    for name, arr in net.named_buffers():
        np.copyto(arr, buffers[name], casting="same_kind")


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
    if not isinstance(doc, dict):
        raise SnapshotError("a snapshot is a JSON object")
    if doc.get("format") != FORMAT:
        if "layers" in doc and isinstance(doc["layers"], list):
            raise SnapshotError("this looks like a ConvNetJS Net.toJSON() file: import it with "
                                "the ConvNetJS importer (engine.convnetjs)")
        raise SnapshotError(f"not a convnet-demo snapshot (format is not {FORMAT!r})")
    version = doc.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise SnapshotError(f"snapshot version {version} was written by a newer convnet-demo; "
                            f"this one reads version {VERSION}: upgrade convnet-demo "
                            f"(pip install -U convnet-demo) to load it")
    if version != VERSION:
        raise SnapshotError(f"snapshot version {version!r} is not supported (this convnet-demo "
                            f"reads version {VERSION}); re-save the snapshot with the "
                            f"convnet-demo that wrote it")
    try:
        spec = parse_spec(doc.get("spec"))
    except SpecError as exc:
        raise SnapshotError(f"spec: {exc}") from None
    for key in ("params", "buffers"):
        if not isinstance(doc.get(key), dict):
            raise SnapshotError(f"{key}: expected an object of arrays")
    params = {k: decode_array(v, f"params.{k}") for k, v in doc["params"].items()}
    buffers = {k: decode_array(v, f"buffers.{k}") for k, v in doc["buffers"].items()}
    check_weights(Net(spec), params, buffers)
    step = doc.get("step", 0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise SnapshotError("step: expected a non-negative integer")
    preprocess = doc.get("preprocess") or {"mean": [127.5] * 3, "std": [255.0] * 3}
    _check_preprocess(preprocess, spec.input_shape[0])
    classes = doc.get("classes") or []
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise SnapshotError("classes: expected a list of strings")
    if classes and len(classes) != spec.num_outputs:
        raise SnapshotError(f"classes: {len(classes)} names for a net with "
                            f"{spec.num_outputs} outputs")
    optimizer = doc.get("optimizer")
    if optimizer is not None and not isinstance(optimizer, dict):
        raise SnapshotError("optimizer: expected an object or null")
    return Snapshot(spec=spec, params=params, buffers=buffers,
                    optimizer=_decode_tree(optimizer, "optimizer") if optimizer else None,
                    step=step, preprocess=preprocess, classes=classes,
                    metrics=_decode_tree(doc.get("metrics") or {}, "metrics"),
                    meta=doc.get("meta") if isinstance(doc.get("meta"), dict) else {})


def _check_preprocess(pre: Any, channels: int) -> None:
    if not isinstance(pre, dict):
        raise SnapshotError("preprocess: expected an object with mean and std")
    for key in ("mean", "std"):
        values = pre.get(key)
        if (not isinstance(values, list) or len(values) != channels
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           and np.isfinite(v) for v in values)):
            raise SnapshotError(f"preprocess.{key}: expected {channels} finite numbers")
    if any(v <= 0 for v in pre["std"]):
        raise SnapshotError("preprocess.std: every value must be positive")


def decode_json(data: bytes | str) -> Any:
    """Bytes of a snapshot file -> the decoded JSON value (size-capped; NaN refused)."""
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(f"snapshot is larger than {MAX_SNAPSHOT_BYTES // 2**20} MiB")
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"not valid JSON: {exc}") from None


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
