"""Error answers of the HTTP edge: an OperationOutcome for every non-2xx, except the bare 401."""

from __future__ import annotations

import logging
import traceback

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cds_service.hooks.protocol import describe_validation_errors, operation_outcome

log = logging.getLogger("aimss_cds")

INTERNAL_ERROR = "Internal error; see the service log"


class ProblemResponse(JSONResponse):
    """A non-2xx answer with an OperationOutcome body."""

    def __init__(self, status_code: int, diagnostics: str, code: str = "invalid") -> None:
        super().__init__(operation_outcome(diagnostics, code), status_code=status_code)


class Unauthorized(Exception):
    """Any JWT failure: answered with a bare 401, the reason only in the server log."""


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
        code = {404: "not-found", 405: "not-supported"}.get(error.status_code, "processing")
        return ProblemResponse(error.status_code, str(error.detail), code)

    @app.exception_handler(Unauthorized)
    async def unauthorized(_: Request, __: Unauthorized) -> Response:
        return Response(status_code=401)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        frames = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
        log.error("unexpected %s on %s\n%s", type(error).__name__, request.url.path, frames)
        return internal_error()
