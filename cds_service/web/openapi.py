"""What the OpenAPI document says each route answers: every status, and the OperationOutcome
body of the problems (the 401 has none: its reason goes to the log only).

FastAPI documents a 422 for every route with a body or parameters; this service answers a
malformed request with 400 (``errors``), so ``without_422`` takes that answer out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel


class OperationOutcomeIssue(BaseModel):
    severity: Literal["fatal", "error", "warning", "information"]
    code: str
    diagnostics: str


class OperationOutcome(BaseModel):
    """FHIR R4 OperationOutcome, as far as this service fills it."""

    resourceType: Literal["OperationOutcome"]
    issue: list[OperationOutcomeIssue]


Responses = dict[int | str, dict[str, Any]]


def _problem(description: str) -> dict[str, Any]:
    return {"model": OperationOutcome, "description": description}


MALFORMED: Responses = {400: _problem("Malformed request: what is wrong, no value echoed")}
UNAUTHORIZED: Responses = {
    401: {"description": "JWT missing or refused. No body: the reason is in the service's log"}
}
UNKNOWN_SERVICE: Responses = {404: _problem("No CDS service with this id")}
DATA_MISSING: Responses = {
    412: _problem("Data the service needs could be had neither from prefetch nor from the "
                  "FHIR server (the keys are named; why is in the log)")
}
TOO_LARGE: Responses = {
    413: _problem("The body is larger than AIMSS_MAX_BODY_BYTES; the connection is closed")
}
BUG: Responses = {500: _problem("A bug in the service; the log has its type and stack frames")}
STORE_DOWN: Responses = {503: _problem("The shared store is unavailable; try again")}

HOOK = MALFORMED | UNAUTHORIZED | UNKNOWN_SERVICE | DATA_MISSING | TOO_LARGE | BUG | STORE_DOWN
FEEDBACK = MALFORMED | UNAUTHORIZED | UNKNOWN_SERVICE | TOO_LARGE | BUG | STORE_DOWN
DISCOVERY = UNAUTHORIZED | BUG | STORE_DOWN
READY_OK: Responses = {
    200: {"description": "Knowledge loaded, store taking writes and still the file opened"}
}
READY = READY_OK | STORE_DOWN


def without_422(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` made by FastAPI, less the 422 answers and their schemas."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = make()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
        return app.openapi_schema or make()

    return openapi
