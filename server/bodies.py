"""Reading request bodies with a size cap and a pace enforced WHILE the body streams in.

Content-Length is only a hint (a chunked body has none, and a client can lie), so the stream
is read chunk by chunk and abandoned with 413 the moment it passes the limit: nothing larger
than the limit is ever held in memory. A body must also keep coming: after a grace of
Settings.body_grace_s it must have averaged Settings.body_min_rate bytes/s, else 408 (a
client that declares 4 MB and sends nothing holds its place for the grace, not for ever).
Refusals that leave a body unread close the connection. A client that hangs up mid-body
gets nothing (ClientGone: there is nobody to answer, and nothing worth a traceback). JSON
refuses NaN/Infinity; multipart bodies are parsed (by python-multipart through Starlette's
parser) only after they are known to fit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from server.errors import ApiError

RAW_TYPES = ("image/", "application/octet-stream", "application/json")
CLOSE = {"Connection": "close"}      # the rest of the body stays unread: hang up after


class ClientGone(ApiError):
    """The client hung up before its body arrived; the answer goes nowhere."""

    def __init__(self, what: str, size: int) -> None:
        super().__init__(400, "client_gone", f"the client hung up after {size:,} bytes of "
                         f"{what}")


def _too_large(what: str, limit: int) -> ApiError:
    return ApiError(413, "too_large", f"{what} is larger than the limit of {limit:,} bytes "
                    f"({limit / 2**20:.1f} MiB)", headers=CLOSE, limit=limit)


def _too_slow(what: str, size: int, seconds: float, grace: float, rate: float) -> ApiError:
    return ApiError(408, "too_slow", f"{what} arrived too slowly ({size:,} bytes in "
                    f"{seconds:.0f} s): after the first {grace:g} s the server needs at least "
                    f"{rate / 1024:g} KiB/s; try a smaller file or a better connection",
                    headers=CLOSE, min_bytes_per_s=rate)


def _pace(request: Request) -> tuple[float, float]:
    settings = request.app.state.runtime.settings
    return settings.body_grace_s, settings.body_min_rate


class BodyProgress:
    """How far one body has come; `cut()` ends its read at once (408) so that another upload
    can have its place."""

    def __init__(self, client: str = "", limited: bool = False) -> None:
        self.client, self.limited = client, limited
        self.started = time.monotonic()
        self.size = 0
        self.reading: asyncio.Timeout | None = None   # while a chunk is awaited
        self.was_cut = False

    def rate(self, now: float) -> float:
        return self.size / max(now - self.started, 1e-6)

    def cut(self) -> None:
        self.was_cut = True
        # a timer past its deadline is ending the read already (and refuses a new deadline)
        if self.reading is not None and not self.reading.expired():
            self.reading.reschedule(asyncio.get_running_loop().time())


class UploadPlaces:
    """Bodies arriving at once, in all and per client address. When every place is taken, a
    newcomer gets the place of the slowest body that has averaged under the minimum rate for
    a second or more (a body declared and never sent, from however many addresses), waiting
    up to a second for one to qualify, else 503; an address over its own share gets 429.
    Both refusals leave the body unread."""

    MIN_AGE_S = 1.0                   # a body this young has had no chance to show its pace
    WAIT_S = 1.0                      # how long a newcomer waits for a place

    def __init__(self) -> None:
        self.arriving: dict[BodyProgress, None] = {}
        self.per_client: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.arriving)

    async def take(self, client: str, limited: bool, total: int, per_client: int,
                   min_rate: float) -> BodyProgress:
        if limited and self.per_client.get(client, 0) >= per_client:
            raise ApiError(429, "too_many_uploads", f"{self.per_client[client]} uploads from "
                           "your address are still arriving; wait for them to finish",
                           headers={"Retry-After": "1", **CLOSE})
        waited = 0.0
        while len(self.arriving) >= total and not self._make_room(min_rate):
            if waited >= self.WAIT_S:
                raise ApiError(503, "busy", f"{len(self.arriving)} images are being uploaded; "
                               "try again in a second", headers={"Retry-After": "1", **CLOSE})
            await asyncio.sleep(0.1)
            waited += 0.1
        progress = BodyProgress(client, limited)
        self.arriving[progress] = None
        if limited:
            self.per_client[client] = self.per_client.get(client, 0) + 1
        return progress

    def leave(self, progress: BodyProgress) -> None:
        if self.arriving.pop(progress, "gone") == "gone":
            return
        if progress.limited:          # a client's entry goes with its last upload: bounded
            left = self.per_client[progress.client] - 1
            if left:
                self.per_client[progress.client] = left
            else:
                del self.per_client[progress.client]

    def _make_room(self, min_rate: float) -> bool:
        now = time.monotonic()
        stalled = [p for p in self.arriving if p.reading is not None
                   and now - p.started >= self.MIN_AGE_S and p.rate(now) < min_rate]
        if not stalled:
            return False
        victim = min(stalled, key=lambda p: p.rate(now))
        victim.cut()
        self.leave(victim)            # its place is the newcomer's from now on
        return True


async def read_body(request: Request, limit: int, what: str = "the request body",
                    progress: BodyProgress | None = None) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(what, limit)
    grace, rate = _pace(request)
    progress = progress or BodyProgress()
    chunks, size = [], 0
    stream = request.stream()
    try:
        while True:
            try:   # the deadline grows with every byte that arrives (rate bytes buy 1 s)
                left = progress.started + grace + size / rate - time.monotonic()
                async with asyncio.timeout(left) as timer:
                    progress.reading = timer
                    chunk = await anext(stream)
            except StopAsyncIteration:
                break
            except TimeoutError:
                seconds = time.monotonic() - progress.started
                if progress.was_cut:
                    raise ApiError(408, "too_slow", f"{what} was arriving too slowly "
                                   f"({size:,} bytes in {seconds:.1f} s) while others waited "
                                   "for its place; send it again", headers=CLOSE) from None
                raise _too_slow(what, size, seconds, grace, rate) from None
            finally:
                progress.reading = None
            size += len(chunk)
            progress.size = size
            if size > limit:
                raise _too_large(what, limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone(what, size) from None
    finally:
        await stream.aclose()
    return b"".join(chunks)


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
                      raw_types: tuple[str, ...] = RAW_TYPES,
                      progress: BodyProgress | None = None) -> Upload:
    """A file from multipart/form-data field `file_field`, or the raw body when its
    Content-Type is one of raw_types (curl --data-binary @cat.jpg -H 'Content-Type: image/jpeg')."""
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        body = await read_body(request, limit, what, progress)
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
        return Upload(await read_body(request, limit, what, progress), None, kind)
    raise ApiError(415, "unsupported_media_type",
                   f"send {what} as multipart/form-data with a field '{file_field}' (or as the "
                   f"raw body with Content-Type {' or '.join(t + '*' if t.endswith('/') else t for t in raw_types)}); "
                   f"got Content-Type {content_type or 'none'!r}", headers=CLOSE)
