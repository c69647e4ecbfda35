"""GET /api/filters/{layer}/{channel}: the test images that excite one conv channel most,
each cut to the channel's receptive field at its strongest position (server/patches.py finds
them in the worker after each test evaluation).

`layer` is a top-level layer index, as in the summary table and the network view (a conv
inside a residual block or a concat is not covered: the block's index is refused). A window
that reaches past the image edge (padding; deep layers see more than the image) is CLIPPED to
the image: `box` says which pixels a patch is ([top, left, height, width] in the test image),
`field` how large the full window is. Patches are raw pixels (not normalised), enlarged with
nearest-neighbour scaling to about PATCH_PIXELS on their longer side.

The cutting and PNG encoding run in the thread pool (NumPy and Pillow only, never the
engine's kernels), once per (scan, layer, channel) however many viewers ask; the answers are
kept in a bounded cache (server/routes/filters.py's Answers).
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Path, Request, Response

from server.auth import PUBLIC
from server.errors import ApiError
from server.patches import PATCH_PIXELS, PatchResult
from server.routes.filters import Answers
from server.runtime import runtime
from server.visuals import data_url

router = APIRouter(prefix="/api", tags=["frame"])

MAX_NUMBER = 1_000_000       # larger than any layer count or channel count


def answers(request: Request) -> Answers:
    state = request.app.state
    if getattr(state, "patch_answers", None) is None:
        state.patch_answers = Answers()
    return state.patch_answers


def enlarged(pixels: np.ndarray) -> np.ndarray:
    """A small patch scaled up by a whole factor (nearest neighbour), up to PATCH_PIXELS."""
    factor = max(1, PATCH_PIXELS // max(1, *pixels.shape[:2]))
    return np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)


def patches_answer(result: PatchResult, layer: int, channel: int) -> dict:
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
    return {"step": result.step, "test_step": result.test_step, "layer": layer,
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
                      layer: int = Path(ge=0, le=MAX_NUMBER,
                                        description="top-level layer index (summary table)"),
                      channel: int = Path(ge=0, le=MAX_NUMBER, description="the channel")):
    rt = runtime(request)
    if rt.worker is None:
        raise ApiError(503, "not_ready", "the server is starting", headers={"Retry-After": "1"})
    rt.worker.check_ready()
    net = rt.published.net
    rows = net["summary"]["layers"]
    if layer >= len(rows):
        raise ApiError(404, "no_layer", f"the net has layers 0..{len(rows) - 1}; there is no "
                       f"layer {layer}", field="layer")
    row = rows[layer]
    if row["type"] != "conv":
        inside = " (the convs inside a block are not covered)" if row.get("children") else ""
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
