"""Collect the data a hook needs: prefetch first, every missing key fetched at once, with the
Medications its orders reference when they did not come with them.

Per key the result is resources or "unavailable" with a reason. ``null`` in prefetch is "no
data"; an OperationOutcome, anything but a Bundle (every key is a search), a failed fetch or
the deadline make the key unavailable, never empty. So does a key over the deployment's
resource limits: a chart too big to read within the deadline is refused, not read in part.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote, urlsplit

import httpx

from cds_service.fhir.client import FhirClient, FhirError
from cds_service.fhir.failures import words
from cds_service.fhir.resources import (
    bundle_resources,
    is_error_outcome,
    is_read,
    next_link,
    patient_of,
    unresolved_medications,
)
from cds_service.hooks.protocol import HookRequest

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


@dataclass(frozen=True)
class FhirAccess:
    """How this deployment may call a client's FHIR server."""

    http: httpx.AsyncClient
    allow_open: bool
    request_timeout: float
    deadline: float
    max_pages: int
    max_per_key: int
    max_per_call: int


@dataclass
class Gathered:
    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    fetched: set[str] = field(default_factory=set)


def render_template(template: str, context: Mapping[str, Any]) -> str | None:
    """Fill CDS Hooks 2.0 prefetch tokens; ``None`` when a token has no value in this call."""
    user_type, _, user_id = str(context.get("userId", "")).partition("/")
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name.startswith("context."):
            found = context.get(name.removeprefix("context."))
        elif name in _USER_TOKENS:
            found = user_id if _USER_TOKENS[name] == user_type else None
        else:
            found = None
        if not isinstance(found, str | int) or found == "":
            missing = True
            return ""
        return quote(str(found), safe="/")  # context.userId is a "Type/id" reference

    rendered = _TOKEN.sub(value, template)
    return None if missing else rendered


async def gather(
    request: HookRequest,
    templates: Mapping[str, str],
    access: FhirAccess,
    *,
    may_contact: bool = True,
) -> Gathered:
    """``may_contact``: whether the call's tenant may make us contact its ``fhirServer``."""
    gathered = Gathered()
    prefetch = request.prefetch or {}
    to_fetch: dict[str, str] = {}
    to_continue: dict[str, str] = {}
    for key, template in templates.items():
        if key not in prefetch:
            rendered = render_template(template, request.context)
            if rendered is None:
                gathered.unavailable[key] = "unresolved_token"
            else:
                to_fetch[key] = rendered
            continue
        value = prefetch[key]
        if value is None:
            gathered.resources[key] = []
        elif is_error_outcome(value):
            gathered.unavailable[key] = "prefetch_operation_outcome"
        elif value.get("resourceType") == "Bundle":
            listed = value.get("entry")
            if isinstance(listed, list) and len(listed) > access.max_per_key:
                gathered.unavailable[key] = "too_many_resources"
                continue
            resources = _bundled(value)
            if resources is None:
                gathered.unavailable[key] = "prefetch_operation_outcome"
                continue
            gathered.resources[key] = resources
            if (more := next_link(value)) is not None:
                to_continue[key] = more
        elif is_read(template):
            gathered.resources[key] = [value]
        else:
            gathered.unavailable[key] = "prefetch_not_a_bundle"
    known = _medications(gathered)
    to_resolve = {
        key: missing
        for key, found in gathered.resources.items()
        if key not in to_continue and (missing := unresolved_medications([*found, *known]))
    }
    if to_fetch or to_continue or to_resolve:
        refusal = None if may_contact else "fhir_server_not_allowed"
        await _fetch_missing(request, to_fetch, to_continue, to_resolve, access, gathered, refusal)
    _drop_other_patients(gathered, request.context.get("patientId"))
    _within_limits(gathered, access)
    if gathered.unavailable:
        _log_unavailable(gathered.unavailable, request.fhirServer)
    return gathered


def _bundled(bundle: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """A prefetched Bundle's resources, read in one pass and not copied (nothing edits them),
    without its informational OperationOutcomes; ``None`` if one of them reports a failure."""
    resources = []
    for resource in bundle_resources(bundle):
        if resource.get("resourceType") == "OperationOutcome":
            if is_error_outcome(resource):
                return None
            continue
        resources.append(resource)
    return cast("list[dict[str, Any]]", resources)  # parsed JSON objects are dicts


def _within_limits(gathered: Gathered, access: FhirAccess) -> None:
    """Keys over ``max_per_key``, then the largest keys until the call is within
    ``max_per_call``, become unavailable: reading them would stall the worker."""
    sizes = {key: len(found) for key, found in gathered.resources.items()}
    over = {key for key, size in sizes.items() if size > access.max_per_key}
    total = sum(size for key, size in sizes.items() if key not in over)
    for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if key not in over and total > access.max_per_call:
            over.add(key)
            total -= sizes[key]
    for key in over:
        log.warning("key %s has %d resources: over the limits, not read", key, sizes[key])
        del gathered.resources[key]
        gathered.unavailable[key] = "too_many_resources"


def _log_unavailable(unavailable: Mapping[str, str], fhir_server: str | None) -> None:
    """One WARNING a call, keys grouped by why, the FHIR server by its origin only."""
    by_reason: dict[str, list[str]] = {}
    for key, reason in sorted(unavailable.items()):
        by_reason.setdefault(reason, []).append(key)
    parts = urlsplit(fhir_server or "")
    server = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "-"
    log.warning(
        "data unavailable (FHIR server %s): %s",
        server,
        "; ".join(f"{words(reason)} [{reason}]: {', '.join(keys)}" for reason, keys in by_reason.items()),
    )


def _drop_other_patients(gathered: Gathered, patient_id: Any) -> None:
    """Keep only resources of this call's patient.

    A server that ignores a search parameter it does not support (sekmet-fhir does so for
    ``QuestionnaireResponse?patient=``, with only a warning) returns every patient's resources;
    without this check another patient's scores would appear on this patient's cards. Logged
    once a call at INFO: such a server does it on every call.
    """
    if not isinstance(patient_id, str):
        return
    dropped: dict[str, int] = {}
    for key, found in gathered.resources.items():
        kept = [r for r in found if patient_of(r) in (None, patient_id)]
        if len(kept) != len(found):
            dropped[key] = len(found) - len(kept)
            gathered.resources[key] = kept
    if dropped:
        log.info(
            "dropped %d resources of other patients (keys %s): the FHIR server may ignore the "
            "patient search parameter",
            sum(dropped.values()),
            ", ".join(sorted(dropped)),
        )


async def _fetch_missing(
    request: HookRequest,
    to_fetch: Mapping[str, str],
    to_continue: Mapping[str, str],
    to_resolve: Mapping[str, Mapping[str, str]],
    access: FhirAccess,
    gathered: Gathered,
    refusal: str | None,
) -> None:
    """Every absent key, the rest of every paged one and the Medications they reference, all
    at once under one deadline; none when ``refusal`` (the tenant may not name the server)."""
    keys = [*to_fetch, *to_continue, *to_resolve]
    refusal = refusal or _refusal(request, access)
    if refusal is not None:
        for key in keys:
            gathered.unavailable[key] = refusal
            gathered.resources.pop(key, None)
        return
    assert request.fhirServer is not None
    token = request.fhirAuthorization.access_token if request.fhirAuthorization else None
    client = FhirClient(
        access.http, request.fhirServer, token,
        timeout=access.request_timeout, max_pages=access.max_pages,
    )
    known = _medications(gathered)

    async def with_medications(
        key: str, found: Awaitable[list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """The key's resources, then the Medications they reference that did not come with them."""
        rows = await found
        missing = unresolved_medications([*gathered.resources.get(key, []), *rows, *known])
        return rows + await _read_all(client, missing.values())

    jobs = {
        key: asyncio.ensure_future(with_medications(key, client.fetch(url)))
        for key, url in to_fetch.items()
    }
    jobs |= {
        key: asyncio.ensure_future(with_medications(key, client.follow(url)))
        for key, url in to_continue.items()
    }
    jobs |= {
        key: asyncio.ensure_future(_read_all(client, missing.values()))
        for key, missing in to_resolve.items()
    }
    _done, pending = await asyncio.wait(jobs.values(), timeout=access.deadline)
    for job in pending:
        job.cancel()
    for key, job in jobs.items():
        if job in pending:
            reason = "deadline"
        elif isinstance(error := _cause(job.exception()), FhirError):
            reason = error.reason
        elif error is not None:
            log.error("FHIR fetch of prefetch key %s failed: %s", key, type(error).__name__)
            reason = "error"
        else:
            gathered.fetched.add(key)
            gathered.resources[key] = gathered.resources.get(key, []) + job.result()
            continue
        gathered.unavailable[key] = reason
        gathered.resources.pop(key, None)
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


def _medications(gathered: Gathered) -> list[dict[str, Any]]:
    """The Medications prefetch brought under any key: an order may point at one that came
    with another key's search, and the facts find it there."""
    return [
        resource
        for found in gathered.resources.values()
        for resource in found
        if resource.get("resourceType") == "Medication"
    ]


async def _read_all(client: FhirClient, references: Iterable[str]) -> list[dict[str, Any]]:
    """Each referenced resource, read in parallel; one that cannot be read fails them all (the
    others are cancelled), because a drug that cannot be named is unknown, not absent."""
    async with asyncio.TaskGroup() as group:
        reads = [group.create_task(client.read(reference)) for reference in references]
    return [read.result() for read in reads]


def _cause(error: BaseException | None) -> BaseException | None:
    """The first failure inside a task group's ExceptionGroup, or the error itself."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _refusal(request: HookRequest, access: FhirAccess) -> str | None:
    """Why this call's FHIR server may not be used, or ``None`` if it may."""
    if request.fhirServer is None:
        return "no_fhir_server"
    if access.allow_open:
        return None
    if request.fhirAuthorization is None:
        return "no_fhir_authorization"
    if not request.fhirServer.lower().startswith("https://"):
        return "fhir_server_not_https"
    return None
