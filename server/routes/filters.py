"""A training frame's details, on demand: every channel of a layer, and one conv filter's
per-input-channel slices (the frame itself carries at most 32 channels per picture and each
deeper conv filter as its mean over the input channels: server/visuals.py).

Both read the arrays the worker copied when it made a frame (FrameDetails in
`published.frame_details`, the latest, which keeps the few before it): plain NumPy and
Pillow in a thread, never the engine's kernels (those belong to the worker thread). `frame`
names the frame (the id in the frame's own detail_url and slices_url), so a viewer whose page
shows an older frame than the latest gets that frame's; without it, the latest. Each answer
is made once, however many viewers ask for it at once; at most MAX_ANSWERS are kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from server.auth import PUBLIC
from server.errors import ApiError
from server.jsonenc import dumps
from server.routes.past import past_answers
from server.runtime import runtime
from server.visuals import (FILTER_PATH, LAYER_PATH, MAX_DETAIL, RECENT_FRAMES, FrameDetails,
                            LayerArrays)

router = APIRouter(tags=["frame"])

MAX_ANSWERS = 64
MAX_ANSWER_BYTES = 16_000_000    # all of them together (a page of 256 big maps is ~0.3 MB)
MAX_NUMBER = 1_000_000       # larger than any layer count, channel count or filter count
MAX_FRAME_ID = 2**53         # frame ids count up from 1; a page's JSON numbers end here


def frame_query():
    return Query(None, ge=1, le=MAX_FRAME_ID, description="the frame (its detail_url or "
                 "slices_url names it); left out: the latest")


class Answers:
    """JSON bytes of the details answers, each made once (in a thread). Keys start with the
    frame's id: an answer never changes, only its frame goes out of use."""

    def __init__(self) -> None:
        self.done: dict[tuple, bytes] = {}
        self.done_bytes = 0
        self.making: dict[tuple, asyncio.Future] = {}

    async def get(self, key: tuple, make: Callable[[], dict]) -> bytes:
        if key in self.done:
            return self.done[key]
        making = self.making.get(key)
        if making is None:
            making = self.making[key] = asyncio.ensure_future(
                run_in_threadpool(lambda: dumps(make()).encode()))
            making.add_done_callback(lambda done: self._keep(key, done))
        # shielded: a client that hangs up must not cancel the answer others wait for
        return await asyncio.shield(making)

    def _keep(self, key: tuple, done: asyncio.Future) -> None:
        self.making.pop(key, None)
        if not done.cancelled() and done.exception() is None:
            data = done.result()
            if len(self.done) >= MAX_ANSWERS or self.done_bytes + len(data) > MAX_ANSWER_BYTES:
                self.done.clear()           # start over: any answer can be made again
                self.done_bytes = 0
            self.done[key] = data
            self.done_bytes += len(data)


def answers(request: Request) -> Answers:
    state = request.app.state
    if getattr(state, "frame_answers", None) is None:
        state.frame_answers = Answers()
    return state.frame_answers


def frame_layer(request: Request, frame: int | None,
                layer: int) -> tuple[FrameDetails, LayerArrays]:
    latest = runtime(request).published.frame_details
    if latest is None:
        raise ApiError(404, "no_frame", "there is no frame yet: the run is still starting")
    details = latest.find(frame) or past_answers(request).find_details(frame)
    if details is None:
        raise ApiError(404, "frame_gone", f"frame {frame} is no longer kept (the latest "
                       f"{RECENT_FRAMES} are): the page shows a newer one in a moment",
                       field="frame")
    if layer >= len(details.layers):
        raise ApiError(404, "no_layer", f"the net has layers 0..{len(details.layers) - 1}; "
                       f"there is no layer {layer}", field="layer")
    return details, details.layers[layer]


def check_start(start: int, total: int, what: str) -> None:
    if start >= max(total, 1):
        raise ApiError(422, "invalid_start", f"start must be below {max(total, 1)}: the "
                       f"layer has {total} {what}", field="start")


def json_bytes(data: bytes) -> Response:
    return Response(data, media_type="application/json")


@router.get(LAYER_PATH, dependencies=[PUBLIC],
            summary="one layer of a FRAME (`frame`, else the latest) with every channel "
                    f"({MAX_DETAIL} from `start`)")
async def get_frame_layer(request: Request,
                          layer: int = Query(ge=0, le=MAX_NUMBER, description="layer index"),
                          start: int = Query(0, ge=0, le=MAX_NUMBER,
                                             description="the first channel"),
                          frame: int | None = frame_query()):
    details, arrays = frame_layer(request, frame, layer)
    check_start(start, arrays.shape[0], "channels")
    data = await answers(request).get((details.id, "layer", layer, start),
                                      lambda: details.layer(layer, start))
    return json_bytes(data)


@router.get(FILTER_PATH, dependencies=[PUBLIC],
            summary="one conv filter of a FRAME (`frame`, else the latest), one PNG per input "
                    f"channel ({MAX_DETAIL} from `start`)")
async def get_frame_filter(request: Request,
                           layer: int = Query(ge=0, le=MAX_NUMBER, description="layer index"),
                           index: int = Query(ge=0, le=MAX_NUMBER, description="filter index"),
                           start: int = Query(0, ge=0, le=MAX_NUMBER,
                                              description="the first input channel"),
                           frame: int | None = frame_query()):
    details, arrays = frame_layer(request, frame, layer)
    if arrays.weights is None:
        raise ApiError(422, "no_filters", f"layer {layer} is a {arrays.type} layer: only conv "
                       "layers have filters", field="layer")
    filters, in_channels = arrays.weights.shape[:2]
    if index >= filters:
        raise ApiError(404, "no_filter", f"layer {layer} has filters 0..{filters - 1}; there "
                       f"is no filter {index}", field="index")
    check_start(start, in_channels, "input channels")
    data = await answers(request).get((details.id, "filter", layer, index, start),
                                      lambda: details.filter(layer, index, start))
    return json_bytes(data)
