"""GET /api/stream: one Server-Sent Events stream per tab, every kind it asks for on it;
PUT /api/stream/{id}: change what an open stream carries (the page does when a panel scrolls
in or out of view, or the tab is hidden), without reconnecting.

`?events=` names the kinds and, per kind, the least seconds between two events (syntax in
server/events.py); without it a stream carries every kind as it comes. The first event is
`hello` with the stream's id and its subscription.

Written with a plain StreamingResponse over the Hub's pre-encoded bytes rather than
sse-starlette or FastAPI's EventSourceResponse: those encode every event per client, and the
Hub's point is to encode each event once for all clients and let slow ones skip. The
compression middleware leaves text/event-stream alone (it would hold events back).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from server.auth import PUBLIC
from server.errors import ApiError
from server.events import (KINDS, MAX_SUBSCRIPTION_CHARS, SubscriptionError,
                           format_subscription, parse_subscription)
from server.json_route import JSONBodyRoute
from server.runtime import runtime

router = APIRouter(prefix="/api", tags=["stream"], route_class=JSONBodyRoute)

HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
EVENTS_HELP = (f"kinds separated by commas, each with an optional least number of seconds "
               f"between two events, e.g. state,net,log,metrics:2,frame:10; kinds: "
               f"{', '.join(KINDS)}")


class Subscription(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: str = Field(max_length=MAX_SUBSCRIPTION_CHARS, description=EVENTS_HELP)


def _wants(text: str) -> dict[str, float]:
    try:
        return parse_subscription(text)
    except SubscriptionError as exc:
        raise ApiError(422, "invalid_events", f"events: {exc}", field="events") from None


@router.get("/stream", dependencies=[PUBLIC], response_class=StreamingResponse,
            summary="Server-Sent Events: hello, then the kinds asked for (default: all)")
async def get_stream(request: Request, events: str | None = None):
    wants = None if events is None else _wants(events)
    return StreamingResponse(runtime(request).hub.stream(wants), media_type="text/event-stream",
                             headers=HEADERS)


@router.put("/stream/{stream_id}", dependencies=[PUBLIC],
            summary="change what an open stream carries (its id comes in its hello event)")
async def put_subscription(request: Request, stream_id: str, body: Subscription):
    wants = _wants(body.events)
    client = runtime(request).hub.subscribe(stream_id, wants)
    if client is None:
        raise ApiError(404, "unknown_stream", "no open stream has this id (it has closed; "
                       "the next stream's hello event gives a new one)", field="stream_id")
    return {"id": client.id, "events": format_subscription(client.wants)}
