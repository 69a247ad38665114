"""The HTTP protocol ``aimss-cds serve`` runs: uvicorn's httptools protocol, with two bounds
it lacks (uvicorn reads headers of any size, for as long as a client takes to send them).

- ``max_header_bytes``: the request line and headers together; above it the answer is 431 and
  the connection is closed, before the rest is read.
- ``header_timeout``: seconds from the connection (or from the first byte of a next request on
  a kept-alive connection) to the end of the headers; a client that takes longer is dropped.
  Without it a client sending a byte every few seconds holds a connection, and its memory,
  forever.

Limits come from the ``AIMSS_*`` settings of each worker process.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cds_service.settings import Settings


@functools.cache
def _limits() -> tuple[int, float]:
    settings = Settings()
    return settings.max_header_bytes, settings.header_timeout


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_header_bytes, self._header_timeout = _limits()
        self._header_deadline: asyncio.TimerHandle | None = None
        self._next_request()

    def _next_request(self) -> None:
        """Headers of a request are expected next: count them afresh."""
        self._reading_headers = True
        self._header_bytes = 0
        self._tail = b""  # the last bytes seen, for a CRLFCRLF split across reads

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Counted before the parser sees them: httptools keeps a header value it has not seen
        the end of in its own buffer, so a count in its callbacks would come too late."""
        if self._reading_headers:
            seen = self._tail + data
            end = seen.find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._tail = seen[-3:]
            if self._header_bytes > self._max_header_bytes:
                self._refuse_headers()
                return
            self._arm_header_deadline()
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._cancel_header_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._next_request()

    def _refuse_headers(self) -> None:
        self._cancel_header_deadline()
        body = b"Request header fields too large"
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self._header_timeout, self._drop_slow_client)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _drop_slow_client(self) -> None:
        self._header_deadline = None
        if self._reading_headers and not self.transport.is_closing():
            self.transport.close()
