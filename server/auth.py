"""Who may do what: the presenter (holds the token) steers, everyone else views and classifies.

The token comes as `Authorization: Bearer <token>`, or once as `GET /?token=...` (the
address `serve` prints) or the login form's POST /login, which trade it for an HttpOnly
cookie holding a random session id (server/sessions.py: never the token itself) and redirect
to a clean URL, since the projector shows the address bar. The cookie's name carries the port
(`convnet_presenter_8000`): browsers share a host's cookies across its ports, so two demos on
one machine would otherwise log each other out. Tokens are compared with
secrets.compare_digest, and each client address may offer a wrong one only so often
(FailureLimiter: then 429 with Retry-After, even for the right one). A cookie is an ambient
credential, so an unsafe request (POST/PUT/PATCH/DELETE) authenticated by the cookie alone is
refused with 403 when its Origin (or Sec-Fetch-Site) says it came from another site or port.

Every route declares its policy: API routes carry the dependency `PUBLIC` or `PRESENTER`,
and the few routes FastAPI adds itself (docs, static files) are listed in PUBLIC_PATHS. The
tests enumerate app.routes and fail on any route without a policy.
"""

from __future__ import annotations

import math
import secrets
from typing import Literal

from fastapi import Depends, Request
from starlette.routing import Mount

from server.errors import ApiError
from server.guard import client_key

COOKIE_PREFIX = "convnet_presenter"
Role = Literal["presenter", "viewer"]
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Routes added by FastAPI/Starlette rather than our routers: public by declaration.
PUBLIC_PATHS = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/static"}


def cookie_name(request: Request) -> str:
    """The presenter cookie of the server at this request's address (see above)."""
    port = request.url.port or (443 if request.url.scheme == "https" else 80)
    return f"{COOKIE_PREFIX}_{port}"


def client_address(request: Request) -> str:
    """Who the wrong-token limit counts: an IPv4 address, or an IPv6 device's /64 (it can
    pick any address in it), as the connection guard counts clients."""
    return client_key(request.client.host if request.client else None)


def offer_token(request: Request, candidate: str) -> bool:
    """Whether `candidate` is the presenter token; a wrong one counts against the client's
    address, and an address over its limit gets 429 whatever it offers."""
    rt = request.app.state.runtime
    address = client_address(request)
    wait = rt.login_failures.retry_after(address)
    if wait is not None:
        raise ApiError(429, "too_many_attempts", f"too many wrong presenter tokens from this "
                       f"address; try again in {math.ceil(wait)} s",
                       headers={"Retry-After": str(max(1, math.ceil(wait)))})
    expected = rt.settings.token
    if secrets.compare_digest(candidate.encode("utf-8", "replace"), expected.encode("utf-8")):
        return True
    rt.login_failures.failed(address)
    return False


def log_in(request: Request, token: str) -> str | None:
    """A new session id for the presenter cookie, or None for a wrong token."""
    if not offer_token(request, token):
        return None
    return request.app.state.runtime.sessions.new()


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _has_session(request: Request) -> bool:
    return request.app.state.runtime.sessions.valid(request.cookies.get(cookie_name(request)))


def _same_origin(request: Request) -> bool:
    """False when the browser says the request came from a page of another origin."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True                      # not sent by browsers' same-origin GETs; curl
    host = request.headers.get("host", "")
    return origin in (f"{request.url.scheme}://{host}", f"http://{host}", f"https://{host}")


def role_of(request: Request) -> Role:
    """The caller's role for display: presenter with the right bearer token or a live session
    cookie. A bearer token is an attempt like any other (counted once per request; 429 over
    the limit)."""
    role = getattr(request.state, "role", None)
    if role is None:
        bearer = _bearer(request)
        role = request.state.role = "presenter" if (
            bearer is not None and offer_token(request, bearer)) or _has_session(
            request) else "viewer"
    return role


# Both dependencies are async: FastAPI would run a plain def in its thread pool, a thread hop
# (and the GIL handed back and forth) on every request for a check that takes microseconds.
async def public(request: Request) -> Role:
    """Dependency of routes anyone may call; gives the caller's role."""
    return role_of(request)


async def presenter(request: Request) -> Role:
    """Dependency of presenter-only routes: 401 without a valid token, 403 for a
    cookie-authenticated unsafe request from a foreign origin."""
    bearer = _bearer(request)
    if bearer is not None:
        if offer_token(request, bearer):
            return "presenter"
        raise ApiError(401, "unauthorized", "the bearer token is not the presenter token",
                       headers={"WWW-Authenticate": "Bearer"})
    if _has_session(request):
        if request.method not in SAFE_METHODS and not _same_origin(request):
            raise ApiError(403, "forbidden", "this request came from another site; presenter "
                           "changes are only accepted from the demo's own page")
        return "presenter"
    raise ApiError(401, "unauthorized", "only the presenter may do this: open the presenter "
                   "address printed by `convnet-demo serve` (it carries the token), or send "
                   "Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})


PUBLIC = Depends(public)
PRESENTER = Depends(presenter)


def policy_of(route, path: str) -> str | None:
    """'public' | 'presenter' | None (undeclared) for one route."""
    if isinstance(route, Mount) or not hasattr(route, "dependant"):
        return "public" if path in PUBLIC_PATHS else None
    calls = {dep.call for dep in route.dependant.dependencies}
    declared = [name for name, func in (("public", public), ("presenter", presenter))
                if func in calls]
    return declared[0] if len(declared) == 1 else None


def flat_routes(routes):
    """(path, route) for every route, looking inside included routers (FastAPI >= 0.16x keeps
    them as lazy entries in app.routes)."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                yield context.path, context.original_route
        else:
            yield route.path, route


def route_policies(app) -> dict[str, str | None]:
    """'METHODS path' -> policy, for every route the app has."""
    out = {}
    for path, route in flat_routes(app.routes):
        methods = ",".join(sorted(getattr(route, "methods", None) or ["*"]))
        out[f"{methods} {path}"] = policy_of(route, path)
    return out
