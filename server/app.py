"""The FastAPI app: `create_app(settings)` wires the routers, error handlers, page assets and
the lifespan that starts and stops the training worker.

Page assets: templates/ and static/ are looked up in the package (server/templates,
server/static: where an installed wheel has them) and then at the repository root (an
editable install). The page is served at once; the worker loads data and compiles kernels in
the background while /api/state says "loading" / "compiling".
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from server.errors import install_error_handlers
from server.hosts import allowed_hosts
from server.jsonenc import SafeJSONResponse
from server.middleware import HeadAsGet, TrustedHosts
from server.routes import (challenge, classify, control, explorer, filters, net, page, past,
                           patches, polls, runs, snapshot, state, stream)
from server.runtime import Runtime, package_version
from server.settings import Settings
from server.static_files import CompressedStaticFiles
from server.worker import Worker

PACKAGE_DIR = Path(__file__).resolve().parent
ASSET_ROOTS = (PACKAGE_DIR, PACKAGE_DIR.parent)


def asset_dir(name: str) -> Path | None:
    """server/<name> if present (installed wheel), else <repo>/<name> (editable install)."""
    for root in ASSET_ROOTS:
        candidate = root / name
        if candidate.is_dir():
            return candidate
    return None


@asynccontextmanager
async def lifespan(app: FastAPI):
    rt: Runtime = app.state.runtime
    rt.hub.bind(asyncio.get_running_loop())
    rt.worker = Worker(rt.settings, rt.hub)
    rt.worker.start()
    try:
        yield
    finally:
        rt.hub.close()
        await asyncio.to_thread(rt.worker.stop, 120.0)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(title="convnet-demo", version=package_version(),
                  description="Train a convolutional network live; every view has a JSON twin. "
                              "Presenter routes need `Authorization: Bearer <token>`.",
                  default_response_class=SafeJSONResponse, lifespan=lifespan)
    app.state.runtime = Runtime(settings)
    install_error_handlers(app)
    # The page, scripts, CSS and JSON to 300 phones on one access point: a first page load
    # is 2.6x smaller. Starlette leaves text/event-stream alone (never buffers the stream).
    app.add_middleware(GZipMiddleware, minimum_size=settings.gzip_min_bytes,
                       compresslevel=settings.gzip_level)
    # Outermost: HEAD as a body-less GET (for every route, refusals included); then the Host
    # allowlist (DNS rebinding), before any route runs.
    app.add_middleware(TrustedHosts, allowed_hosts=allowed_hosts(settings))
    app.add_middleware(HeadAsGet)
    for module in (page, state, stream, classify, net, control, snapshot, filters, past,
                   patches, runs, explorer, challenge, polls):
        app.include_router(module.router)
    static = asset_dir("static")
    if static is not None:
        app.mount("/static", CompressedStaticFiles(directory=static, level=settings.gzip_level,
                                                   min_bytes=settings.gzip_min_bytes),
                  name="static")
    app.state.templates_dir = asset_dir("templates")
    return app
