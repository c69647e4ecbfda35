"""Net specs: JSON layer lists (ConvNetJS's keys) -> a validated, normalised NetSpec.

A spec is a list of layer objects, or {"layers": [...], "name", "description", "notes"}. A
ConvNetJS `layer_defs` list written as JSON loads as it is. Parsing never evaluates code and
allocates nothing: every shape, parameter count, FLOP count and activation size is arithmetic,
checked against a Budget before any layer exists. Errors name the layer by its index in the
list the user wrote (before the sugar is expanded), e.g. "layer 5.layers.1 (conv)".

Budgets (per image, forward): DEFAULT_BUDGET is what this demo will train on 2 CPU cores:
30M parameters (120 MB of float32 weights; x4 with gradients and Adam's two slots), 5 GFLOPs
(at ~50 GFLOP/s a training step is ~3 forward passes: a few images per second at the limit),
4M stored activation values (every layer output, 16 MB per image; x2 with gradients, ~1 GB at
batch 32) and 1000 layers. The lecture's ImageNet case studies exceed it and are summarised
with budget=None (shapes and counts only; never trained).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from engine import values
from engine.calculator import own_flops, own_params, own_stored
from engine.spec.blocks import make_projection
from engine.spec.layers import LAYER_KEYS, LOSS_TYPES, normalise_layer
from engine.spec.reader import MAX_DEPTH, Reader, SpecError, show

__all__ = ["Budget", "DEFAULT_BUDGET", "NetSpec", "SpecError", "decode_spec_text",
           "load_spec_text", "parse_spec", "LAYER_KEYS"]

MAX_SPEC_CHARS = 1_000_000
# Layer objects as written (block contents counted), checked before any layer is read: with
# budget=None (summaries) nothing else bounds the work and the size of the table.
MAX_RAW_LAYERS = 2000
DOCUMENT_KEYS = ("layers", "name", "description", "notes")
BUDGET_FIELDS = {"input": "out_sx", "conv": "filters", "fc": "num_neurons",
                 "softmax": "num_classes", "svm": "num_classes", "regression": "num_neurons"}


@dataclass(frozen=True)
class Budget:
    max_params: int = 30_000_000
    max_flops: int = 5_000_000_000       # forward, per image, multiply-add = 2
    max_activations: int = 4_000_000     # values of every layer's output, per image
    max_layers: int = 1000               # normalised layers, block contents included


DEFAULT_BUDGET = Budget()


class _Tally:
    """Running totals while layers are made; refuses the first layer that breaks the budget."""

    def __init__(self, budget: Budget | None) -> None:
        self.budget, self.params, self.flops, self.values, self.layers = budget, 0, 0, 0, 0

    def __call__(self, d: dict, r: Reader) -> None:
        self.layers += 1
        b = self.budget
        if b is None:
            return
        params, flops, values = own_params(d)[0], own_flops(d), own_stored(d)
        self.params += params
        self.flops += flops
        self.values += values
        field = BUDGET_FIELDS.get(r.type)
        if self.params > b.max_params:
            raise r.error(field, f"the net would have {self.params:,} parameters by this layer "
                                 f"({params:,} in it), more than a trainable net may have "
                                 f"({b.max_params:,}); use fewer filters or neurons")
        if self.flops > b.max_flops:
            raise r.error(field, f"the net would need {self.flops:,} FLOPs per image by this "
                                 f"layer, more than a trainable net may ({b.max_flops:,}); use "
                                 "fewer filters, a smaller input or more stride")
        if self.values > b.max_activations:
            raise r.error(field, f"the net would store {self.values:,} activation values per "
                                 f"image by this layer ({4 * self.values / 1e6:,.1f} MB), more "
                                 f"than a trainable net may ({b.max_activations:,}); use a "
                                 "smaller input, fewer filters or more stride")
        if self.layers > b.max_layers:
            raise r.error(None, f"the net has more than {b.max_layers} layers")


@dataclass
class NetSpec:
    """A validated net: `layers` are normalised LayerDefs (sugar expanded, every key filled in,
    in_shape/out_shape as (C, H, W)). Equality compares the layers only."""

    layers: list[dict[str, Any]]
    name: str | None = field(default=None, compare=False)
    description: str | None = field(default=None, compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.layers[0]["out_shape"]

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return self.layers[-1]["out_shape"]

    @property
    def loss_type(self) -> str:
        return self.layers[-1]["type"]

    @property
    def num_classes(self) -> int | None:
        """Classes of a softmax/svm net; None for regression (see num_outputs)."""
        return self.layers[-1].get("num_classes")

    @property
    def num_outputs(self) -> int:
        return self.output_shape[0]

    def to_json(self) -> list[dict[str, Any]]:
        """Canonical user-level layer objects (no sugar, every key explicit) that parse back
        to an equal NetSpec."""
        return user_layers(self.layers)

    def to_document(self) -> dict[str, Any]:
        """{"name", "description", "notes", "layers"}: to_json() plus the metadata present."""
        doc: dict[str, Any] = {k: v for k, v in (("name", self.name),
                                                 ("description", self.description)) if v}
        if self.notes:
            doc["notes"] = list(self.notes)
        doc["layers"] = self.to_json()
        return doc


def _user_layer(d: dict) -> dict:
    t = d["type"]
    out = {k: v for k, v in d.items() if k not in ("in_shape", "out_shape")}
    if t in ("conv", "pool"):
        head = {"type": t, "sx": d["sx"], "sy": d["sy"]}
        if t == "conv":
            head["filters"] = d["filters"]
        for key in ("stride", "pad"):
            x, y = out.pop(f"{key}_x"), out.pop(f"{key}_y")
            head.update({key: x} if x == y else {f"{key}_x": x, f"{key}_y": y})
        if out.pop("rounding") != "exact":
            head["rounding"] = d["rounding"]
        out = {**head, **out}
    elif t == "residual":
        out["layers"] = user_layers(d["layers"])
        del out["shortcut"]
        if not d["shortcut"]:
            out["projection"] = False
        elif d["shortcut"] == make_projection(d["in_shape"], d["out_shape"]):
            out["projection"] = True
        else:
            out["shortcut"] = user_layers(d["shortcut"])
    elif t == "softmax" and not out.get("label_smoothing", 0.0):
        out.pop("label_smoothing", None)   # the default: older specs' JSON stays as it was
    elif t == "concat":
        out["branches"] = [user_layers(branch) for branch in d["branches"]]
    return out


def user_layers(defs: list[dict]) -> list[dict]:
    """Normalised defs -> user-level objects; the fc in front of a loss layer is left out
    because parsing puts it back (as ConvNetJS does)."""
    return [_user_layer(d) for i, d in enumerate(defs)
            if not (d["type"] == "fc" and i + 1 < len(defs) and defs[i + 1]["type"] in LOSS_TYPES)]


def _metadata(obj: dict) -> dict[str, Any]:
    for key in obj:
        if key not in DOCUMENT_KEYS:
            raise SpecError(f"unknown key in a spec document; known keys: "
                            f"{', '.join(DOCUMENT_KEYS)}",
                            field=key if isinstance(key, str) else show(key))
    meta: dict[str, Any] = {}
    for key in ("name", "description"):
        if key in obj:
            if not isinstance(obj[key], str):
                raise SpecError(f"must be a string, got {show(obj[key])}", field=key)
            meta[key] = obj[key]
    notes = obj.get("notes", [])
    notes = [notes] if isinstance(notes, str) else notes
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise SpecError("must be a string or a list of strings", field="notes")
    meta["notes"] = tuple(notes)
    return meta


def parse_spec(obj: Any, *, budget: Budget | None = DEFAULT_BUDGET) -> NetSpec:
    """Validate and normalise an already JSON-decoded spec. budget=None checks shapes only."""
    meta: dict[str, Any] = {}
    if isinstance(obj, dict):
        meta = _metadata(obj)
        if "layers" not in obj:
            raise SpecError("a spec document needs \"layers\": [...]", field="layers")
        obj = obj["layers"]
    if not isinstance(obj, list):
        raise SpecError(f"a spec is a list of layer objects (or an object with \"layers\"), "
                        f"got {show(obj)}")
    if len(obj) < 2:
        raise SpecError("a net needs at least an input layer first and a loss layer last")
    count = count_raw_layers(obj, MAX_RAW_LAYERS)
    if count > MAX_RAW_LAYERS:
        raise SpecError(f"a spec may hold at most {MAX_RAW_LAYERS:,} layer objects (block "
                        f"contents counted); this one holds more")
    tally = _Tally(budget)
    layers: list[dict] = []
    shape = None
    last = len(obj) - 1
    for i, item in enumerate(obj):
        kind = item.get("type") if isinstance(item, dict) else None
        kind = kind if isinstance(kind, str) else None
        if i == 0 and kind != "input":
            raise SpecError('the first layer must be an input layer, e.g. {"type": "input", '
                            '"out_sx": 32, "out_sy": 32, "out_depth": 3}', "0", "type", kind)
        if i > 0 and kind == "input":
            raise SpecError("only the first layer can be an input layer", str(i), "type", kind)
        if kind in LOSS_TYPES and i != last:
            raise SpecError(f"a loss layer must be the last layer, but {last - i} more "
                            "follow it", str(i), "type", kind)
        made = normalise_layer(item, str(i), shape, 0, tally)
        layers.extend(made)
        shape = made[-1]["out_shape"]
    if layers[-1]["type"] not in LOSS_TYPES:
        raise SpecError('the last layer must be a loss layer (softmax, svm or regression), '
                        'e.g. {"type": "softmax", "num_classes": 10}', str(last), None,
                        obj[last]["type"])
    return NetSpec(layers, **meta)


def count_raw_layers(layers: list, limit: int) -> int:
    """Layer objects in a user-level list, the layers, shortcut and branches of blocks
    counted, depth first; stops as soon as the count passes `limit` (so it costs at most
    `limit` steps however large the document) and below MAX_DEPTH + 1 levels of blocks."""
    count = 0
    stack = [(layers, 0)]
    while stack:
        chain, depth = stack.pop()
        for item in chain:
            count += 1
            if count > limit:
                return count
            if not isinstance(item, dict) or depth > MAX_DEPTH:
                continue
            for key in ("layers", "shortcut"):
                if isinstance(item.get(key), list):
                    stack.append((item[key], depth + 1))
            branches = item.get("branches")
            if isinstance(branches, list):
                count += len(branches)          # a branch list counts as one entry too
                stack.extend((b, depth + 1) for b in branches[:limit] if isinstance(b, list))
    return count


def _reject_constant(name: str):
    raise SpecError(f"{name} is not allowed in a spec; write a finite number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SpecError(f"duplicate key '{key}' in one object")
        out[key] = value
    return out


def decode_spec_text(text: str | bytes) -> Any:
    """JSON text -> Python value; JSON mistakes become SpecErrors with line and column."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SpecError("a spec must be UTF-8 text") from None
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError(f"a spec must be at most {MAX_SPEC_CHARS:,} characters, got "
                        f"{len(text):,}")
    try:
        # Integers too long for any field stay LongIntegers: the layer check then names the
        # layer and field (int() would refuse 4,301 digits with an error that names neither).
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates,
                          parse_int=values.parse_int)
    except json.JSONDecodeError as exc:
        raise SpecError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
                        ) from None
    except RecursionError:
        raise SpecError("invalid JSON: nested too deeply") from None


def load_spec_text(text: str | bytes, *, budget: Budget | None = DEFAULT_BUDGET) -> NetSpec:
    """parse_spec(decode_spec_text(text))."""
    return parse_spec(decode_spec_text(text), budget=budget)
