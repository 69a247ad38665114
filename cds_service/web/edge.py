"""What every answer carries and every request is held to, before any route runs.

- ``SecurityHeaders``: ``Cache-Control: no-store`` (answers hold patient-specific cards) and
  ``X-Content-Type-Options: nosniff`` on every answer, errors and 401s included.
- ``RequestLimits``: a body over ``max_body_bytes`` is refused with 413 (at once when its
  ``Content-Length`` says so, else as soon as it grows past the limit), and a body that has not
  arrived within ``body_timeout`` seconds with 408. Both close the connection: the rest of the
  body is never read.

Header size and the time allowed for headers are the server's (``web.server``).
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service.web.errors import SECURITY_HEADERS, ProblemResponse

_RAW_SECURITY_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _RAW_SECURITY_HEADERS if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, body_timeout: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _too_large(self.max_body_bytes)(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        received = 0
        complete = False

        async def limited() -> Message:
            nonlocal received, complete
            if complete:  # later receives wait for a disconnect: no deadline on those
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, "The request body did not arrive in time") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_body_bytes:
                    raise HTTPException(413, _too_large_text(self.max_body_bytes))
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large_text(limit: int) -> str:
    return f"The request body is larger than {limit} bytes"


def _too_large(limit: int) -> ProblemResponse:
    return ProblemResponse(413, _too_large_text(limit), "too-costly", headers={"Connection": "close"})
