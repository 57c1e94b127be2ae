"""uvicorn's HTTP protocols, answering what they refuse themselves in crimemap's JSON envelope.

A request uvicorn cannot parse (a request line or header over 64 KiB, or not
HTTP/1.1 at all) never reaches the app: uvicorn answers 400 with the plain text
"Invalid HTTP request received.". :data:`HTTP_PROTOCOL` is the protocol
``crimemap serve`` runs (httptools when installed, as uvicorn's ``auto``
chooses, else h11), answering the same 400 with the police.uk envelope
(:func:`~crimemap.api.errors.error_body`) saying what to do instead.
"""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from crimemap.api.errors import error_body

MESSAGE = "the request could not be read as HTTP/1.1: its request line or a header is over 64 KiB, or it is malformed"
HINT = "send long parameters (a poly) as a form-encoded POST body"


def _body() -> bytes:
    return error_body(400, MESSAGE, HINT)


class JSONErrorsH11Protocol(H11Protocol):
    """h11, with its own 400 answered as JSON."""

    def send_400_response(self, msg: str) -> None:
        body = _body()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body)):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        self.transport.close()


HTTP_PROTOCOL = "crimemap.api.protocols:JSONErrorsH11Protocol"
"""The protocol class ``crimemap serve`` gives uvicorn (an import string: workers import it themselves)."""

try:
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is part of uvicorn[standard]
    pass
else:

    class JSONErrorsHttpToolsProtocol(HttpToolsProtocol):
        """httptools, with its own 400 answered as JSON."""

        def send_400_response(self, msg: str) -> None:
            body = _body()
            content = [STATUS_LINE[400]]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend(
                [
                    b"content-type: application/json\r\n",
                    b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n",
                    b"\r\n",
                    body,
                ]
            )
            self.transport.write(b"".join(content))
            self.transport.close()

    HTTP_PROTOCOL = "crimemap.api.protocols:JSONErrorsHttpToolsProtocol"
