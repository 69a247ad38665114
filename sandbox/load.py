"""Load the synthetic patients into a FHIR server: ``python -m sandbox.load [BASE_URL]``."""

from __future__ import annotations

import sys

import httpx

from .synthetic import SandboxPatient, sandbox_patients
from .web import utc_today


def load_patients(base_url: str, patients: list[SandboxPatient], client: httpx.Client) -> None:
    for patient in patients:
        response = client.post(
            base_url.rstrip("/"),
            json=patient.transaction(),
            headers={"Content-Type": "application/fhir+json"},
        )
        if response.status_code >= 300:
            raise RuntimeError(
                f"loading {patient.id} failed: HTTP {response.status_code} {response.text[:500]}"
            )


def main() -> int:
    base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8090/fhir"
    patients = sandbox_patients(utc_today())  # the service's clock is UTC too
    with httpx.Client(timeout=30) as client:
        load_patients(base_url, patients, client)
    for patient in patients:
        print(f"  {patient.id:<20} {patient.name:<20} {patient.story}")
    print(f"Loaded {len(patients)} patients into {base_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
