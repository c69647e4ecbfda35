"""POST /api/classify: anyone's image through the current net, with pictures of the pass.

The body is capped while it streams (413), the image's header is checked before any pixel is
decoded (415 for a format outside the allowlist, 422 for too many pixels), then
engine.data.load_image_file decodes frame 0 safely (in a thread: Pillow, no Numba), and the
worker thread runs the net (never this thread: Numba's parallel kernels are the worker's).
At most max_uploads_arriving bodies stream in at once, max_uploads_per_client of them from one
address (429), each at the pace server/bodies.py demands (UploadPlaces: a stalled body gives
its place to a newcomer); only then does an image take one of max_classify_in_flight places
(decoding or in the worker's queue); more get 503 + Retry-After. A net whose output is not
finite (a diverged run) gets 409, never NaN.
"""

from __future__ import annotations

import io
import math

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from server.auth import PUBLIC
from server.bodies import read_upload
from server.errors import ApiError
from server.guard import client_key
from server.runtime import command, runtime

router = APIRouter(prefix="/api", tags=["classify"])


def decode_upload(data: bytes, size: tuple[int, int], max_pixels: int):
    """Bytes -> (uint8 (H, W, 3) at `size`, {"width", "height", "format"}) or ApiError."""
    from PIL import Image

    from engine.data.images import ALLOWED_FORMATS, DataError, load_image_file
    if not data:
        raise ApiError(422, "empty", "the uploaded file is empty")
    try:   # engine.data.images made DecompressionBombWarning an error, process-wide
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            width, height, fmt = image.size[0], image.size[1], image.format
    except Image.UnidentifiedImageError:
        raise ApiError(415, "unsupported_format", f"not an image in an allowed format "
                       f"({', '.join(ALLOWED_FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(422, "too_many_pixels", f"the image has more than {max_pixels:,} pixels "
                       "(e.g. 4096x4096), too many to decode safely; upload a smaller copy"
                       ) from None
    except Exception as exc:          # Pillow's plugins raise many types on bad headers
        raise ApiError(422, "undecodable", f"the image cannot be read: {exc}") from None
    if width * height > max_pixels:
        raise ApiError(422, "too_many_pixels", f"the image has {width}x{height} pixels; the "
                       f"limit is {max_pixels:,} pixels (e.g. 4096x4096)")
    try:
        pixels = load_image_file(data, size, name="the uploaded image")
    except DataError as exc:
        raise ApiError(422, "undecodable", str(exc)) from None
    return pixels, {"width": width, "height": height, "format": fmt}


def _refuse_when_busy(count: int, limit: int, doing: str) -> None:
    if count >= limit:
        raise ApiError(503, "busy", f"{count} images are being {doing}; try again in a second",
                       headers={"Retry-After": "1"})


def refuse_non_finite(result: dict) -> None:
    """409 unless every probability is a finite number (a diverged net gives NaN or inf)."""
    if not all(isinstance(p, float) and math.isfinite(p) for p in result["probs"].values()):
        raise ApiError(409, "not_finite", "the net gives no finite probabilities (training "
                       "diverged); reset or load a snapshot")


def _top(raw: str | None, classes: int) -> int:
    if raw is None:
        return min(3, classes)
    try:
        top = int(raw)
    except ValueError:
        top = 0
    if not 1 <= top <= 1000:
        raise ApiError(422, "invalid_top", f"top must be a positive integer, got {raw!r}",
                       field="top")
    # Asking for more classes than the net has (the page's top-3 on a 2-class net) gets all.
    return min(top, classes)


@router.post("/classify", dependencies=[PUBLIC],
             summary="classify an image (multipart field 'file', optional field 'top')")
async def post_classify(request: Request):
    rt = runtime(request)
    settings = rt.settings
    if rt.worker is not None:
        rt.worker.check_ready()                       # 503 while loading or compiling
    # Two bounds: bodies arriving (slow phones on classroom Wi-Fi must not hold the classify
    # slots while the worker idles; one address must not hold every arriving place), then
    # decoding and the net.
    client = client_key(request.client.host if request.client else None)
    progress = await rt.uploads.take(client, client not in settings.unlimited_clients,
                                     settings.max_uploads_arriving,
                                     settings.max_uploads_per_client, settings.body_min_rate)
    try:
        upload = await read_upload(request, settings.max_upload_bytes, "the image",
                                   raw_types=("image/", "application/octet-stream"),
                                   progress=progress)
    finally:
        rt.uploads.leave(progress)
    _refuse_when_busy(rt.classify_in_flight, settings.max_classify_in_flight, "classified")
    rt.classify_in_flight += 1
    try:
        published = rt.published
        top = _top(upload.fields.get("top", request.query_params.get("top")),
                   len(published.classes))
        pixels, info = await run_in_threadpool(decode_upload, upload.data,
                                               tuple(published.image_size), settings.max_pixels)
        result = await command(request, "classify", (pixels, top))
        refuse_non_finite(result)
        return {**result, "image": info}
    finally:
        rt.classify_in_flight -= 1
