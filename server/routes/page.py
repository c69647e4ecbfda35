"""GET /: the page. GET /?token=T (the address `serve` prints) trades the presenter token for
an HttpOnly session cookie and redirects to a clean URL, so the token leaves the address bar
(the projector shows it). POST /login does the same for the page's login form, so a typed
token never appears in an address or the browser's history.

The page depends only on the role, the version and the join address (the server's own, never
the request's Host), so each role's page is rendered once and served as bytes: a room of 150
loading it at once costs 150 copies, not 150 template renderings on the event loop.
A refused login answers a browser (Accept: text/html) with a page, anyone else with the one
JSON error shape.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from server.auth import PUBLIC, cookie_name, log_in, role_of
from server.errors import ApiError
from server.runtime import runtime

router = APIRouter(tags=["page"])

FALLBACK = """<!doctype html><html><head><meta charset="utf-8"><title>convnet-demo</title></head>
<body><h1>convnet-demo {version}</h1><p>{message}</p>
<p>The page's files are not installed; the API is: <a href="/docs">/docs</a>,
<a href="/api/state">/api/state</a>.</p></body></html>"""


WRONG_TOKEN = """<!doctype html><html><head><meta charset="utf-8"><title>convnet-demo: wrong
token</title></head><body><h1>That presenter token is not valid</h1>
<p>Open the presenter address exactly as <code>convnet-demo serve</code> printed it.</p>
<p><a href="/">Continue as a viewer</a> (watch the run and classify your own images).</p>
</body></html>"""

TOO_MANY = """<!doctype html><html><head><meta charset="utf-8"><title>convnet-demo: too many
tries</title></head><body><h1>Too many wrong presenter tokens</h1><p>{detail}</p>
<p><a href="/">Continue as a viewer</a>.</p></body></html>"""

NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}  # never leak ?token=
MAX_CACHED_PAGES = 8                     # roles x join addresses (one address unless port 0)


def render_page(request: Request, role: str) -> bytes:
    rt = runtime(request)
    context = {"role": role, "version": rt.version, "join_url": rt.join_url(request)}
    directory = request.app.state.templates_dir
    if directory is None or not (directory / "index.html").is_file():
        return FALLBACK.format(version=html.escape(rt.version),
                               message=html.escape(f"You are a {role}.")).encode()
    env = getattr(request.app.state, "page_env", None)
    if env is None:
        env = request.app.state.page_env = Environment(
            loader=FileSystemLoader(str(directory)), autoescape=select_autoescape())
    return env.get_template("index.html").render(**context).encode("utf-8")


def _page(request: Request, role: str) -> Response:
    cache = getattr(request.app.state, "pages", None)
    if cache is None:
        cache = request.app.state.pages = {}
    key = (role, runtime(request).join_url(request))
    page = cache.get(key)
    if page is None:
        if len(cache) >= MAX_CACHED_PAGES:
            cache.clear()
        page = cache[key] = render_page(request, role)
    return Response(page, media_type="text/html; charset=utf-8", headers=NO_STORE)


@router.get("/", dependencies=[PUBLIC], response_class=HTMLResponse,
            summary="the page (viewer or presenter)")
async def index(request: Request, token: str | None = None):
    if token is None:
        return _page(request, role_of(request))
    # The page's own options (?projector=1) survive the exchange; only the token leaves.
    kept = [(key, value) for key, value in request.query_params.multi_items() if key != "token"]
    return await _log_in(request, token, "/?" + urlencode(kept) if kept else "/")


@router.post("/login", dependencies=[PUBLIC], response_class=HTMLResponse,
             summary="the login form: token -> presenter cookie, then the page")
async def login(request: Request, token: str = Form("", max_length=1024)):
    return await _log_in(request, token)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def _log_in(request: Request, token: str, back: str = "/"):
    try:
        session = log_in(request, token)
    except ApiError as exc:              # too many wrong tokens from this address
        if not _wants_html(request):
            raise
        return HTMLResponse(TOO_MANY.format(detail=html.escape(exc.detail)), exc.status,
                            headers={**NO_STORE, **exc.headers})
    if session is None:
        if not _wants_html(request):
            raise ApiError(401, "unauthorized", "that presenter token is not valid; open the "
                           "presenter address exactly as `convnet-demo serve` printed it")
        return HTMLResponse(WRONG_TOKEN, status_code=401, headers=NO_STORE)
    save = runtime(request).sessions.saver()
    if save is not None:           # kept across a restart (server/credentials.py); it fsyncs
        await run_in_threadpool(save)
    response = RedirectResponse(back, status_code=303, headers=NO_STORE)
    response.set_cookie(cookie_name(request), session, httponly=True, samesite="strict",
                        path="/")
    return response
