"""Two ASGI middlewares of the app: a Host allowlist, and HEAD served as a body-less GET.

Host allowlist (DNS rebinding): a page on evil.example whose name an attacker points at this
machine's address reaches the API with `Host: evil.example`, and the browser treats the
answers as evil.example's own. Starlette's TrustedHostMiddleware refuses any Host not on the
list (server/hosts.py makes it: the machine's own names and addresses, plus --allowed-host);
this subclass answers its refusals in the one error shape instead of plain text. A Host that
is an IP address is always answered: a rebinding page is reached by a name the attacker
controls, never by an address, and a laptop with Wi-Fi and a cable has addresses on both
that viewers may use.

HEAD: FastAPI registers a GET route for GET only, so HEAD got 405. A HEAD is a GET whose
answer has no body: the app sees a GET (the original method is kept in the scope for error
messages), its status and headers go out, and the body ends at once; an endless answer (the
event stream) is told the client left, so it stops.
"""

from __future__ import annotations

import ipaddress

from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import ORIGINAL_METHOD, error_response

HOST_CHECKED = "convnet.host_checked"


class _MarkPassed:
    """Marks the scope of a request TrustedHostMiddleware let through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[HOST_CHECKED] = True
        await self.app(scope, receive, send)


class TrustedHosts(TrustedHostMiddleware):
    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        super().__init__(_MarkPassed(app), allowed_hosts=allowed_hosts, www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if _is_address(Headers(scope=scope).get("host", "")):
            await self.app(scope, receive, send)
            return

        async def send_or_refuse(message: Message) -> None:
            if scope.get(HOST_CHECKED):
                await send(message)
            elif message["type"] == "http.response.start":   # the middleware's own refusal
                refusal = error_response(400, {
                    "error": "unknown_host", "detail": "this server answers only to its own "
                    "names and addresses; open the address `convnet-demo serve` printed (it "
                    "can add a name with --allowed-host NAME)"})
                await refusal(scope, receive, send)
            # its plain-text body is dropped: the refusal above was complete

        await super().__call__(scope, receive, send_or_refuse)


def _is_address(host: str) -> bool:
    """True for a Host header naming an IP address (with or without a port)."""
    if host.startswith("["):
        host, _, port = host[1:].partition("]")
        if port and not (port.startswith(":") and port[1:].isdigit()):
            return False
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        finished = False

        async def headers_only(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.start" and not finished:
                finished = True
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def receive_until_answered() -> Message:
            if finished:
                return {"type": "http.disconnect"}
            return await receive()

        await self.app({**scope, "method": "GET", ORIGINAL_METHOD: "HEAD"},
                       receive_until_answered, headers_only)
