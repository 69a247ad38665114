"""The sandbox page's own small server: ``python -m sandbox.web --port 8081``.

It serves the EHR-like page (``sandbox/static/``), the patient list with their orderable drafts,
the addresses of the CDS service and FHIR server, and the development signing key the page
signs its JWTs with. It holds no patient data of its own: the page asks the CDS service, which
reads the real FHIR server. Development only (it hands out a private key); binds to loopback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .devkey import DEFAULT_DIR, DEFAULT_ISSUER, ensure_dev_key
from .synthetic import sandbox_patients

STATIC = Path(__file__).resolve().parent / "static"


def utc_today() -> date:
    return datetime.now(UTC).date()


def create_app(
    cds_base_url: str,
    fhir_base_url: str,
    key_dir: Path = DEFAULT_DIR,
    issuer: str = DEFAULT_ISSUER,
    today: Callable[[], date] = utc_today,
) -> Starlette:
    key = ensure_dev_key(key_dir, issuer)
    config = {
        "cdsBaseUrl": cds_base_url.rstrip("/"),
        "fhirServer": fhir_base_url.rstrip("/"),
        "issuer": issuer,
    }

    async def index(_request):
        return FileResponse(STATIC / "index.html")

    async def config_json(_request):
        return JSONResponse(config)

    async def signing_key(_request):
        return JSONResponse(key.private_jwk, headers={"Cache-Control": "no-store"})

    async def patients(_request):
        day = today()
        return JSONResponse([
            {
                "id": p.id,
                "name": p.name,
                "story": p.story,
                "gender": p.patient_resource()["gender"],
                "birthDate": p.patient_resource()["birthDate"],
                "expected": sorted(p.expected),
                "drafts": [
                    {"id": d.id, "label": d.label, "expected": sorted(d.expected),
                     "expectedAtSign": sorted(d.expected_at_sign), "resource": d.resource(day)}
                    for d in p.drafts
                ],
            }
            for p in sandbox_patients(day)
        ])

    return Starlette(routes=[
        Route("/", index),
        Route("/config.json", config_json),
        Route("/dev-signing-key.json", signing_key),
        Route("/patients.json", patients),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.web", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--cds", default="http://127.0.0.1:8080", help="CDS service base URL")
    parser.add_argument("--fhir", default="http://127.0.0.1:8090/fhir", help="FHIR server base URL")
    args = parser.parse_args()
    app = create_app(args.cds, args.fhir)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
