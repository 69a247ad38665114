"""Small readers for the FHIR JSON shapes the facts need: dates, codings, references.

Hooks read a handful of fields from each resource, so the facts work on plain JSON dicts
rather than validating whole Bundles into models (that costs more than the rest of a call).
Parsed JSON objects are always ``dict``: the checks say ``dict``, not the ``Mapping`` ABC, whose
``isinstance`` costs several times more and runs several times per resource.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import Any

Resource = Mapping[str, Any]


def parse_date(value: Any) -> date | None:
    """The calendar date of a FHIR date/dateTime; partial dates take their first day."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    if len(value) >= 10 and value[4] == "-" and value[7] == "-":  # a full date: the common case
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            pass
    parts = value[:10].split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else 1
        day = int(parts[2]) if len(parts) > 2 else 1
        return date(year, month, day)
    except ValueError:
        return None


def first_date(resource: Resource, *fields: str) -> date | None:
    """The first parsable date among ``fields``; ``x.start``/``x.end`` read inside Periods."""
    for name in fields:
        head, _, tail = name.partition(".")
        value = resource.get(head)
        if tail and isinstance(value, dict):
            value = value.get(tail)
        found = parse_date(value)
        if found is not None:
            return found
    return None


def codings(concept: Any) -> list[Mapping[str, Any]]:
    if isinstance(concept, dict) and isinstance(concept.get("coding"), list):
        return [c for c in concept["coding"] if isinstance(c, dict)]
    return []


def concept_text(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    text = concept.get("text")
    if isinstance(text, str):
        return text
    for coding in codings(concept):
        display = coding.get("display")
        if isinstance(display, str):
            return display
    return None


def reference_key(resource: Resource) -> str | None:
    """``Type/id`` of a resource, the form other resources use to point at it."""
    if isinstance(resource.get("resourceType"), str) and isinstance(resource.get("id"), str):
        return f"{resource['resourceType']}/{resource['id']}"
    return None


def patient_of(resource: Resource) -> str | None:
    """The id of the Patient a resource is about (``subject`` or ``patient``), if it names one."""
    for name in ("subject", "patient"):
        value = resource.get(name)
        reference = value.get("reference") if isinstance(value, dict) else None
        if isinstance(reference, str) and reference.startswith("Patient/") and reference.count("/") == 1 \
                and "?" not in reference:
            return reference[8:] or None  # the usual relative form, without parsing it
        target = reference_target(reference)
        if target is not None and target.startswith("Patient/"):
            return target.removeprefix("Patient/")
    return None


def bundle_resources(bundle: Resource) -> Iterator[Resource]:
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            yield entry["resource"]


def next_link(bundle: Resource) -> str | None:
    links = bundle.get("link")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def is_error_outcome(resource: Resource) -> bool:
    """An OperationOutcome that reports a failure (not just information or warnings)."""
    if resource.get("resourceType") != "OperationOutcome":
        return False
    issues = resource.get("issue") or []
    return not issues or any(
        isinstance(i, dict) and i.get("severity") in ("error", "fatal") for i in issues
    )


_MEDICATION_USES = ("MedicationRequest", "MedicationStatement")


def reference_target(reference: Any) -> str | None:
    """``Type/id`` of a literal reference, relative or absolute (a version suffix dropped);
    ``None`` for a contained ``#id`` or anything else."""
    if not isinstance(reference, str) or not reference or reference.startswith("#"):
        return None
    parts = reference.split("?", 1)[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-1]:
        return f"{parts[-2]}/{parts[-1]}"
    return None


def unresolved_medications(resources: Iterable[Resource]) -> dict[str, str]:
    """``Medication/id`` -> the reference as written, for every Medication a MedicationRequest
    or MedicationStatement points at that is not among ``resources`` (contained ones never are)."""
    found = list(resources)
    present = {reference_key(r) for r in found if r.get("resourceType") == "Medication"}
    missing: dict[str, str] = {}
    for resource in found:
        if resource.get("resourceType") not in _MEDICATION_USES:
            continue
        link = resource.get("medicationReference")
        reference = link.get("reference") if isinstance(link, dict) else None
        target = reference_target(reference)
        if target and target.startswith("Medication/") and target not in present:
            missing[target] = str(reference)
    return missing


_READ = re.compile(r"^/?[A-Z][A-Za-z]+/[^/?&=]+$")


def is_read(relative_url: str) -> bool:
    """``Type/id`` (or its prefetch template): a read, answered by the resource; anything else
    is a search, answered by a Bundle."""
    return _READ.match(relative_url) is not None
