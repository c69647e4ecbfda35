"""The route class of every router whose endpoints take a JSON body (a Pydantic model).

FastAPI reads a body parameter whole (`await request.body()`), with no cap of ours, and parses
it with json.loads, which accepts NaN and Infinity. Before FastAPI sees the request, this
class's handler:
- reads the body with the app's max_json_bytes cap enforced while it streams in (413),
- refuses a body that is not declared `application/json` (415): a text/plain POST is a
  "simple request" any web page can make a browser send,
- parses it without NaN/Infinity (400), as an object (400),
- refuses integers beyond +-2**53 and floats beyond +-1.8e308 (422, naming where): no browser
  can send the first exactly, and the engine would overflow converting either (json.loads
  makes 1e400 an infinity; 1 followed by 400 zeros an int no float holds),
and hands FastAPI the parsed value (Starlette's Request caches `_body` and `_json`), which
Pydantic then validates against the model (server/models.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from server.bodies import read_body
from server.errors import ApiError

MAX_EXACT_INT = 2**53            # JavaScript's Number.MAX_SAFE_INTEGER + 1
PARSE_IN_THREAD_BYTES = 64 * 1024  # larger bodies are parsed off the event loop


class LongInt(str):
    """An integer literal too long to be in range, kept as its digits: int() would spend
    quadratic time on it, and past 4,300 digits Python refuses it with a ValueError."""


def _int(text: str) -> int | LongInt:
    return int(text) if len(text) <= 20 else LongInt(text)


def _no_constants(name: str):
    raise ValueError(f"{name} is not allowed; write a finite number")


def parse_json(data: bytes) -> Any:
    """JSON without NaN/Infinity; over-long integers as LongInt (refused by out_of_range)."""
    if not data.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        return json.loads(data, parse_constant=_no_constants, parse_int=_int)
    except (ValueError, UnicodeDecodeError) as exc:   # JSONDecodeError is a ValueError
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the JSON is nested too deeply") from None


def is_json(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/")
                                          and kind.endswith("+json"))


def out_of_range(value: Any) -> tuple[list, str] | None:
    """(path, why) of the first number in a parsed JSON value that is an integer beyond
    +-2**53 or a float beyond +-1.8e308 (parsed as infinity), else None."""
    todo: list[tuple[list, Any]] = [([], value)]
    while todo:
        path, item = todo.pop()
        if isinstance(item, dict):
            todo.extend((path + [k], v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            todo.extend((path + [i], v) for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, LongInt) or (isinstance(item, int) and not isinstance(item, bool)
                                           and abs(item) > MAX_EXACT_INT):
            digits = len(str(item).lstrip("-"))
            return path, (f"an integer of {digits} digits is out of range (integers must be "
                          f"within +-2**53)")
        elif isinstance(item, float) and not math.isfinite(item):
            return path, "the number is beyond the largest float (about 1.8e308)"
    return None


def where(path: list) -> dict[str, str]:
    """A JSON path as the error shape's keys: a spec's layer (as the editor locates it:
    "2" or "2.layers.1") and field; elsewhere the dotted field."""
    if path[:1] == ["spec"]:
        rest = path[2:] if path[1:2] == ["layers"] else path[1:]
        keys = [i for i, p in enumerate(rest) if isinstance(p, str)]
        if keys:
            last = keys[-1]
            layer = ".".join(str(p) for p in rest[:last])
            return {"field": rest[last], **({"layer": layer} if layer else {})}
        return {"field": "spec"}
    return {"field": ".".join(str(p) for p in path) or "body"}


def _parse_object(data: bytes) -> dict[str, Any]:
    value = parse_json(data)
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_json", f"expected a JSON object, got "
                       f"{type(value).__name__ if value is not None else 'null'}")
    found = out_of_range(value)
    if found is not None:
        path, why = found
        keys = where(path)
        raise ApiError(422, "number_out_of_range", f"{keys['field']}: {why}", **keys)
    return value


async def read_json_body(request: Request, required: bool) -> None:
    """Read, check and parse the body into the request's caches (see the module's doc)."""
    limit = request.app.state.runtime.settings.max_json_bytes
    data = await read_body(request, limit, "the JSON body")
    if not data.strip() and not required:
        request._body = b""
        return
    content_type = request.headers.get("content-type", "")
    if data.strip() and not is_json(content_type):
        raise ApiError(415, "unsupported_media_type", f"send the body as JSON with "
                       f"Content-Type: application/json; got {content_type or 'none'!r}")
    if len(data) > PARSE_IN_THREAD_BYTES:
        value = await run_in_threadpool(_parse_object, data)
    else:
        value = _parse_object(data)
    request._body = data
    request._json = value


class JSONBodyRoute(APIRoute):
    """An APIRoute whose JSON body is read and checked by read_json_body first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        required = self.body_field.field_info.is_required()

        async def checked(request: Request) -> Response:
            await read_json_body(request, required)
            return await handler(request)

        return checked
