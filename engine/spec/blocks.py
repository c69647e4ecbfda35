"""Blocks that hold other layers: residual (inner(x) + shortcut(x)) and concat (inception).

User level: {"type": "residual", "layers": [...], "projection": "auto" | true | false} or with an
explicit "shortcut": [...]; {"type": "concat", "branches": [[...], [...]]}. Inner layers start
from the block's input. A projection shortcut is a 1x1 conv (no bias, stride = how much the
inner layers shrink the input) followed by batchnorm, as in ResNet's option B. Their inner
layers are read by the `chain` the caller passes (layers.normalise_chain): blocks recurse
through it without importing it.
"""

from __future__ import annotations

from typing import Callable

from engine.spec.reader import MAX_DEPTH, Reader, Shape, fmt_shape

# (layer objects, index path, input shape, depth, on_layer) -> normalised layer defs
Chain = Callable[[list, str, Shape, int, Callable], list]


def _projection_stride(size: int, out: int) -> int | None:
    """Smallest stride s with a 1x1 window taking `size` to `out`: (size - 1)//s + 1 == out."""
    if out < 1 or out > size:
        return None
    s = (size - 1) // out + 1
    return s if (size - 1) // s + 1 == out else None


def make_projection(in_shape: Shape, out_shape: Shape) -> list[dict] | None:
    """[1x1 conv without bias, batchnorm] mapping in_shape to out_shape; None if none can."""
    c, h, w = in_shape
    f, out_h, out_w = out_shape
    sy, sx = _projection_stride(h, out_h), _projection_stride(w, out_w)
    if sy is None or sx is None:
        return None
    # A stride-2 1x1 conv on an even size skips the last row: floor rounding, as in ResNet.
    rounding = "floor" if (h - 1) % sy or (w - 1) % sx else "exact"
    conv = {"type": "conv", "sx": 1, "sy": 1, "filters": f, "stride_x": sx, "stride_y": sy,
            "pad_x": 0, "pad_y": 0, "rounding": rounding, "bias": False,
            "l1_decay_mul": 0.0, "l2_decay_mul": 1.0, "bias_pref": 0.0,
            "in_shape": in_shape, "out_shape": out_shape}
    norm = {"type": "batchnorm", "eps": 1e-5, "momentum": 0.1,
            "in_shape": out_shape, "out_shape": out_shape}
    return [conv, norm]


def _residual(r: Reader, in_shape: Shape, depth: int, on_layer, chain: Chain) -> dict:
    inner = chain(r.list("layers", "layer objects"), f"{r.path}.layers", in_shape,
                  depth + 1, on_layer)
    out_shape = inner[-1]["out_shape"]
    projection = r.choice("projection", ("auto", True, False), "auto")
    if r.has("shortcut"):
        if r.has("projection"):
            raise r.error("shortcut", "give either \"projection\" or \"shortcut\", not both")
        given = r.obj["shortcut"]
        if not isinstance(given, list):
            raise r.error("shortcut", "must be a list of layer objects ([] for identity)")
        shortcut = chain(given, f"{r.path}.shortcut", in_shape, depth + 1, on_layer)
        short_out = shortcut[-1]["out_shape"] if shortcut else in_shape
        if short_out != out_shape:
            raise r.error("shortcut", f"the shortcut gives {fmt_shape(short_out)} but the inner "
                                      f"layers give {fmt_shape(out_shape)}; they are added, so "
                                      "they must agree")
    elif projection is True or (projection == "auto" and out_shape != in_shape):
        shortcut = make_projection(in_shape, out_shape)
        if shortcut is None:
            raise r.error("layers", f"the inner layers turn {fmt_shape(in_shape)} into "
                                    f"{fmt_shape(out_shape)}; no strided 1x1 convolution maps "
                                    "one onto the other, so no projection shortcut fits")
        for d in shortcut:
            on_layer(d, r)
    elif out_shape != in_shape:
        raise r.error("projection", f"the inner layers turn {fmt_shape(in_shape)} into "
                                    f"{fmt_shape(out_shape)}, so an identity shortcut cannot "
                                    "be added to them; use \"projection\": \"auto\" (a 1x1 conv "
                                    "and batchnorm) or keep the shape inside the block")
    else:
        shortcut = []
    return {"type": "residual", "layers": inner, "shortcut": shortcut, "out_shape": out_shape}


def _concat(r: Reader, in_shape: Shape, depth: int, on_layer, chain: Chain) -> dict:
    branches, outs = [], []
    for b, branch in enumerate(r.list("branches", "branches (lists of layer objects)")):
        if not isinstance(branch, list) or not branch:
            raise r.error("branches", f"branch {b} must be a non-empty list of layer objects")
        defs = chain(branch, f"{r.path}.branches.{b}", in_shape, depth + 1, on_layer)
        branches.append(defs)
        outs.append(defs[-1]["out_shape"])
    if len({shape[1:] for shape in outs}) > 1:
        shown = ", ".join(f"branch {b} gives {fmt_shape(s)}" for b, s in enumerate(outs))
        raise r.error("branches", "branch outputs are stacked on channels, so they must agree "
                                  f"on height and width: {shown}")
    out_shape = (sum(s[0] for s in outs),) + outs[0][1:]
    return {"type": "concat", "branches": branches, "out_shape": out_shape}


def normalise_block(r: Reader, in_shape: Shape, depth: int,
                    on_layer: Callable[[dict, Reader], None], chain: Chain) -> dict:
    if depth >= MAX_DEPTH:
        raise r.error("type", f"blocks are nested more than {MAX_DEPTH} deep")
    build = _residual if r.type == "residual" else _concat
    return build(r, in_shape, depth, on_layer, chain)
