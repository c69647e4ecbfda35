"""The JSON twins of what the page shows: state, history, the latest frame and gallery, and
the architecture calculator's table for any preset (public: the lecture's case studies).

The worker replaces what it publishes (never mutates it), so each published value is encoded
to JSON once, in a thread, when first asked for, and every later request gets those bytes:
a room reloading at once, or 20 clients fetching a 5,000-point history, costs byte copies on
the event loop, not an encoding each. /api/state is built per request (role, metrics) around
the net's bytes, encoded once per net. Large answers are gzipped once per version too.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from server.addresses import local_only
from server.auth import PUBLIC, Role, public
from server.errors import ApiError
from server.jsonenc import dumps, encode_once, encoded_response
from server.routes.past import example_query, past_view, run_query, step_query
from server.runtime import preset_list, runtime

router = APIRouter(prefix="/api", tags=["state"])



class EncodedOnce:
    """The JSON bytes of the latest version of one published value, and (when large) their
    gzip: both made once per version, in a thread."""

    def __init__(self) -> None:
        self._value: Any = None
        self._encoded: tuple[bytes, bytes | None] = (b"", None)
        self._lock = asyncio.Lock()

    async def get(self, value: Any, shape: Callable[[Any], Any] = lambda v: v
                  ) -> tuple[bytes, bytes | None]:
        """(JSON bytes, their gzip or None) of `value` (or of a newer version)."""
        if value is not self._value or not self._encoded[0]:
            async with self._lock:        # one encoding per version, however many ask
                if value is not self._value or not self._encoded[0]:
                    self._encoded = await run_in_threadpool(_encode, value, shape)
                    self._value = value
        return self._encoded

    async def response(self, request: Request, value: Any,
                       shape: Callable[[Any], Any] = lambda v: v) -> Response:
        return encoded_response(request, await self.get(value, shape))


def _encode(value: Any, shape: Callable[[Any], Any]) -> tuple[bytes, bytes | None]:
    return encode_once(shape(value))


def encoded(request: Request, name: str) -> EncodedOnce:
    caches = getattr(request.app.state, "encoded", None)
    if caches is None:
        caches = request.app.state.encoded = {}
    return caches.setdefault(name, EncodedOnce())


def json_bytes(data: bytes) -> Response:
    return Response(data, media_type="application/json")


@router.get("/state", dependencies=[PUBLIC], summary="status, net, settings, metrics, roles")
async def get_state(request: Request, role: Role = Depends(public)):
    from engine.optim import OPTIMIZERS, SCHEDULES
    from engine.formats.pretrained import available_pretrained
    rt = runtime(request)
    p = rt.published
    rest = dumps({
        "version": rt.version, "status": p.status, "role": role,
        "settings": p.settings, "metrics": p.metrics, "classes": p.classes,
        "join_url": rt.join_url(request), "presets": list(preset_list()),
        "pretrained": available_pretrained(),
        "limits": {"max_upload_bytes": rt.settings.max_upload_bytes,
                   "max_pixels": rt.settings.max_pixels,
                   "max_snapshot_bytes": rt.settings.max_snapshot_bytes},
        "optimizers": list(OPTIMIZERS), "schedules": list(SCHEDULES),
        "image_size": list(p.image_size), "data_title": p.data_title, "error": p.error,
        "run_id": rt.run_id, "join_local_only": local_only(rt.settings.host),
        "exports": p.exports,
        "resumable": p.saved_run.offer() if p.saved_run is not None else None,
    }).encode()
    net, _ = await encoded(request, "net").get(p.net)
    return json_bytes(b'{"net":' + net + b"," + rest[1:])


@router.get("/history", dependencies=[PUBLIC],
            summary="every kept POINT, marker and whole-test-set result (at most "
                    "history_points points)")
async def get_history(request: Request, run: str | None = run_query()):
    published = runtime(request).published
    if run is None or run == published.active_run:
        history = published.history
        return await encoded(request, "history").response(request, history, lambda h: {
            "points": h[0], "markers": h[1], "tests": h[2]})
    history = published.run_histories.get(run)
    if history is None:
        raise ApiError(404, "unknown_run", f"there is no run {run!r}", field="run")
    caches = getattr(request.app.state, "encoded", None) or {}
    for name in [n for n in caches if n.startswith("history-")]:
        if name[len("history-"):] not in published.run_histories:   # a deleted run's
            del caches[name]
    return await encoded(request, f"history-{run}").response(request, history, lambda h: {
        "run": run, "points": h[0], "markers": h[1], "tests": h[2]})


@router.get("/frame", dependencies=[PUBLIC],
            summary="the latest FRAME ({frame: null} before one), or a past one (`step`)")
async def get_frame(request: Request, step: int | None = step_query("frame"),
                    run: str | None = run_query(), example: int | None = example_query()):
    if step is not None:
        return await past_view(request, "frame", step, run, example)
    frame = runtime(request).published.frame
    return await encoded(request, "frame").response(
        request, frame, lambda f: f if f is not None else {"frame": None})


@router.get("/gallery", dependencies=[PUBLIC],
            summary="the latest GALLERY, or a past one (`step`)")
async def get_gallery(request: Request, step: int | None = step_query("gallery"),
                      run: str | None = run_query()):
    if step is not None:
        return await past_view(request, "gallery", step, run, None)
    gallery = runtime(request).published.gallery
    return await encoded(request, "gallery").response(
        request, gallery, lambda g: g if g is not None else {"step": None, "items": [],
                                                             "test": None})


@functools.lru_cache(maxsize=None)     # one entry per preset: a fixed, short list
def preset_summary(preset: str) -> bytes:
    from engine.calculator import summarize
    from engine.presets import TRAINABLE, load_preset, preset_document
    from engine.spec.net_spec import SpecError
    try:
        spec = load_preset(preset, budget=None)
    except SpecError as exc:     # a broken preset file is our bug, but say which
        raise ApiError(422, "invalid_spec", str(exc), layer=exc.layer, field=exc.field) from None
    return dumps({"preset": preset, "trainable": preset in TRAINABLE,
                  "document": preset_document(preset), "summary": summarize(spec)}).encode()


@router.get("/summary", dependencies=[PUBLIC],
            summary="a preset's document and its calculator table")
async def get_summary(preset: str):
    from engine.presets import PRESETS
    if preset not in PRESETS:
        raise ApiError(404, "unknown_preset", f"no preset {preset!r}; presets: "
                       f"{', '.join(PRESETS)}", field="preset")
    return json_bytes(await run_in_threadpool(preset_summary, preset))
