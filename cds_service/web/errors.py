"""Error answers of the HTTP edge: an OperationOutcome for every non-2xx, except the bare 401."""

from __future__ import annotations

import logging
import traceback

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cds_service.hooks.protocol import describe_validation_errors, operation_outcome
from cds_service.store import StoreFault

log = logging.getLogger("aimss_cds")

INTERNAL_ERROR = "Internal error; see the service log"


SECURITY_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
"""On every answer (``edge.SecurityHeaders``); here too for the 500s answered outside it."""

_CLOSE_AFTER = frozenset({408, 413})
"""Answers given before the body was read: the connection is closed rather than read on."""


class ProblemResponse(JSONResponse):
    """A non-2xx answer with an OperationOutcome body."""

    def __init__(
        self,
        status_code: int,
        diagnostics: str,
        code: str = "invalid",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            operation_outcome(diagnostics, code),
            status_code=status_code,
            headers=SECURITY_HEADERS | (headers or {}),
        )


def store_unavailable() -> ProblemResponse:
    return ProblemResponse(503, "The service's store is unavailable; try again later", "transient")


def internal_error() -> ProblemResponse:
    return ProblemResponse(500, INTERNAL_ERROR, "exception")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> Response:
        return ProblemResponse(
            400, "Malformed request: " + describe_validation_errors(list(error.errors()))
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported", 408: "timeout", 413: "too-costly"}.get(
            error.status_code, "processing"
        )
        close = {"Connection": "close"} if error.status_code in _CLOSE_AFTER else None
        return ProblemResponse(error.status_code, str(error.detail), code, close)

    @app.exception_handler(StoreFault)
    async def store_fault(request: Request, fault: StoreFault) -> Response:
        log.error("store fault on %s: %s", request.url.path, fault)
        return store_unavailable()

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        frames = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
        log.error("unexpected %s on %s\n%s", type(error).__name__, request.url.path, frames)
        return internal_error()
