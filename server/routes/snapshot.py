"""Snapshots: save into the snapshot directory, download, upload (ours or ConvNetJS's), and
load a shipped pretrained net.

Files are written only into settings.snapshot_dir, under names the server makes (time and
step), atomically (engine.fsutil), at most one save per settings.save_min_interval_s (429
otherwise), and only the newest settings.keep_snapshots such files stay: each save deletes
older ones and says which (server/commands.py). An upload is parsed and validated in full
(in a thread: JSON and NumPy, no Numba) before the worker swaps it in.
"""

from __future__ import annotations

import math
import time
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from server.auth import PRESENTER
from server.bodies import read_upload
from server.snapshot_files import save_snapshot_file
from server.errors import ApiError, engine_refusal
from server.json_route import JSONBodyRoute
from server.models import PretrainedBody
from server.runtime import command, runtime

router = APIRouter(prefix="/api", tags=["snapshot"], route_class=JSONBodyRoute)


@router.post("/snapshot", dependencies=[PRESENTER],
             summary="save the run into the server's snapshot directory (the newest "
                     "keep_snapshots files stay)")
async def save_snapshot(request: Request):
    rt = runtime(request)
    wait = rt.last_save + rt.settings.save_min_interval_s - time.monotonic()
    if wait > 0:
        raise ApiError(429, "too_many_saves", f"one save per "
                       f"{rt.settings.save_min_interval_s:g} s; try again in a moment",
                       headers={"Retry-After": str(max(1, math.ceil(wait)))})
    rt.last_save = time.monotonic()
    name, data = await command(request, "save")
    try:
        deleted = await run_in_threadpool(save_snapshot_file, rt.settings, name, data,
                                          rt.worker.log if rt.worker else None)
    except OSError as exc:
        raise ApiError(507, "cannot_save", f"the snapshot could not be written: "
                       f"{exc.strerror or exc}") from None
    return {"file": name, "bytes": len(data), "kept": rt.settings.keep_snapshots,
            "deleted": deleted}


@router.get("/snapshot", dependencies=[PRESENTER],
            summary="download the current net (?format=convnetjs for ConvNetJS's format, "
                    "onnx for an ONNX model; /api/state's exports says what each holds)")
async def download_snapshot(request: Request,
                            format: Literal["ours", "convnetjs", "onnx"] = "ours"):
    name, data, media_type, headers = await command(request, "download", format)
    return Response(data, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"', **headers})


def _parse(data: bytes, convnetjs_dropout: str | None = None):
    from engine.formats.pretrained import parse_snapshot_bytes
    try:
        return parse_snapshot_bytes(data, convnetjs_dropout=convnetjs_dropout)
    except ValueError as exc:
        if not engine_refusal(exc):
            raise
        raise ApiError(422, "invalid_snapshot", str(exc),
                       field=getattr(exc, "field", None)) from None
    except RecursionError:
        raise ApiError(422, "invalid_snapshot", "the JSON is nested too deeply") from None


@router.put("/snapshot", dependencies=[PRESENTER],
            summary="upload a snapshot (ours or ConvNetJS's Net.toJSON) as multipart 'file'; "
                    "?convnetjs_dropout=p predicts as ConvNetJS itself does (see README)")
async def upload_snapshot(request: Request,
                          convnetjs_dropout: Literal["1-p", "p"] | None = None):
    rt = runtime(request)
    if rt.worker is not None:
        rt.worker.check_ready()              # refuse before reading megabytes
    upload = await read_upload(request, rt.settings.max_snapshot_bytes, "the snapshot",
                               raw_types=("application/json", "application/octet-stream"))
    snapshot = await run_in_threadpool(_parse, upload.data, convnetjs_dropout)
    net = await command(request, "load", (snapshot, "an uploaded snapshot"))
    return {"net": net}


@router.post("/resume", dependencies=[PRESENTER],
             summary="load the saved run /api/state offers as \"resumable\" (404 when none)")
async def resume_saved_run(request: Request):
    from engine.formats.snapshot import SnapshotError
    from server.snapshot_files import load_saved_run
    rt = runtime(request)
    run = rt.published.saved_run
    if run is None:
        raise ApiError(404, "no_saved_run", "there is no saved run to resume: the server offers "
                       "the newest snapshot it saved of the net it started with (see "
                       "/api/state's \"resumable\")")
    try:
        snapshot = await run_in_threadpool(load_saved_run, run)
    except SnapshotError as exc:
        raise ApiError(422, "invalid_snapshot", f"the saved run {run.path.name} cannot be "
                       f"loaded: {exc}") from None
    net = await command(request, "resume", (snapshot, run))
    return {"net": net, "resumed": run.offer()}


@router.post("/pretrained", dependencies=[PRESENTER],
             summary="load a shipped pretrained net (body {\"name\": ...}, optional)")
async def load_pretrained(request: Request, body: PretrainedBody | None = None):
    from engine.formats.pretrained import load_pretrained as load
    from engine.formats.snapshot import SnapshotError
    name = (body or PretrainedBody()).name
    try:
        snapshot = await run_in_threadpool(load, name)
    except SnapshotError as exc:
        raise ApiError(404, "not_installed", str(exc), field="name") from None
    net = await command(request, "load", (snapshot, f"the pretrained net {name}"))
    return {"net": net}
