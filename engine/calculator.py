"""Architecture calculator: per layer the output shape, parameters (with their formula), FLOPs,
activations and receptive field; totals and memory per image. Arithmetic only, on a NetSpec.

Conventions (CONVENTIONS below is printed with every summary):
- FLOPs are forward FLOPs per image and a multiply-add counts 2 (conv 2*F*C*sy*sx*H'*W',
  fc 2*K*N; the bias add is not counted separately). Pooling counts 1 per window element,
  elementwise layers 1 per value (batchnorm 2, lrn 2n+3), a residual add 1 per value, softmax 3
  per class; dropout, concat and the svm/regression outputs count 0 (identities at inference).
- Activations follow the lecture's tables (CS231n, VGG-16): one value per output of the input,
  conv, pool, fc and lrn layers. Activation functions, dropout, batchnorm, the residual add,
  concat and loss layers count 0, so the ConvNetJS shorthand and separate relu layers agree.
- The engine's training memory is a separate figure: every layer's output (elementwise layers,
  block outputs and the input batch included) and a gradient of the same size, per image; plus,
  once, parameters, their gradients, 2 optimizer slots (Adam/Adadelta, the most any optimizer
  here keeps) and batchnorm running statistics. Kernel scratch and caches are not counted.
"""

from __future__ import annotations

from typing import Any

FLOAT_BYTES = 4          # float32
OPTIMIZER_SLOTS = 2      # Adam's m and v (Adadelta's two accumulators)
EXAMPLE_BATCH = 32
LECTURE_ACTIVATIONS = ("input", "conv", "pool", "global_avg_pool", "fc", "lrn")
CONVENTIONS = [
    "FLOPs: forward, per image; a multiply-add counts 2 FLOPs.",
    "activations (lecture convention): one value per output of input, conv, pool, fc and lrn "
    "layers; activation functions, dropout, batchnorm, residual adds and concat count 0.",
    "forward memory = activations x 4 bytes (float32), as in the lecture.",
    "training memory (this engine): every layer's output and its gradient per image, plus "
    f"params, grads, {OPTIMIZER_SLOTS} optimizer slots and batchnorm statistics; kernel scratch "
    "and caches not counted.",
]


def _volume(shape) -> int:
    c, h, w = shape
    return c * h * w


def own_params(d: dict) -> tuple[int, str]:
    """Parameters a layer holds itself (a block's children are counted on their own)."""
    t, (c, h, w) = d["type"], d["in_shape"]
    if t == "conv":
        f, weights = d["filters"], d["filters"] * d["sy"] * d["sx"] * c
        bias = f if d["bias"] else 0
        formula = f"{f}x{d['sy']}x{d['sx']}x{c}" + (f"+{f}" if bias else "")
        return weights + bias, f"{formula} = {weights + bias}"
    if t == "fc":
        k, n = d["num_neurons"], c * h * w
        bias = k if d["bias"] else 0
        return k * n + bias, f"{k}x{n}" + (f"+{k}" if bias else "") + f" = {k * n + bias}"
    if t == "batchnorm":
        return 2 * c, f"2x{c} = {2 * c}"
    return 0, ""


def own_param_shapes(d: dict) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """The arrays a layer holds itself, by name, as the engine's layers make them:
    ({param: shape}, {buffer: shape}). A block's children are named by `param_shapes`."""
    t, c = d["type"], d["in_shape"][0]
    if t == "conv":
        params = {"w": (d["filters"], c, d["sy"], d["sx"])}
        return ({**params, "b": (d["filters"],)} if d["bias"] else params), {}
    if t == "fc":
        c, h, w = d["in_shape"]
        params = {"w": (d["num_neurons"], c * h * w)}
        return ({**params, "b": (d["num_neurons"],)} if d["bias"] else params), {}
    if t == "batchnorm":
        return {"gamma": (c,), "beta": (c,)}, {"running_mean": (c,), "running_var": (c,)}
    return {}, {}


def param_shapes(spec) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """({name: shape} of every parameter, {name: shape} of every buffer) of the net a spec
    builds, named and ordered as Net.named_params() and named_buffers() name them; arithmetic
    only, so a snapshot's arrays can be checked before any net is allocated."""
    params: dict[str, tuple] = {}
    buffers: dict[str, tuple] = {}

    def visit(d: dict, prefix: str) -> None:
        own_p, own_b = own_param_shapes(d)
        for chain, layers in children(d):
            for j, child in enumerate(layers):
                visit(child, f"{prefix}{chain}.{j}.")
        params.update((prefix + name, shape) for name, shape in own_p.items())
        buffers.update((prefix + name, shape) for name, shape in own_b.items())

    for i, d in enumerate(spec.layers):
        visit(d, f"{i}.")
    return params, buffers


def own_buffers(d: dict) -> int:
    """Non-trainable values (batchnorm running mean and variance)."""
    return 2 * d["in_shape"][0] if d["type"] == "batchnorm" else 0


def own_flops(d: dict) -> int:
    t, n_in, n_out = d["type"], _volume(d["in_shape"]), _volume(d["out_shape"])
    if t == "conv":
        return 2 * n_out * d["in_shape"][0] * d["sy"] * d["sx"]
    if t == "fc":
        return 2 * n_out * n_in
    if t == "pool":
        return n_out * d["sy"] * d["sx"]
    if t in ("global_avg_pool", "relu", "sigmoid", "tanh", "leaky_relu", "gelu", "maxout"):
        return n_in
    if t == "batchnorm":
        return 2 * n_in
    if t == "lrn":
        return (2 * d["n"] + 3) * n_in
    if t == "residual":
        return n_out
    if t == "softmax":
        return 3 * n_out
    return 0


def own_activations(d: dict) -> int:
    """Lecture convention (see module docstring)."""
    return _volume(d["out_shape"]) if d["type"] in LECTURE_ACTIVATIONS else 0


def own_stored(d: dict) -> int:
    """Values of the output buffer this layer writes itself (engine count, per image)."""
    return _volume(d["out_shape"])


def children(d: dict) -> list[tuple[str, list[dict]]]:
    """A block's chains, named as the engine names their parameters."""
    if d["type"] == "residual":
        return [("layers", d["layers"]), ("shortcut", d["shortcut"])]
    if d["type"] == "concat":
        return [(f"branches.{b}", chain) for b, chain in enumerate(d["branches"])]
    return []


def _grow_field(d: dict, field: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """(rf_h, rf_w, jump_h, jump_w) after this layer: rf += (k - 1)*jump, jump *= stride."""
    rf_h, rf_w, jump_h, jump_w = field
    t, (_, h, w) = d["type"], d["in_shape"]
    if t in ("conv", "pool"):
        return (rf_h + (d["sy"] - 1) * jump_h, rf_w + (d["sx"] - 1) * jump_w,
                jump_h * d["stride_y"], jump_w * d["stride_x"])
    if t in ("fc", "global_avg_pool"):  # a window as large as its input
        return rf_h + (h - 1) * jump_h, rf_w + (w - 1) * jump_w, jump_h * h, jump_w * w
    return field


def _row(d: dict, index: str, depth: int, field) -> tuple[dict, Any]:
    kids, kid_fields = [], []
    for name, chain in children(d):
        chain_field = field
        for j, child in enumerate(chain):
            row, chain_field = _row(child, f"{index}.{name}.{j}", depth + 1, chain_field)
            kids.append(row)
        kid_fields.append(chain_field)
    params, formula = own_params(d)
    flops, acts = own_flops(d), own_activations(d)
    stored, buffers = own_stored(d), own_buffers(d)
    if kids:
        field = tuple(max(f[i] for f in kid_fields) for i in range(4))
        params = sum(k["params"] for k in kids)
        nonzero = [str(k["params"]) for k in kids if k["params"]]
        formula = f"{'+'.join(nonzero)} = {params}" if len(nonzero) > 1 else ""
        flops += sum(k["flops"] for k in kids)
        acts += sum(k["activations"] for k in kids)
        stored += sum(k["stored_values"] for k in kids)
        buffers += sum(k["buffers"] for k in kids)
    else:
        field = _grow_field(d, field)
    c, h, w = d["out_shape"]
    row = {"index": index, "type": d["type"], "depth": depth, "out_shape": [h, w, c],
           "params": params, "formula": formula, "flops": flops, "activations": acts,
           "bytes": acts * FLOAT_BYTES, "receptive_field": [field[0], field[1]],
           "jump": [field[2], field[3]], "stored_values": stored, "buffers": buffers}
    if kids:
        row["children"] = kids
    return row, field


def summarize(spec) -> dict:
    """The calculator's table for a NetSpec as a JSON-able dict (see module docstring)."""
    rows, field = [], (1, 1, 1, 1)
    for i, d in enumerate(spec.layers):
        row, field = _row(d, str(i), 0, field)
        rows.append(row)
    params = sum(r["params"] for r in rows)
    activations = sum(r["activations"] for r in rows)
    stored = sum(r["stored_values"] for r in rows)
    buffers = sum(r["buffers"] for r in rows)
    per_image = 2 * stored * FLOAT_BYTES
    fixed = ((2 + OPTIMIZER_SLOTS) * params + buffers) * FLOAT_BYTES
    c, h, w = spec.input_shape
    return {
        "name": spec.name,
        "description": spec.description,
        "input_shape": [h, w, c],
        "layers": rows,
        "params": params,
        "flops": sum(r["flops"] for r in rows),
        "activations": activations,
        "memory": {
            "forward_bytes_per_image": activations * FLOAT_BYTES,
            "training_values_per_image": 2 * stored,
            "training_bytes_per_image": per_image,
            "training_fixed_bytes": fixed,
            "example_batch": EXAMPLE_BATCH,
            "training_bytes_example_batch": fixed + EXAMPLE_BATCH * per_image,
        },
        "notes": list(spec.notes),
        "conventions": CONVENTIONS,
    }


def _si(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M' (decimal prefixes, as FLOPs and MB are usually quoted)."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{prefix}{unit}"
    return f"{n:g}{unit}" if unit else str(n)


def _bytes(n: int) -> str:
    mib = f", {n / 2**20:,.1f} MiB" if n >= 2**20 else ""
    return f"{n:,} bytes ({_si(n, 'B')}{mib})"


def _flat(rows: list[dict]):
    for row in rows:
        yield row
        yield from _flat(row.get("children", []))


def flat_rows(summary: dict) -> dict[str, dict]:
    """Every row of the table, blocks' inner layers too, by index ("5", "5.layers.0")."""
    return {row["index"]: row for row in _flat(summary.get("layers", []))}


def render_summary(summary: dict) -> str:
    """The summary as an aligned text table with totals, both memory figures and notes."""
    header = ("layer", "type", "output HxWxC", "params", "formula", "FLOPs", "activations",
              "RF")
    lines = []
    for row in _flat(summary["layers"]):
        h, w, c = row["out_shape"]
        rf_h, rf_w = row["receptive_field"]
        lines.append((row["index"], "  " * row["depth"] + row["type"], f"{h}x{w}x{c}",
                      f"{row['params']:,}", row["formula"], _si(row["flops"]),
                      f"{row['activations']:,}", f"{rf_h}x{rf_w}"))
    widths = [max(len(r[i]) for r in [header] + lines) for i in range(len(header))]
    right = {3, 5, 6, 7}

    def fmt(cells) -> str:
        return "  ".join(cell.rjust(wd) if i in right else cell.ljust(wd)
                         for i, (cell, wd) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(fmt(["x" * wd for wd in widths]))
    mem = summary["memory"]
    title = summary["name"] or "net"
    out = [f"{title}: {summary['description']}" if summary.get("description") else title,
           fmt(header), rule] + [fmt(line) for line in lines] + [rule]
    h, w, c = summary["input_shape"]
    out += [
        f"input: {h}x{w}x{c}",
        f"params: {summary['params']:,}",
        f"FLOPs per image (forward, multiply-add = 2): {summary['flops']:,} "
        f"({_si(summary['flops'])})",
        f"activations per image (lecture count): {summary['activations']:,} values",
        f"memory per image, forward (lecture: activations x 4 bytes): "
        f"{_bytes(mem['forward_bytes_per_image'])}",
        f"memory for training in this engine: {_bytes(mem['training_bytes_per_image'])} per "
        f"image + {_bytes(mem['training_fixed_bytes'])} for the weights; at batch "
        f"{mem['example_batch']}: {_bytes(mem['training_bytes_example_batch'])}",
    ]
    if summary["notes"]:
        out += ["", "notes:"] + [f"- {note}" for note in summary["notes"]]
    out += ["", "conventions:"] + [f"- {c}" for c in summary["conventions"]]
    return "\n".join(out) + "\n"
