"""What a stream event carries on the wire, and what a page may ask for.

Kinds, in the order a client receives what is pending:
- state (status, and the settings when they change), net, log, markers (the chart's change
  markers: the whole latest list, a latest value like the rest), history (points since
  step `from`), metrics, frame, gallery.
Every stream starts with `hello` ({"id", "events"}: its own id and subscription, see
server/hub.py); `ping` comes after 15 s of silence.

Compact encodings (a room of phones shares one access point): every float is rounded to
FLOAT_DIGITS significant digits, never to fewer than 3 decimals (a chart shows 4 digits; the
metrics' `server_time` keeps its milliseconds); `history` events carry their points as
`columns` (the keys, once) and `rows` (one list of values per point; null where a point
lacks a key), and leave the markers to a `markers` event sent only when they change (they
were up to 200 repeated every second); `gallery` events leave out the test images, which
never change during a run: a page takes them once from GET /api/gallery. The JSON twins
(/api/history, /api/gallery) keep everything as it is.

A subscription is text, the same in the stream's URL (`/api/stream?events=...`) and in
`PUT /api/stream/{id}`: kinds separated by commas, each optionally with the least number of
seconds between two events of that kind for this client: `state,net,log,metrics:2,frame:10`.
"""

from __future__ import annotations

import math
from typing import Any

from server.jsonenc import dumps, sanitize

KINDS = ("state", "net", "log", "markers", "history", "metrics", "frame", "gallery", "runs",
         "poll", "leaderboard")
ALL_KINDS = {kind: 0.0 for kind in KINDS}          # a stream that names none: every event
FLOAT_DIGITS = 5
MAX_INTERVAL_S = 3600.0
MAX_SUBSCRIPTION_CHARS = 200


class SubscriptionError(ValueError):
    """A subscription text that names an unknown kind or a bad interval."""


def encode_event(kind: str, payload: Any) -> bytes:
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    return f"event: {kind}\ndata: {dumps(compact(sanitize(payload)))}\n\n".encode("utf-8")


def compact(value: Any) -> Any:
    """value (already sanitised: plain JSON types) with every float rounded (see above)."""
    if isinstance(value, float):
        return _round(value)
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


def _round(x: float) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    decimals = max(3, FLOAT_DIGITS - 1 - math.floor(math.log10(abs(x))))
    return round(x, decimals)


def split_published(kind: str, payload: Any) -> list[tuple[str, Any]]:
    """What one publish becomes on the stream: history gives its markers to a markers event
    and its points become rows, gallery items lose their images (see the module docstring)."""
    if kind == "history" and isinstance(payload, dict):
        rest = {k: v for k, v in payload.items() if k not in ("markers", "points")}
        if isinstance(payload.get("points"), list):
            rest["columns"], rest["rows"] = as_rows(payload["points"])
        if "markers" not in payload:
            return [("history", rest)]
        return [("markers", {"markers": payload["markers"]}), ("history", rest)]
    if kind == "gallery" and isinstance(payload, dict) and isinstance(payload.get("items"), list):
        items = [{k: v for k, v in item.items() if k != "image"} if isinstance(item, dict)
                 else item for item in payload["items"]]
        return [("gallery", {**payload, "items": items})]
    return [(kind, payload)]


def as_rows(points: list[dict]) -> tuple[list[str], list[list]]:
    """[{"step": 1, "loss": 2.3}, {"step": 2}] -> (["step", "loss"], [[1, 2.3], [2, None]])."""
    columns = list(dict.fromkeys(key for point in points for key in point))
    return columns, [[point.get(key) for key in columns] for point in points]


def parse_subscription(text: str) -> dict[str, float]:
    """'state,metrics:2,frame:10' -> {"state": 0.0, "metrics": 2.0, "frame": 10.0}."""
    if not isinstance(text, str) or not text.strip():
        raise SubscriptionError(f"name at least one event kind: {', '.join(KINDS)}")
    if len(text) > MAX_SUBSCRIPTION_CHARS:
        raise SubscriptionError(f"at most {MAX_SUBSCRIPTION_CHARS} characters, got {len(text)}")
    wants: dict[str, float] = {}
    for part in text.split(","):
        kind, _, interval = part.strip().partition(":")
        if kind not in KINDS:
            raise SubscriptionError(f"unknown event kind {kind!r}; kinds: {', '.join(KINDS)}")
        if kind in wants:
            raise SubscriptionError(f"{kind} is named twice")
        seconds = 0.0
        if interval:
            try:
                seconds = float(interval)
            except ValueError:
                seconds = math.nan
            if not 0 <= seconds <= MAX_INTERVAL_S:
                raise SubscriptionError(f"{kind}: the seconds between two events must be a "
                                        f"number in 0..{MAX_INTERVAL_S:g}, got {interval!r}")
        wants[kind] = seconds
    return wants


def format_subscription(wants: dict[str, float]) -> str:
    """The canonical text of a subscription (KINDS order, intervals only where set)."""
    return ",".join(kind if not wants[kind] else f"{kind}:{wants[kind]:g}"
                    for kind in KINDS if kind in wants)

