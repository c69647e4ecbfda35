"""One error shape for every failed request: {"error": code, "detail": sentence, ...extra}.

Routes raise ApiError (or let FastAPI raise HTTPException / RequestValidationError); the
handlers installed by `install_error_handlers` turn them all into that shape, so bad input is
always a 4xx with a reason and never a 500 with a traceback.

The safety net: an error the engine raises of its own type (a ValueError subclass defined in
engine/: SpecError, SnapshotError, OptimError, TrainError...) is the engine refusing input, so
it becomes a 422 naming its field. Anything else unexpected stays a 500 and is logged: a bug
to fix, not an input to explain away.
"""

from __future__ import annotations

from contextlib import contextmanager

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

from server.jsonenc import SafeJSONResponse

logger = logging.getLogger("server")

STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
                413: "too_large", 415: "unsupported_media_type", 422: "invalid",
                429: "too_many_requests", 503: "unavailable"}
# The method a HEAD request had before server.middleware served it as a GET.
ORIGINAL_METHOD = "convnet.original_method"


class ApiError(Exception):
    """A refused request. `extra` adds keys to the body (e.g. layer, field)."""

    def __init__(self, http_status: int, code: str, detail: str, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = http_status, code, detail
        self.headers = headers or {}
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.extra}


def not_ready(status: str) -> ApiError:
    return ApiError(503, "not_ready", f"the server is still starting ({status}); try again "
                    "in a moment", headers={"Retry-After": "1"}, status=status)


def error_response(status: int, body: dict[str, Any], headers: dict | None = None):
    return SafeJSONResponse(body, status_code=status, headers=headers or None)


async def _api_error(request: Request, exc: ApiError):
    return error_response(exc.status, exc.body(), exc.headers)


async def _http_error(request: Request, exc: StarletteHTTPException):
    code = STATUS_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such address: {request.url.path}"
    if exc.status_code == 405:
        method = request.scope.get(ORIGINAL_METHOD, request.method)
        detail = f"{method} is not allowed on {request.url.path}"
    if exc.status_code == 413:
        limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
        detail = "the request body is too large" + (
            f": the limit is {limit:,} bytes" if isinstance(limit, int) else "")
    return error_response(exc.status_code, {"error": code, "detail": detail},
                          getattr(exc, "headers", None))


def _where(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts)


def body_path(loc: tuple, kind: str) -> tuple:
    """A body error's location as the client wrote it: field names and list positions,
    without Pydantic's union-member tags ("bool", "literal['alternate']"...); an unknown
    key is named as sent."""
    from server.models import BODY_FIELDS
    known = loc[:-1] if kind == "extra_forbidden" else loc
    path = tuple(p for p in known if isinstance(p, int) or p in BODY_FIELDS)
    return path + loc[-1:] if kind == "extra_forbidden" else path


def field_code(field: str) -> str:
    """The code of a refused field: its own, else its outermost key's (a race's runs.0.name
    is the race's), else its innermost key's (a fork's params.learning_rate is a setting)."""
    from server.models import FIELD_CODES
    parts = field.split(".")
    return (FIELD_CODES.get(field) or FIELD_CODES.get(parts[0])
            or FIELD_CODES.get(parts[-1], "invalid_request"))


def validation_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Pydantic's first error as the one shape: the code of its field (server.models), the
    field, and a sentence."""
    from server.models import FIELD_CODES
    first = errors[0] if errors else {}
    context = first.get("ctx") or {}
    loc = tuple(first.get("loc", ()))
    kind = first.get("type", "")
    field = context.get("field") or _where(body_path(loc[1:], kind) if loc[:1] == ("body",)
                                           else loc)
    message = first.get("msg", "invalid request")
    if kind == "extra_forbidden":
        code, message = "invalid_request", (f"unknown key {field!r}; /docs lists what this "
                                            f"address takes")
    elif kind == "missing":
        code, message = field_code(field), f"{field} is required"
    elif kind in FIELD_CODES.values() or kind == "invalid_request":
        code = kind                       # our own PydanticCustomError types
    else:
        code = field_code(field)
    detail = f"{field}: {message}" if field and not message.startswith(field) else message
    return {"error": code, "detail": detail, "field": field or None}


async def _validation_error(request: Request, exc: RequestValidationError):
    return error_response(422, validation_body(exc.errors()))


def engine_refusal(exc: BaseException) -> bool:
    """True for the engine's own error types: ValueError subclasses defined in engine/."""
    return (isinstance(exc, ValueError) and type(exc) is not ValueError
            and type(exc).__module__.split(".")[0] == "engine")


@contextmanager
def engine_refusals_as(code: str, prefix: str = ""):
    """Inside the block, the engine's own refusals become a 422 `code` (their message after
    `prefix`, their field kept); anything else goes on up, to the 500 handler."""
    try:
        yield
    except ValueError as exc:
        if not engine_refusal(exc):
            raise
        raise ApiError(422, code, f"{prefix}{exc}", field=getattr(exc, "field", None)) from None


async def _value_error(request: Request, exc: ValueError):
    if not engine_refusal(exc):
        return await _unexpected(request, exc)
    where = {key: getattr(exc, key, None) for key in ("layer", "field")}
    return error_response(422, {"error": "invalid", "detail": str(exc) or type(exc).__name__,
                                **{k: v for k, v in where.items() if isinstance(v, str)}})


async def _unexpected(request: Request, exc: Exception):
    logger.exception("unexpected error in %s %s", request.method, request.url.path)
    return error_response(500, {"error": "internal", "detail": "the server failed to handle "
                                "this request; see the server's log"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ValueError, _value_error)
    app.add_exception_handler(Exception, _unexpected)
