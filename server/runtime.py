"""The per-app objects routes share (settings, hub, worker), and small helpers for routes."""

from __future__ import annotations

import asyncio
import functools
import secrets
from importlib import metadata
from typing import Any

from fastapi import Request

from server.addresses import join_url
from server.bodies import UploadPlaces
from server.credentials import SessionStore
from server.errors import ApiError
from server.hub import Hub
from server.sessions import FailureLimiter, Sessions
from server.settings import Settings


def package_version() -> str:
    try:
        return metadata.version("convnet-demo")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@functools.cache
def preset_list() -> tuple[dict[str, Any], ...]:
    from engine.presets import PRESETS, TRAINABLE, preset_document
    return tuple({"name": name, "description": preset_document(name).get("description", ""),
                  "trainable": name in TRAINABLE} for name in PRESETS)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.hub = Hub(settings.ping_every_s)
        self.worker = None                  # made by the lifespan (a thread starts once)
        self.version = package_version()
        self.run_id = secrets.token_hex(8)   # a page seeing a new one drops what it shows
        self.classify_in_flight = 0
        self.uploads = UploadPlaces()        # classify bodies arriving (server/bodies.py)
        self.sessions = Sessions(settings.max_sessions, SessionStore.for_server(
            settings.state_dir, settings.port, settings.token))
        self.login_failures = FailureLimiter(settings.login_failures, settings.login_window_s,
                                             settings.max_tracked_addresses)
        self.last_save = -float("inf")       # time.monotonic() of the last accepted save
        self._join_urls: dict[int, str] = {}

    def join_url(self, request: Request) -> str:
        """Where viewers open the page, from the server's own address (never the request's
        Host header): the LAN address when listening on every interface, else the address it
        listens on; the port it was given, or (port 0) the one the connection came in on."""
        port = self.settings.port or (request.scope.get("server") or ("", 80))[1] or 80
        if port not in self._join_urls:
            self._join_urls = {port: join_url(self.settings.host, port)}
        return self._join_urls[port]

    @property
    def published(self):
        if self.worker is None:
            raise ApiError(503, "not_ready", "the server is starting",
                           headers={"Retry-After": "1"})
        return self.worker.published


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def command(request: Request, kind: str, payload: Any = None) -> Any:
    """Send a command to the worker thread and wait for its answer (errors re-raised)."""
    rt = runtime(request)
    if rt.worker is None:
        raise ApiError(503, "not_ready", "the server is starting", headers={"Retry-After": "1"})
    return await asyncio.wrap_future(rt.worker.submit(kind, payload))
