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
        self._header_bytes = 0
        self._headers_too_large = False
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._arm_header_deadline()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_header_deadline()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """The parser stops on the exception ``_count`` raises; answer what it was."""
        if not self._headers_too_large:
            super().send_400_response(msg)
            return
        body = b"Request header fields too large"
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self._max_header_bytes:
            self._headers_too_large = True
            raise ValueError("request headers too large")  # httptools stops parsing

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self._header_timeout, self._drop_slow_client)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _drop_slow_client(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
