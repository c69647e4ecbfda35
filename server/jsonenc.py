"""The one JSON encoder of the server: non-finite numbers become null, NumPy values plain ones.

A browser's JSON.parse rejects NaN and Infinity, and one bad number in a stream event would
kill the page's EventSource, so everything that leaves the server goes through `dumps`, which
sanitises first and then encodes with allow_nan=False (so a miss is a loud error here rather
than a silent one in every browser).
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Request, Response
from fastapi.responses import JSONResponse

GZIP_FROM_BYTES = 64 * 1024    # smaller answers are left to the app's compression middleware


def sanitize(value: Any) -> Any:
    """A copy of value made of dict/list/str/int/float/bool/None, NaN and +-inf as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, dict):
        return {str(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v) for v in value]
    if isinstance(value, np.ndarray):
        return sanitize(value.tolist())
    if isinstance(value, np.generic):
        return sanitize(value.item())
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    return json.dumps(sanitize(value), allow_nan=False, separators=(",", ":"),
                      ensure_ascii=False)


class SafeJSONResponse(JSONResponse):
    """FastAPI's default response class for this app: the same sanitising encoder."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def encode_once(value: Any, gzip_from: int = GZIP_FROM_BYTES) -> tuple[bytes, bytes | None]:
    """The JSON bytes of an answer many requests get, and (from `gzip_from` bytes) their
    gzip, both made once: the compression middleware would compress it again per request."""
    data = dumps(value).encode()
    return data, gzip.compress(data, 6) if len(data) >= gzip_from else None


def gzip_only(encoded: tuple[bytes, bytes | None]) -> tuple[bytes | None, bytes | None]:
    """An answer from encode_once kept for long: its gzip alone where it has one (browsers
    all take gzip; encoded_response unpacks it for a client that does not)."""
    data, gzipped = encoded
    return (None, gzipped) if gzipped is not None else (data, None)


def encoded_response(request: Request, encoded: tuple[bytes | None, bytes | None]) -> Response:
    """An answer from encode_once (or gzip_only): gzipped where the client takes it (the
    middleware leaves a response that has its Content-Encoding alone)."""
    data, gzipped = encoded
    if gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        return Response(gzipped, media_type="application/json",
                        headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    if data is None:
        data = gzip.decompress(gzipped)
    return Response(data, media_type="application/json", headers={"Vary": "Accept-Encoding"})
