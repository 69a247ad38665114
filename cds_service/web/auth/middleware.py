"""The JWT of every ``/cds-services`` call is checked before a byte of its body is read.

FastAPI reads and parses a request body before it runs a route's dependencies, so a check done
there let anyone make a worker read and parse 50 MB before the 401. This ASGI middleware sits
in front of that: a refused call gets its bare 401 (and the connection is closed, so the body
is never read); an accepted one carries its tenant in ``request.state.tenant``.

The audience a token must carry is ``AIMSS_PUBLIC_BASE_URL`` or else the address the service
listens on, plus the path called: never the request's ``Host`` header, which the caller writes.
"""

from __future__ import annotations

import logging

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cds_service import metrics
from cds_service.hooks.tenant import DEVELOPMENT, Tenant
from cds_service.web.auth.failures import AuthError
from cds_service.web.auth.jwt import JwtVerifier

log = logging.getLogger("aimss_cds")

PROTECTED_PREFIX = "/cds-services"


class Authenticate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        runtime = scope["app"].state.runtime
        verifier: JwtVerifier | None = runtime.verifier
        tenant: Tenant = DEVELOPMENT
        if verifier is not None:
            audience = runtime.audience_base + path
            try:
                claims = await verifier.verify(_header(scope, b"authorization"), audience)
            except AuthError as error:
                metrics.AUTH_FAILURES.labels(error.reason).inc()
                log.warning(
                    "JWT rejected: reason=%s expected_aud=%s%s",
                    error.reason,
                    audience,
                    f" ({error.detail})" if error.detail else "",
                )
                await Response(status_code=401, headers={"Connection": "close"})(scope, receive, send)
                return
            tenant = verifier.tenant_of(claims)
        scope.setdefault("state", {})["tenant"] = tenant
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None
