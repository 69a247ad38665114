"""gather() resolves every Medication a MedicationRequest/MedicationStatement references:
inline and contained ones need nothing, included ones come with the search, the rest are read
from ``fhirServer`` (in parallel, inside the call's deadline, under the same token and origin
rules); when that is impossible the medications key is unavailable, never silently drug-less."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from cds_service.fhir.gather import gather
from tests.test_gather import BASE, access, bundle, request, res

TEMPLATES = {"meds": "MedicationRequest?patient={{context.patientId}}&status=active"}
SEARCH = f"{BASE}/MedicationRequest?patient=p1&status=active"


def order(rid: str, reference: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order",
            "subject": {"reference": "Patient/p1"}, "medicationReference": {"reference": reference}}


def kinds(found: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{r['resourceType']}/{r['id']}" for r in found)


async def test_a_medication_referenced_from_prefetch_is_read_from_the_fhir_server(mock, http):
    route = mock.get(url__eq=f"{BASE}/Medication/med1").respond(json=res("Medication", "med1"))
    gathered = await gather(request({"meds": bundle(order("m1", "Medication/med1"))}), TEMPLATES, access(http))
    assert gathered.unavailable == {}
    assert kinds(gathered.resources["meds"]) == ["Medication/med1", "MedicationRequest/m1"]
    assert route.calls.last.request.headers["Authorization"] == "Bearer tok"


async def test_included_and_contained_medications_need_no_request(mock, http):
    contained = order("m2", "#1") | {"contained": [res("Medication", "1")]}
    prefetch = {"meds": bundle(order("m1", "Medication/med1"), res("Medication", "med1"), contained)}
    gathered = await gather(request(prefetch), TEMPLATES, access(http))
    assert gathered.unavailable == {} and mock.calls.call_count == 0


async def test_a_medication_that_came_with_another_key_needs_no_request(mock, http):
    templates = TEMPLATES | {"statements": "MedicationStatement?patient={{context.patientId}}"}
    prefetch = {"meds": bundle(res("Medication", "med1")),
                "statements": bundle(order("m1", "Medication/med1") | {"resourceType": "MedicationStatement"})}
    gathered = await gather(request(prefetch), templates, access(http))
    assert gathered.unavailable == {} and mock.calls.call_count == 0


async def test_medications_of_a_fetched_search_are_read_after_it_within_the_deadline(mock, http):
    mock.get(url__eq=SEARCH).respond(json=bundle(order("m1", "Medication/med1")))
    mock.get(url__eq=f"{BASE}/Medication/med1").respond(json=res("Medication", "med1"))
    gathered = await gather(request(), TEMPLATES, access(http))
    assert gathered.unavailable == {}
    assert kinds(gathered.resources["meds"]) == ["Medication/med1", "MedicationRequest/m1"]


async def test_several_medications_are_read_concurrently(mock, http):
    arrived = 0
    everyone_here = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal arrived
        arrived += 1
        if arrived == 3:
            everyone_here.set()
        await asyncio.wait_for(everyone_here.wait(), timeout=1.0)  # a sequential read never gets here
        return httpx.Response(200, json=res("Medication", request.url.path.rsplit("/", 1)[-1]))

    mock.route(host="fhir.example.org", path__startswith="/r4/Medication/").mock(side_effect=answer)
    prefetch = {"meds": bundle(*(order(f"m{i}", f"Medication/med{i}") for i in range(3)))}
    gathered = await gather(request(prefetch), TEMPLATES, access(http))
    assert gathered.unavailable == {} and arrived == 3


async def test_a_slow_medication_read_makes_the_key_unavailable_at_the_deadline(mock, http):
    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(200, json=res("Medication", "med1"))

    mock.get(url__eq=f"{BASE}/Medication/med1").mock(side_effect=never)
    started = time.monotonic()
    gathered = await gather(request({"meds": bundle(order("m1", "Medication/med1"))}), TEMPLATES,
                            access(http, deadline=0.2))
    assert time.monotonic() - started < 1.2
    assert gathered.unavailable == {"meds": "deadline"} and "meds" not in gathered.resources


async def test_a_failed_or_missing_medication_makes_the_key_unavailable(mock, http):
    mock.get(url__eq=f"{BASE}/Medication/gone").respond(404)
    mock.get(url__eq=f"{BASE}/Medication/broken").respond(503)
    for reference, reason in (("Medication/gone", "reference_not_found"), ("Medication/broken", "http_503")):
        gathered = await gather(request({"meds": bundle(order("m1", reference))}), TEMPLATES, access(http))
        assert gathered.unavailable == {"meds": reason}


async def test_without_a_usable_fhir_server_a_referenced_medication_is_unavailable(mock, http):
    prefetch = {"meds": bundle(order("m1", "Medication/med1"))}
    for kwargs, reason in (({"server": None, "token": None}, "no_fhir_server"),
                           ({"token": None}, "no_fhir_authorization")):
        gathered = await gather(request(prefetch, **kwargs), TEMPLATES, access(http))
        assert gathered.unavailable == {"meds": reason}
    assert mock.calls.call_count == 0


async def test_the_token_never_goes_to_a_medication_on_another_origin(mock, http):
    elsewhere = "https://other.example.org/fhir/Medication/med1"
    route = mock.get(url__eq=elsewhere).respond(json=res("Medication", "med1"))
    gathered = await gather(request({"meds": bundle(order("m1", elsewhere))}), TEMPLATES, access(http))
    assert gathered.unavailable == {"meds": "foreign_reference"} and not route.called


async def test_an_absolute_reference_on_the_fhir_server_is_read(mock, http):
    route = mock.get(url__eq=f"{BASE}/Medication/med1").respond(json=res("Medication", "med1"))
    gathered = await gather(request({"meds": bundle(order("m1", f"{BASE}/Medication/med1"))}), TEMPLATES,
                            access(http))
    assert gathered.unavailable == {} and route.called
