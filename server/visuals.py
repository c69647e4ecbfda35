"""Pictures of a net at work, as base64 PNGs the page draws: LAYER_VISUALS, images, saliency.

For every top-level layer (see the contract's FRAME), `layer_entry` gives:
- geometry: conv {size, stride, pad ([y, x] each), filters, in_channels}; pool {size, stride,
  pad, mode}; global_avg_pool {size, mode}; a block (residual, concat) {inner: {path: that
  of each conv and pool inside, by its path in the block, "layers.0"}}; null for the rest
  (the side panel shows it).
- channels: how many channels the output has.
- act / grad: a layer whose output has more than one pixel per channel: its channels (at most
  MAX_TILES in a frame) tiled in a grid, all scaled by one min..max over ALL its channels (so
  channels compare, and a page of the rest matches), black = min, white = max. grad is the
  same for the gradient flowing into that output (d loss / d output for a frame, d top score
  / d output for a classified upload); null for the loss layer itself.
- values: a layer whose output is one number per channel (fc, softmax, global average
  pooling): {act, grad, labels, count, of, start, min, max}, the numbers themselves (at most
  MAX_TILES), labelled with the class names where they are the class scores (the loss layer
  and the layers before it that keep channel k as class k), else null (the page numbers
  them). act and grad are null for such a layer.
- filters (conv layers only): one tile per filter. A conv with 3 input channels draws its
  filters in colour (R, G, B scaled by one min..max, mean_over null); any other conv draws
  each filter as the MEAN of its weights over its `mean_over` input channels, in grey (one
  tile per filter keeps the grid readable at 64x64 filters; a frame's details route gives a
  filter's slices one by one). fc and block layers (residual, concat) have filters: null.
- filter_grads: the same for this image's gradient with respect to those weights.
A grid is {min, max, grid, cols, tile: [height, width], count, of, start}: `count` tiles of
the `of` there are, from `start`, laid out row by row, `cols` per row, no gaps (the page adds
them); cells past the last tile are transparent (the PNG then has an alpha channel), never
black, which would read as values. Columns are picked to leave as few empty cells as can be.

A training frame's entries come from FrameDetails: the arrays behind the frame, copied by
the worker when it makes the frame, so that GET /api/frame/layer (every channel, a page at a
time) and GET /api/frame/filter (one filter's per-input-channel slices) answer from plain
arrays in any thread, without the engine. Its entries carry `detail_url` (when a picture
shows fewer channels than there are) and, on conv filters, `slices_url`; both name the frame
(`frame=` its id), so a page that shows an older frame than the latest gets that frame's
channels and weights, not a newer one's (another image, other weights). The latest frame
keeps the RECENT_FRAMES - 1 before it.
"""

from __future__ import annotations

import base64
import io
import itertools
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

MAX_TILES = 32           # tiles or values per picture in a frame (sent to every viewer)
MAX_DETAIL = 256         # per answer of the details routes (asked for one at a time)
LAYER_PATH = "/api/frame/layer"
# Frames whose details stay answerable: a viewer's page shows a frame up to 10 s old (the
# stream sends it one every 10 s), and frames are made every 3 s or more.
RECENT_FRAMES = 8
KEPT_BYTES = 64_000_000     # ...fewer where the arrays of that many would pass this
FILTER_PATH = "/api/frame/filter"
# Layers whose channel k is their input's channel k: the class scores keep their class.
KEEPS_CHANNELS = frozenset({"softmax", "svm", "relu", "leaky_relu", "gelu", "sigmoid",
                            "tanh", "dropout", "batchnorm", "pool", "global_avg_pool"})
RGB = ("R", "G", "B")


def png_b64(pixels: np.ndarray) -> str:
    """uint8 (H, W) grey, (H, W, 2) grey + alpha, (H, W, 3) RGB or (H, W, 4) RGBA -> base64
    of a PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=3)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def data_url(pixels: np.ndarray) -> str:
    return "data:image/png;base64," + png_b64(pixels)


def _finite_range(a: np.ndarray) -> tuple[np.ndarray, float | None, float | None]:
    """a with non-finite values as 0, and its min and max (None for an empty array)."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if a.size == 0:
        return a, None, None
    return a, float(a.min()), float(a.max())


def _scale(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi - lo <= 1e-12 * max(1.0, abs(hi), abs(lo)):
        return np.full(a.shape, 128, dtype=np.uint8)
    return np.clip(np.rint((a - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def grid_cols(count: int) -> int:
    """Columns for `count` tiles: near square, with the fewest empty cells (3 -> 3, 32 -> 8,
    20 -> 5), never more than twice the square's side."""
    side = max(1, math.ceil(math.sqrt(count)))
    return min(range(side, min(2 * side, max(count, 1)) + 1),
               key=lambda cols: (math.ceil(count / cols) * cols - count, cols))


def _window(total: int, start: int, limit: int) -> range:
    return range(min(start, total), min(total, start + limit))


def tile_grid(maps: np.ndarray, *, color: bool = False, start: int = 0,
              limit: int = MAX_TILES) -> dict[str, Any]:
    """maps (C, h, w) grey tiles, or (F, 3, h, w) colour tiles -> a grid (see the module
    docstring) of tiles start..start+limit, scaled by the min..max of all of them."""
    values, lo, hi = _finite_range(maps)
    total = len(values)
    shown = _window(total, start, limit)
    count = len(shown)
    h, w = values.shape[-2:]
    cols = grid_cols(count)
    rows = max(1, math.ceil(count / cols))
    scaled = _scale(values[shown.start:shown.stop], lo, hi) if count else None
    bands = 3 if color else 1
    alpha = rows * cols > count
    grid = np.zeros((rows * h, cols * w, bands + alpha), dtype=np.uint8)
    for k in range(count):
        r, c = divmod(k, cols)
        cell = grid[r * h:(r + 1) * h, c * w:(c + 1) * w]
        cell[..., :bands] = scaled[k].transpose(1, 2, 0) if color else scaled[k][..., None]
        if alpha:
            cell[..., bands] = 255
    return {"min": lo, "max": hi, "grid": png_b64(grid if bands + alpha > 1 else grid[..., 0]),
            "cols": cols, "tile": [int(h), int(w)], "count": count, "of": total,
            "start": shown.start}


def filter_tiles(w: np.ndarray, *, start: int = 0, limit: int = MAX_TILES) -> dict[str, Any]:
    """Conv weights (F, C, sy, sx) -> tiles (see the module docstring for colour vs grey)."""
    if w.shape[1] == 3:
        return {**tile_grid(w, color=True, start=start, limit=limit), "color": True,
                "mean_over": None}
    return {**tile_grid(w.mean(axis=1), start=start, limit=limit), "color": False,
            "mean_over": int(w.shape[1])}


def value_bars(act: np.ndarray, grad: np.ndarray | None, labels, *, start: int = 0,
               limit: int = MAX_TILES) -> dict[str, Any]:
    """One number per channel (C,) and its gradient -> the `values` entry."""
    act = np.asarray(act, dtype=np.float64).reshape(-1)
    shown = _window(len(act), start, limit)
    _, lo, hi = _finite_range(act)
    part = slice(shown.start, shown.stop)
    return {"act": act[part].tolist(),
            "grad": None if grad is None else
            np.asarray(grad, dtype=np.float64).reshape(-1)[part].tolist(),
            "labels": None if labels is None else list(labels[part]),
            "count": len(shown), "of": len(act), "start": shown.start, "min": lo, "max": hi}


def geometry(layer) -> dict[str, Any] | None:
    """A layer's window: filter or pool size, stride and padding ([y, x] each)."""
    if layer.type in ("conv", "pool"):
        out = {"size": [layer.sy, layer.sx], "stride": [layer.stride_y, layer.stride_x],
               "pad": [layer.pad_y, layer.pad_x]}
        if layer.type == "conv":
            return {**out, "filters": layer.filters, "in_channels": int(layer.in_shape[0])}
        return {**out, "mode": layer.mode}
    if layer.type == "global_avg_pool":
        return {"size": [int(n) for n in layer.in_shape[1:]], "mode": "avg"}
    if hasattr(layer, "walk"):       # a block: walk() reaches the layers of blocks inside it
        inner = {path: g for path, child in layer.walk()
                 if (g := geometry(child)) is not None and "inner" not in g}
        return {"inner": inner} if inner else None
    return None


def class_layers(net, classes) -> set[int]:
    """Indices of the layers whose channels are the classes: the loss layer, and before it
    each layer of one value per class that the next layer keeps channel by channel."""
    layers = net.layers
    last = len(layers) - 1
    if classes is None or layers[last].type == "regression":
        return set()
    picked: set[int] = set()
    for i in range(last, -1, -1):
        c, h, w = layers[i].out_shape
        if (h, w) != (1, 1) or c != len(classes):
            break
        picked.add(i)
        if layers[i].type not in KEEPS_CHANNELS:
            break            # an fc makes the class scores: its input is not them
    return picked


@dataclass(frozen=True, eq=False)
class LayerArrays:
    """What one layer's pictures are made from, for one example (never changed once made)."""

    index: int
    type: str
    shape: tuple[int, int, int]           # (C, H, W)
    geometry: dict | None
    act: np.ndarray                       # (C, H, W)
    grad: np.ndarray | None               # (C, H, W)
    weights: np.ndarray | None            # conv (F, C, sy, sx)
    weight_grads: np.ndarray | None
    bias: np.ndarray | None               # conv (F,)
    labels: tuple[str, ...] | None        # the class of each channel
    in_names: tuple[str, ...] | None      # the input channels' names (R, G, B), else None


def layer_arrays(net, outputs, output_grads, grads, *, item: int = 0, classes=None,
                 copy: bool = False) -> tuple[LayerArrays, ...]:
    """LayerArrays of every top-level layer; copy=True copies what training changes in place
    (weights and the gradient arrays); outputs and output_grads must be the caller's own."""
    keep = (lambda a: np.array(a, copy=True)) if copy else (lambda a: a)
    labelled = class_layers(net, None if classes is None else tuple(classes))
    out = []
    for i, layer in enumerate(net.layers):
        c, h, w = (int(n) for n in layer.out_shape)
        grad = output_grads[i] if output_grads is not None else None
        conv = layer.type == "conv"
        params = layer.params if conv else {}
        pgrads = grads[i] if conv and grads is not None else {}
        rgb = conv and i == 1 and net.layers[0].type == "input" and layer.in_shape[0] == 3
        out.append(LayerArrays(
            index=i, type=layer.type, shape=(c, h, w), geometry=geometry(layer),
            act=outputs[i][item], grad=None if grad is None else grad[item],
            weights=keep(params["w"]) if "w" in params else None,
            weight_grads=keep(pgrads["w"]) if "w" in pgrads else None,
            bias=keep(params["b"]) if "b" in params else None,
            labels=tuple(classes) if i in labelled else None,
            in_names=RGB if rgb else None))
    return tuple(out)


def layer_entry(a: LayerArrays, *, start: int = 0, limit: int = MAX_TILES) -> dict[str, Any]:
    """One layer's LAYER_VISUALS entry (see the module docstring), channels start..+limit."""
    c, h, w = a.shape
    entry: dict[str, Any] = {
        "index": a.index, "type": a.type, "shape": [c, h, w], "geometry": a.geometry,
        "channels": c, "act": None, "grad": None, "values": None, "filters": None,
        "filter_grads": None,
    }
    if h * w == 1:
        entry["values"] = value_bars(a.act, a.grad, a.labels, start=start, limit=limit)
    else:
        entry["act"] = tile_grid(a.act, start=start, limit=limit)
        if a.grad is not None:
            entry["grad"] = tile_grid(a.grad, start=start, limit=limit)
    if a.weights is not None:
        entry["filters"] = filter_tiles(a.weights, start=start, limit=limit)
        if a.weight_grads is not None:
            entry["filter_grads"] = filter_tiles(a.weight_grads, start=start, limit=limit)
    return entry


def layer_visuals(net, outputs: list[np.ndarray], output_grads: list | None,
                  grads: list[dict[str, np.ndarray]] | None, item: int = 0,
                  classes=None) -> list[dict]:
    """LAYER_VISUALS for example `item` of a forward (outputs) and backward (output_grads:
    d/d each layer's output; grads: d/d parameters, for this one example)."""
    return [layer_entry(a) for a in layer_arrays(net, outputs, output_grads, grads, item=item,
                                                 classes=classes)]


def filter_slices(a: LayerArrays, index: int, *, start: int = 0,
                  limit: int = MAX_DETAIL) -> dict[str, Any]:
    """Filter `index` of conv layer `a`, one grey PNG per input channel (start..+limit), all
    scaled by the filter's own min..max (black = min, white = max)."""
    w = a.weights[index]
    values, lo, hi = _finite_range(w)
    shown = _window(len(values), start, limit)
    scaled = _scale(values[shown.start:shown.stop], lo, hi)
    names = a.in_names
    bias = None if a.bias is None else float(a.bias[index])
    return {"layer": a.index, "type": a.type, "index": index, "filters": len(a.weights),
            "in_channels": len(values), "size": [int(n) for n in w.shape[1:]],
            "start": shown.start, "count": len(shown), "min": lo, "max": hi, "bias": bias,
            "slices": [{"channel": ch, "name": names[ch] if names else str(ch),
                        "image": data_url(scaled[k])} for k, ch in enumerate(shown)]}


_frame_ids = itertools.count(1)


def _nbytes(layers: tuple[LayerArrays, ...]) -> int:
    return sum(a.nbytes for layer in layers for a in (layer.act, layer.grad, layer.weights,
                                                      layer.weight_grads, layer.bias)
               if a is not None)


@dataclass(frozen=True, eq=False)
class FrameDetails:
    """The arrays behind one training frame, for the details routes (read in any thread)."""

    step: int
    layers: tuple[LayerArrays, ...]
    id: int = 0                                  # unique in this process
    earlier: tuple[FrameDetails, ...] = ()       # the frames before it, newest first

    @classmethod
    def capture(cls, step: int, net, outputs, output_grads, grads, classes,
                previous: FrameDetails | None = None) -> FrameDetails:
        """Called by the worker while it makes a frame: copies what training changes, and
        keeps `previous` (the last frame's details) and the frames it kept, RECENT_FRAMES in
        all and KEPT_BYTES at most (each kept one without its own `earlier`: the chain never
        grows)."""
        layers = layer_arrays(net, outputs, output_grads, grads, classes=classes, copy=True)
        candidates = () if previous is None else (
            (replace(previous, earlier=()),) + previous.earlier)[:RECENT_FRAMES - 1]
        earlier, kept = [], _nbytes(layers)
        for frame in candidates:
            kept += _nbytes(frame.layers)
            if kept > KEPT_BYTES:
                break
            earlier.append(frame)
        return cls(int(step), layers, next(_frame_ids), tuple(earlier))

    def find(self, frame_id: int | None) -> FrameDetails | None:
        """This frame (frame_id None: the latest) or a kept earlier one, else None."""
        if frame_id is None or frame_id == self.id:
            return self
        return next((f for f in self.earlier if f.id == frame_id), None)

    def visuals(self) -> list[dict]:
        """The frame's LAYER_VISUALS, with the addresses of their details."""
        out = []
        for a in self.layers:
            entry = layer_entry(a)
            parts = [entry[key] for key in ("act", "values", "filters") if entry[key]]
            if any(part["count"] < part["of"] for part in parts):
                entry["detail_url"] = f"{LAYER_PATH}?layer={a.index}&frame={self.id}"
            if entry["filters"] is not None:
                entry["filters"]["slices_url"] = f"{FILTER_PATH}?layer={a.index}&frame={self.id}"
            out.append(entry)
        return out

    def layer(self, index: int, start: int) -> dict[str, Any]:
        return {"step": self.step, "frame": self.id,
                **layer_entry(self.layers[index], start=start, limit=MAX_DETAIL)}

    def filter(self, layer: int, index: int, start: int) -> dict[str, Any]:
        return {"step": self.step, "frame": self.id,
                **filter_slices(self.layers[layer], index, start=start)}


def image_b64(image_hwc: np.ndarray) -> str:
    """uint8 (H, W, 3) RGB (as stored in the data set) -> base64 PNG."""
    return png_b64(np.asarray(image_hwc, dtype=np.uint8))


def _hot(t: np.ndarray) -> np.ndarray:
    """t in 0..1 -> RGB uint8 "hot" colours: black, red, yellow, white."""
    r = np.clip(3 * t, 0, 1)
    g = np.clip(3 * t - 1, 0, 1)
    b = np.clip(3 * t - 2, 0, 1)
    return np.rint(np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


def saliency_b64(dx: np.ndarray) -> str:
    """d score / d input (3, H, W) -> PNG heat map of max |.| over channels, scaled to its
    maximum (black: no influence, white: the pixel that matters most)."""
    values, _, _ = _finite_range(np.abs(dx))
    heat = values.max(axis=0)
    top = float(heat.max()) if heat.size else 0.0
    return png_b64(_hot(heat / top if top > 0 else heat))
