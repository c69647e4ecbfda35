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
from fastapi.staticfiles import StaticFiles

from server.errors import install_error_handlers
from server.jsonenc import SafeJSONResponse
from server.routes import classify, control, net, page, snapshot, state, stream
from server.runtime import Runtime, package_version
from server.settings import Settings
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
    for module in (page, state, stream, classify, net, control, snapshot):
        app.include_router(module.router)
    static = asset_dir("static")
    if static is not None:
        app.mount("/static", StaticFiles(directory=static), name="static")
    app.state.templates_dir = asset_dir("templates")
    return app
