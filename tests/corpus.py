"""The real-world test corpus in ``tests/corpus/``: each case holds the same clinical facts twice,
in the plain shape of the synthetic charts and in the shape a named public source gives them
(PROVENANCE.md), for metamorphic tests: both shapes must give the same cards."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cds_service.fhir.resources import patient_of

CORPUS = Path(__file__).resolve().parent / "corpus"
SHAPES = ("plain", "real")

Resource = dict[str, Any]


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    source: str
    expected: frozenset[str]
    modes: tuple[str, ...]
    shapes: dict[str, tuple[Resource, ...]]

    def patient(self, shape: str) -> str:
        """The one patient every resource of the shape belongs to."""
        (patient,) = {p for r in self.shapes[shape] if (p := patient_of(r))}
        return patient

    def transaction(self, shape: str) -> Resource:
        """A transaction Bundle that PUTs the shape's patient and resources (contained ones stay inside)."""
        patient = {"resourceType": "Patient", "id": self.patient(shape), "gender": "female",
                   "birthDate": "1958-04-12"}
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                for r in (patient, *self.shapes[shape])
            ],
        }


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(CORPUS.glob("*.json")):
        doc = json.loads(path.read_text())
        cases.append(Case(
            name=path.stem,
            title=doc["title"],
            source=doc["source"],
            expected=frozenset(doc["expected"]),
            modes=tuple(doc["modes"]),
            shapes={shape: tuple(doc[shape]) for shape in SHAPES},
        ))
    return cases


def without_included(prefetch: dict[str, Any]) -> dict[str, Any]:
    """The prefetch an EHR sends when it ignores ``_include``: search matches only, so every
    referenced Medication must be read from the FHIR server."""
    stripped = {}
    for key, bundle in prefetch.items():
        if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle":
            entries = [e for e in bundle.get("entry", []) if (e.get("search") or {}).get("mode") != "include"]
            bundle = {**bundle, "entry": entries}
        stripped[key] = bundle
    return stripped
