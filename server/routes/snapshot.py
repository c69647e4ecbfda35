"""Snapshots: save into the snapshot directory, download, upload (ours or ConvNetJS's), and
load a shipped pretrained net.

Files are written only into settings.snapshot_dir, under names the server makes (time and
step), atomically (engine.fsutil). An upload is parsed and validated in full (in a thread:
JSON and NumPy, no Numba) before the worker swaps it in.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from server.auth import PRESENTER
from server.bodies import read_json_object, read_upload, refuse_unknown_keys
from server.commands import write_snapshot_file
from server.errors import ApiError
from server.runtime import command, runtime

router = APIRouter(prefix="/api", tags=["snapshot"])


@router.post("/snapshot", dependencies=[PRESENTER],
             summary="save the run into the server's snapshot directory")
async def save_snapshot(request: Request):
    rt = runtime(request)
    name, data = await command(request, "save")
    try:
        await run_in_threadpool(write_snapshot_file, rt.settings.snapshot_dir, name, data)
    except OSError as exc:
        raise ApiError(507, "cannot_save", f"the snapshot could not be written: "
                       f"{exc.strerror or exc}") from None
    return {"file": name, "bytes": len(data)}


@router.get("/snapshot", dependencies=[PRESENTER],
            summary="download the current net (?format=convnetjs for ConvNetJS's format)")
async def download_snapshot(request: Request, format: Literal["ours", "convnetjs"] = "ours"):
    name, data = await command(request, "download", format)
    return Response(data, media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _parse(data: bytes):
    from engine.pretrained import parse_snapshot_bytes
    from engine.snapshot import SnapshotError
    try:
        return parse_snapshot_bytes(data)
    except SnapshotError as exc:
        raise ApiError(422, "invalid_snapshot", str(exc)) from None
    except RecursionError:
        raise ApiError(422, "invalid_snapshot", "the JSON is nested too deeply") from None


@router.put("/snapshot", dependencies=[PRESENTER],
            summary="upload a snapshot (ours or ConvNetJS's Net.toJSON) as multipart 'file'")
async def upload_snapshot(request: Request):
    rt = runtime(request)
    if rt.worker is not None:
        rt.worker.check_ready()              # refuse before reading megabytes
    upload = await read_upload(request, rt.settings.max_snapshot_bytes, "the snapshot",
                               raw_types=("application/json", "application/octet-stream"))
    snapshot = await run_in_threadpool(_parse, upload.data)
    net = await command(request, "load", (snapshot, "an uploaded snapshot"))
    return {"net": net}


@router.post("/pretrained", dependencies=[PRESENTER],
             summary="load a shipped pretrained net (body {\"name\": ...}, optional)")
async def load_pretrained(request: Request):
    from engine.pretrained import DEFAULT_PRETRAINED, PRETRAINED
    from engine.pretrained import load_pretrained as load
    from engine.snapshot import SnapshotError
    rt = runtime(request)
    body = {}
    if await _has_body(request):
        body = await read_json_object(request, rt.settings.max_json_bytes)
    refuse_unknown_keys(body, {"name"})
    name = body.get("name", DEFAULT_PRETRAINED)
    if not isinstance(name, str) or name not in PRETRAINED:
        raise ApiError(422, "unknown_pretrained", f"no pretrained net {name!r}; known: "
                       f"{', '.join(PRETRAINED)}", field="name")
    try:
        snapshot = await run_in_threadpool(load, name)
    except SnapshotError as exc:
        raise ApiError(404, "not_installed", str(exc), field="name") from None
    net = await command(request, "load", (snapshot, f"the pretrained net {name}"))
    return {"net": net}


async def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return length != "0" and (length is not None or "transfer-encoding" in request.headers)
