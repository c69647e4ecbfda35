"""Pictures of a net at work, as base64 PNGs the page draws: LAYER_VISUALS, images, saliency.

For every top-level layer (see the contract's FRAME):
- act: the layer's output for one image, its channels tiled in a grid (at most MAX_TILES),
  all scaled by one min..max for the layer (so channels compare), black = min, white = max.
- grad: the same for the gradient flowing into that output (d loss / d output for a frame,
  d top score / d output for a classified upload); null for the loss layer itself.
- filters (conv layers only): one tile per filter (at most MAX_TILES). A conv with 3 input
  channels (the first conv on an RGB image) draws its filters in colour (R, G, B scaled by
  one min..max); any other conv draws each filter as the MEAN of its weights over the input
  channels, in grey (a summary: one tile per filter keeps the grid readable at 64x64 filters).
  fc and block layers (residual, concat) have filters: null.
- filter_grads: the same for this image's gradient with respect to those weights.
Tiles are laid out row by row, `cols` per row, with no gaps; `tile` is [height, width] of
one tile. The page enlarges small tiles (image-rendering: pixelated).
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np
from PIL import Image

MAX_TILES = 32


def png_b64(pixels: np.ndarray) -> str:
    """uint8 (H, W) grey or (H, W, 3) RGB -> base64 of a PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=3)
    return base64.b64encode(buf.getvalue()).decode("ascii")


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


def tile_grid(maps: np.ndarray, *, color: bool = False) -> dict[str, Any]:
    """maps (C, h, w) grey tiles, or (F, 3, h, w) colour tiles -> {"min","max","grid","cols",
    "tile"} with at most MAX_TILES tiles."""
    maps = maps[:MAX_TILES]
    values, lo, hi = _finite_range(maps)
    count = len(values)
    h, w = values.shape[-2:]
    cols = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / cols))
    scaled = _scale(values, lo, hi) if count else values.astype(np.uint8)
    if color:
        grid = np.zeros((rows * h, cols * w, 3), dtype=np.uint8)
        for k in range(count):
            r, c = divmod(k, cols)
            grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = scaled[k].transpose(1, 2, 0)
    else:
        grid = np.zeros((rows * h, cols * w), dtype=np.uint8)
        for k in range(count):
            r, c = divmod(k, cols)
            grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = scaled[k]
    return {"min": lo, "max": hi, "grid": png_b64(grid), "cols": cols, "tile": [int(h), int(w)],
            "count": int(count)}


def filter_tiles(w: np.ndarray) -> dict[str, Any]:
    """Conv weights (F, C, sy, sx) -> tiles (see the module docstring for colour vs grey)."""
    if w.shape[1] == 3:
        return {**tile_grid(w, color=True), "color": True}
    return {**tile_grid(w.mean(axis=1)), "color": False}


def layer_visuals(net, outputs: list[np.ndarray], output_grads: list | None,
                  grads: list[dict[str, np.ndarray]] | None, item: int = 0) -> list[dict]:
    """LAYER_VISUALS for example `item` of a forward (outputs) and backward (output_grads:
    d/d each layer's output; grads: d/d parameters, for this one example)."""
    out = []
    for i, layer in enumerate(net.layers):
        c, h, w = layer.out_shape
        entry: dict[str, Any] = {
            "index": i, "type": layer.type, "shape": [int(c), int(h), int(w)],
            "act": tile_grid(outputs[i][item]),
            "grad": None, "filters": None, "filter_grads": None,
        }
        if output_grads is not None and output_grads[i] is not None:
            entry["grad"] = tile_grid(output_grads[i][item])
        if layer.type == "conv":
            entry["filters"] = filter_tiles(layer.params["w"])
            if grads is not None and "w" in grads[i]:
                entry["filter_grads"] = filter_tiles(grads[i]["w"])
        out.append(entry)
    return out


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
