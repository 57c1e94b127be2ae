"""uvicorn's HTTP protocols, answering what they refuse themselves in crimemap's JSON envelope.

A request uvicorn cannot parse (a request line over 64 KiB, or not HTTP/1.1 at
all) never reaches the app: uvicorn answers 400 with the plain text
"Invalid HTTP request received.". :data:`HTTP_PROTOCOL` is the protocol
``crimemap serve`` runs (httptools when installed, as uvicorn's ``auto``
chooses, else h11), answering the same 400 with the police.uk envelope
(:func:`~crimemap.api.policeuk.errors.error_body`) saying what to do instead.

httptools reads header fields of any length (a 50 MB header was read whole, in
3.2 s, and answered 200); the app refuses fields over 64 KiB
(:class:`~crimemap.api.envelopes.HeaderLimit`), but only once they are read.
The httptools protocol here stops reading a head after :data:`MAX_HEAD_READ`
bytes and answers 431 in the envelope of the path, so memory and time stay bounded.
"""

from __future__ import annotations

from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from crimemap.api.envelopes import MAX_HEADER_BYTES, headers_too_large
from crimemap.api.policeuk.errors import error_body

MESSAGE = "the request could not be read as HTTP/1.1: its request line or a header is over 64 KiB, or it is malformed"
HINT = "send long parameters (a poly) as a form-encoded POST body"

MAX_HEAD_READ = 2 * MAX_HEADER_BYTES
"""The most bytes of a request's head read before it is refused: a request line (at most 64 KiB parses) and
header fields of 64 KiB. Heads that end within it are measured exactly by the app."""

LINGER_S = 5.0
"""How long a refused connection's further bytes are read and dropped before it is closed, so that a client still
sending can finish and read the 431 (closing at once would reset the connection and lose the answer)."""


def _body() -> bytes:
    return error_body(400, MESSAGE, HINT)


class JSONErrorsH11Protocol(H11Protocol):
    """h11, with its own 400 answered as JSON, reading heads of up to :data:`MAX_HEAD_READ` bytes.

    h11's own limit is 16 KiB, under the 64 KiB the app allows header fields
    (:class:`~crimemap.api.envelopes.HeaderLimit` refuses more with a 431).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config.h11_max_incomplete_event_size is None:
            self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_READ)

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
        """httptools, with its own 400 answered as JSON and a head over :data:`MAX_HEAD_READ` bytes refused (431).

        A head is measured from the first read after the one it began in (a read may end the
        request before it), so at most one read (256 KiB) more is taken in.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_open = False
            self._head_read = 0
            self._refused = False

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # the 431 is sent; this is dropped until the client or the timer closes the connection
            measured = self._head_open
            super().data_received(data)
            if measured and self._head_open:
                self._head_read += len(data)
                if self._head_read > MAX_HEAD_READ and not self.transport.is_closing():
                    self._refuse_head()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_open, self._head_read = True, 0

        def on_headers_complete(self) -> None:
            self._head_open = False
            super().on_headers_complete()

        def _refuse_head(self) -> None:
            self._refused = True
            path = self.url.partition(b"?")[0].decode("latin-1") or "/"
            response = headers_too_large(path)
            content = [STATUS_LINE[response.status_code]]
            for name, value in (*self.server_state.default_headers, *response.raw_headers):
                content.extend([name, b": ", value, b"\r\n"])
            content.extend([b"\r\n", bytes(response.body)])
            self.transport.write(b"".join(content))
            self.loop.call_later(LINGER_S, self.transport.close)

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
