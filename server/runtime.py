"""The per-app objects routes share (settings, hub, worker), and small helpers for routes."""

from __future__ import annotations

import asyncio
import functools
import secrets
from importlib import metadata
from typing import Any

from fastapi import Request

from server.addresses import WILDCARDS, lan_address
from server.errors import ApiError
from server.hub import Hub
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
        self.uploads_arriving = 0
        self._lan: str | None = None

    def join_url(self, request: Request) -> str:
        """Where viewers open the page: the LAN address when listening on every interface,
        else the address this request used."""
        host = self.settings.host
        port = self.settings.port or request.url.port or 80
        if host in WILDCARDS:
            if self._lan is None:
                self._lan = lan_address()
            return f"http://{self._lan}:{port}/"
        return f"{request.url.scheme}://{request.url.netloc}/"

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
