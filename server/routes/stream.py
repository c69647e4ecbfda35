"""GET /api/stream: one Server-Sent Events stream per tab, every event kind on it.

Written with a plain StreamingResponse over the Hub's pre-encoded bytes rather than
sse-starlette or FastAPI's EventSourceResponse: those encode every event per client, and the
Hub's point is to encode each event once for all clients and let slow ones skip.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from server.auth import PUBLIC
from server.runtime import runtime

router = APIRouter(prefix="/api", tags=["stream"])

HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}


@router.get("/stream", dependencies=[PUBLIC], response_class=StreamingResponse,
            summary="Server-Sent Events: state, net, log, history, metrics, frame, gallery")
async def get_stream(request: Request):
    return StreamingResponse(runtime(request).hub.stream(), media_type="text/event-stream",
                             headers=HEADERS)
