"""GET /api/filters/{layer}/{channel}: the test images that excite one conv channel most,
each cut to the channel's receptive field at its strongest position (server/patches.py finds
them in the worker after each test evaluation).

`layer` is a conv's index as in the summary table and the network view: a top-level index
("3") or the path of a conv inside a residual block or a concat ("5.layers.0"). A window
that reaches past the image edge (padding; deep layers see more than the image) is CLIPPED to
the image: `box` says which pixels a patch is ([top, left, height, width] in the test image),
`field` how large the full window is. Patches are raw pixels (not normalised), enlarged with
nearest-neighbour scaling to about PATCH_PIXELS on their longer side.

The cutting and PNG encoding run in the thread pool (NumPy and Pillow only, never the
engine's kernels), once per (scan, layer, channel) however many viewers ask; the answers are
kept in a bounded cache (server/routes/filters.py's Answers).
"""

from __future__ import annotations

import re

import numpy as np
from fastapi import APIRouter, Path, Request, Response

from engine.calculator import flat_rows
from server.auth import PUBLIC
from server.errors import ApiError
from server.patches import PATCH_PIXELS, PatchResult
from server.routes.filters import Answers
from server.runtime import runtime
from server.visuals import data_url

router = APIRouter(prefix="/api", tags=["frame"])

MAX_NUMBER = 1_000_000       # larger than any layer count or channel count
MAX_INDEX = 200              # characters of a layer index: far more than any net's nesting
LAYER_INDEX = re.compile(r"\d{1,7}(\.[a-z]{1,16}(\.\d{1,7}){1,2})*")


def answers(request: Request) -> Answers:
    state = request.app.state
    if getattr(state, "patch_answers", None) is None:
        state.patch_answers = Answers()
    return state.patch_answers


def enlarged(pixels: np.ndarray) -> np.ndarray:
    """A small patch scaled up by a whole factor (nearest neighbour), up to PATCH_PIXELS."""
    factor = max(1, PATCH_PIXELS // max(1, *pixels.shape[:2]))
    return np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)


def patches_answer(result: PatchResult, layer: str, channel: int) -> dict:
    """The JSON of one channel's patches (thread pool: NumPy and Pillow only)."""
    top, window = result.top[layer], result.windows[layer]
    images = top.images[channel]
    kept = images >= 0
    indices = images[kept]
    pictures = result.split.take(indices) if len(indices) else []
    patches = []
    for picture, index, value, (y, x) in zip(pictures, indices, top.values[channel][kept],
                                             top.positions[channel][kept]):
        height, width = picture.shape[:2]
        y0, x0, h, w = window.box(int(y), int(x), height, width)
        patches.append({"image": data_url(enlarged(picture[y0:y0 + h, x0:x0 + w])),
                        "index": int(index), "value": float(value),
                        "position": [int(y), int(x)], "box": [y0, x0, h, w]})
    return {"step": result.step, "test_step": result.test_step,
            "layer": int(layer) if layer.isdigit() else layer,
            "channel": channel, "channels": int(top.values.shape[0]),
            "field": [window.height, window.width], "edge": "clipped",
            "images_scanned": result.images_scanned, "patches": patches}


def not_computed(request: Request, collector) -> ApiError:
    """409, saying when the patches will be there."""
    rt = runtime(request)
    if collector.scanning is not None:
        scan = collector.scanning
        return ApiError(409, "patches_not_ready",
                        f"the patches are being found in the weights of step {scan['step']:,} "
                        f"({scan['done']:,} of {scan['of']:,} test images looked at): ask "
                        "again in a moment", headers={"Retry-After": "2"}, field="layer",
                        scanned=scan["done"], of=scan["of"])
    settings = rt.published.settings or {}
    metrics = rt.published.metrics or {}
    every, step = settings.get("test_every"), metrics.get("step")
    when = (f" (at step {(step // every + 1) * every:,})"
            if isinstance(every, int) and every > 0 and isinstance(step, int) else
            " (at the end of this epoch)" if every == 0 else "")
    return ApiError(409, "patches_not_ready",
                    f"the patches are found after the next test evaluation{when}: there has "
                    "been none on this net's weights yet", field="layer")


@router.get("/filters/{layer}/{channel}", dependencies=[PUBLIC],
            summary="the test images that excite one conv channel most, each cut to its "
                    "receptive field (found after each test evaluation)")
async def get_patches(request: Request,
                      layer: str = Path(max_length=MAX_INDEX,
                                        description='a conv\'s index as in the summary table: '
                                                    '"3", or "5.layers.0" inside a block'),
                      channel: int = Path(ge=0, le=MAX_NUMBER, description="the channel")):
    rt = runtime(request)
    if rt.worker is None:
        raise ApiError(503, "not_ready", "the server is starting", headers={"Retry-After": "1"})
    if not LAYER_INDEX.fullmatch(layer):
        raise ApiError(422, "bad_layer", "layer must be an index from the summary table: a "
                       'number ("3"), or a path inside a block ("5.layers.0")', field="layer")
    layer = layer if "." in layer else str(int(layer))        # "03" is layer 3
    rt.worker.check_ready()
    net = rt.published.net
    top_level = net["summary"]["layers"]
    row = flat_rows(net["summary"]).get(layer)
    if row is None:
        raise ApiError(404, "no_layer", (
            f"there is no layer {layer} in this net: the summary table lists the layers inside "
            "each block by their index" if "." in layer else
            f"the net has layers 0..{len(top_level) - 1}; there is no layer {layer}"),
            field="layer")
    if row["type"] != "conv":
        inside = (" (open the block's inner layers: the convs inside it have theirs)"
                  if row.get("children") else "")
        raise ApiError(422, "not_conv", f"layer {layer} is a {row['type']} layer: only conv "
                       f"layers have channels whose patches are found{inside}", field="layer")
    channels = row["out_shape"][2]
    if channel >= channels:
        raise ApiError(404, "no_channel", f"layer {layer} has channels 0..{channels - 1}; "
                       f"there is no channel {channel}", field="channel")
    collector = rt.worker.handlers.patches
    if not collector.enabled:
        raise ApiError(404, "patches_off", "this server does not look for patches "
                       "(patch_images is 0)", field="layer")
    result = collector.result
    if result is None or result.spec_json != net["spec"]:    # none yet, or the net changed
        raise not_computed(request, collector)
    data = await answers(request).get((result.id, layer, channel),
                                      lambda: patches_answer(result, layer, channel))
    return Response(data, media_type="application/json")
