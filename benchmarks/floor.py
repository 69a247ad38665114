"""The floor the service is measured against: a bare FastAPI endpoint that parses the same hook
request (the service's own wire model) and answers one fixed card, doing nothing else.

Served the same way as the service: ``uvicorn benchmarks.floor:app`` with the same workers.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from cds_service.hooks.protocol import HookRequest

CARD = {
    "uuid": "00000000-0000-4000-8000-000000000000",
    "summary": "Offer a supervised exercise program for aromatase-inhibitor joint pain",
    "indicator": "info",
    "detail": "A fixed card of the usual size: the floor reads no data and applies no rule.",
    "source": {"label": "AIMSS CDS benchmark floor"},
}

app = FastAPI()


@app.post("/cds-services/{service_id}")
async def hook(service_id: str, request: HookRequest) -> JSONResponse:
    return JSONResponse({"cards": [CARD]})
