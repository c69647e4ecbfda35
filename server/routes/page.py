"""GET /: the page. GET /?token=T (the address `serve` prints) trades the presenter token for
an HttpOnly cookie and redirects to a clean URL, so the token leaves the address bar (the
projector shows it). POST /login does the same for the page's login form, so a typed token
never appears in an address or the browser's history."""

from __future__ import annotations

import html

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from server.auth import PUBLIC, cookie_name, role_of, token_matches
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


def _templates(request: Request) -> Jinja2Templates | None:
    directory = request.app.state.templates_dir
    cached = getattr(request.app.state, "templates", None)
    if cached is None and directory is not None and (directory / "index.html").is_file():
        cached = request.app.state.templates = Jinja2Templates(directory=str(directory))
    return cached


def _page(request: Request, role: str):
    rt = runtime(request)
    templates = _templates(request)
    context = {"role": role, "version": rt.version, "join_url": rt.join_url(request)}
    if templates is None:
        text = FALLBACK.format(version=html.escape(rt.version),
                               message=html.escape(f"You are a {role}."))
        response = HTMLResponse(text)
    else:
        response = templates.TemplateResponse(request, "index.html", context)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"   # never leak ?token= onwards
    return response


@router.get("/", dependencies=[PUBLIC], response_class=HTMLResponse,
            summary="the page (viewer or presenter)")
async def index(request: Request, token: str | None = None):
    if token is None:
        return _page(request, role_of(request))
    return _log_in(request, token)


@router.post("/login", dependencies=[PUBLIC], response_class=HTMLResponse,
             summary="the login form: token -> presenter cookie, then the page")
async def login(request: Request, token: str = Form("")):
    return _log_in(request, token)


def _log_in(request: Request, token: str):
    if not token_matches(request, token):
        response = HTMLResponse(WRONG_TOKEN, status_code=401)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(cookie_name(request), runtime(request).settings.token, httponly=True,
                        samesite="strict", path="/")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
