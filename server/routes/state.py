"""The JSON twins of what the page shows: state, history, the latest frame and gallery, and
the architecture calculator's table for any preset (public: the lecture's case studies)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from server.addresses import local_only
from server.auth import PUBLIC, Role, public
from server.errors import ApiError
from server.runtime import preset_list, runtime

router = APIRouter(prefix="/api", tags=["state"])


@router.get("/state", dependencies=[PUBLIC], summary="status, net, settings, metrics, roles")
async def get_state(request: Request, role: Role = Depends(public)):
    from engine.optim import OPTIMIZERS, SCHEDULES
    from engine.pretrained import available_pretrained
    rt = runtime(request)
    p = rt.published
    return {
        "version": rt.version, "status": p.status, "role": role, "net": p.net,
        "settings": p.settings, "metrics": p.metrics, "classes": p.classes,
        "join_url": rt.join_url(request), "presets": list(preset_list()),
        "pretrained": available_pretrained(),
        "limits": {"max_upload_bytes": rt.settings.max_upload_bytes,
                   "max_pixels": rt.settings.max_pixels,
                   "max_snapshot_bytes": rt.settings.max_snapshot_bytes},
        "optimizers": list(OPTIMIZERS), "schedules": list(SCHEDULES),
        "image_size": list(p.image_size), "data_title": p.data_title, "error": p.error,
        "run_id": rt.run_id, "join_local_only": local_only(rt.settings.host),
    }


@router.get("/history", dependencies=[PUBLIC],
            summary="every kept POINT, marker and whole-test-set result")
async def get_history(request: Request):
    points, markers, tests = runtime(request).published.history
    return {"points": list(points), "markers": list(markers), "tests": list(tests)}


@router.get("/frame", dependencies=[PUBLIC], summary="the latest FRAME ({frame: null} before one)")
async def get_frame(request: Request):
    frame = runtime(request).published.frame
    return frame if frame is not None else {"frame": None}


@router.get("/gallery", dependencies=[PUBLIC], summary="the latest GALLERY")
async def get_gallery(request: Request):
    gallery = runtime(request).published.gallery
    return gallery if gallery is not None else {"step": None, "items": [], "test": None}


@router.get("/summary", dependencies=[PUBLIC],
            summary="a preset's document and its calculator table")
async def get_summary(preset: str):
    from engine.calculator import summarize
    from engine.presets import PRESETS, TRAINABLE, load_preset, preset_document
    from engine.spec import SpecError
    if preset not in PRESETS:
        raise ApiError(404, "unknown_preset", f"no preset {preset!r}; presets: "
                       f"{', '.join(PRESETS)}", field="preset")
    try:
        spec = load_preset(preset, budget=None)
    except SpecError as exc:     # a broken preset file is our bug, but say which
        raise ApiError(422, "invalid_spec", str(exc), layer=exc.layer, field=exc.field) from None
    return {"preset": preset, "trainable": preset in TRAINABLE,
            "document": preset_document(preset), "summary": summarize(spec)}
