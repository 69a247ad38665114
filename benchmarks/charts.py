"""Charts of any size for the scaling curve: a realistic prefetch (read from the FHIR server)
grown or shrunk to ``n`` resources with the same mix of keys and resource types, so the cost per
resource is measured on the data a real chart holds rather than on one kind of resource."""

from __future__ import annotations

import copy
from typing import Any

Prefetch = dict[str, Any]


def resource_count(prefetch: Prefetch) -> int:
    """Resources in the prefetch: every Bundle entry, and each key that is a lone resource."""
    return sum(
        len(value.get("entry") or ()) if value.get("resourceType") == "Bundle" else 1
        for value in prefetch.values()
        if isinstance(value, dict)
    )


def scaled(prefetch: Prefetch, size: int) -> Prefetch:
    """``prefetch`` with ``size`` Bundle entries in all, taken round-robin from its own entries:
    the k-th copy of an entry is the same resource under the id ``<id>-x<k>``."""
    bundles = {key: value for key, value in prefetch.items() if _is_bundle(value)}
    originals = [(key, entry) for key, bundle in bundles.items() for entry in bundle.get("entry") or ()]
    if not originals:
        raise ValueError("the prefetch has no Bundle entries to grow")
    entries: dict[str, list[dict[str, Any]]] = {key: [] for key in bundles}
    for n in range(size):
        key, entry = originals[n % len(originals)]
        entries[key].append(_copy(entry, n // len(originals)))
    grown = dict(prefetch)
    for key, bundle in bundles.items():
        grown[key] = {**bundle, "total": len(entries[key]), "entry": entries[key]}
    return grown


def _is_bundle(value: object) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "Bundle"


def _copy(entry: dict[str, Any], copy_number: int) -> dict[str, Any]:
    if copy_number == 0:
        return entry
    resource = copy.deepcopy(entry["resource"])
    old_id = resource["id"]
    resource["id"] = f"{old_id}-x{copy_number}"
    moved = {**entry, "resource": resource}
    if "fullUrl" in entry:
        moved["fullUrl"] = entry["fullUrl"].removesuffix(old_id) + resource["id"]
    return moved
