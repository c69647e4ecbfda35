"""Reading request bodies with a size cap enforced WHILE the body streams in.

Content-Length is only a hint (a chunked body has none, and a client can lie), so the stream
is read chunk by chunk and abandoned with 413 the moment it passes the limit: nothing larger
than the limit is ever held in memory. JSON refuses NaN/Infinity; multipart bodies are parsed
(by python-multipart through Starlette's parser) only after they are known to fit.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from server.errors import ApiError

RAW_TYPES = ("image/", "application/octet-stream", "application/json")


def _too_large(what: str, limit: int) -> ApiError:
    return ApiError(413, "too_large", f"{what} is larger than the limit of {limit:,} bytes "
                    f"({limit / 2**20:.1f} MiB)", limit=limit)


async def read_body(request: Request, limit: int, what: str = "the request body") -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(what, limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(what, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constants(name: str):
    raise ValueError(f"{name} is not allowed; write a finite number")


def parse_json(data: bytes) -> Any:
    if not data.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        return json.loads(data, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:   # JSONDecodeError is a ValueError
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the JSON is nested too deeply") from None


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    value = parse_json(await read_body(request, limit, "the JSON body"))
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_json", f"expected a JSON object, got "
                       f"{type(value).__name__ if value is not None else 'null'}")
    return value


def refuse_unknown_keys(body: dict[str, Any], allowed: set[str], usage: str = "") -> None:
    """ApiError(422) naming the first key of `body` not in `allowed`; `usage` (what to send
    instead) follows it."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(422, "invalid_request", f"unknown key {unknown[0]!r}"
                       + (f"; send {usage}" if usage else ""), field=unknown[0])


@dataclass
class Upload:
    data: bytes
    filename: str | None = None
    content_type: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
    yield b""


async def read_upload(request: Request, limit: int, what: str, file_field: str = "file",
                      raw_types: tuple[str, ...] = RAW_TYPES) -> Upload:
    """A file from multipart/form-data field `file_field`, or the raw body when its
    Content-Type is one of raw_types (curl --data-binary @cat.jpg -H 'Content-Type: image/jpeg')."""
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        body = await read_body(request, limit, what)
        parser = MultiPartParser(request.headers, _once(body), max_files=1, max_fields=16,
                                 max_part_size=limit)
        parser.spool_max_size = limit        # the body is in memory already: keep it there
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise ApiError(400, "invalid_multipart", f"the form could not be read: "
                           f"{exc.message}") from None
        try:
            item = form.get(file_field)
            if not isinstance(item, UploadFile):
                raise ApiError(400, "missing_field", f"the form has no file field "
                               f"'{file_field}'", field=file_field)
            data = await item.read()
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            return Upload(data, item.filename, item.content_type, fields)
        finally:
            await form.close()
    if kind and any(kind.startswith(t) for t in raw_types):
        return Upload(await read_body(request, limit, what), None, kind)
    raise ApiError(415, "unsupported_media_type",
                   f"send {what} as multipart/form-data with a field '{file_field}' (or as the "
                   f"raw body with Content-Type {' or '.join(t + '*' if t.endswith('/') else t for t in raw_types)}); "
                   f"got Content-Type {content_type or 'none'!r}")
