"""The answer to a request uvicorn cannot parse, in the one JSON error shape.

uvicorn (with h11, its HTTP/1.1 parser when httptools is not installed) answers a request h11
refuses (a malformed Content-Length such as `abc`, `-1` or `5, 6`; a bad header line; a bad
request line) itself, before the app sees anything: a plain-text "Invalid HTTP request
received." and a closed connection. `JSONProtocolErrors` is a mixin for uvicorn's
H11Protocol (uvicorn.Config(http=...)) that sends the same 400 as JSON.
"""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.jsonenc import dumps

MALFORMED = dumps({"error": "bad_request", "detail": "the request is not valid HTTP/1.1 "
                   "(e.g. a malformed Content-Length or header line)"}).encode()


class JSONProtocolErrors:
    def send_400_response(self, msg: str) -> None:
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(MALFORMED)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                      h11.Data(data=MALFORMED), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()


class JSONErrorsH11Protocol(JSONProtocolErrors, H11Protocol):
    """uvicorn's HTTP/1.1 protocol with JSON answers to malformed requests."""
