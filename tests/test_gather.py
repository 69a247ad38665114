"""gather(): prefetch first, absent keys fetched together under one deadline (respx, no network)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from cds_service.fhir.gather import FhirAccess, gather, render_template
from cds_service.hooks.protocol import HookRequest

BASE = "https://fhir.example.org/r4"
TEMPLATES = {
    "patient": "Patient/{{context.patientId}}",
    "meds": "MedicationRequest?patient={{context.patientId}}&status=active",
    "pain": "Observation?patient={{context.patientId}}&code=72514-3",
}
ABSENT = object()


def bundle(*resources: dict[str, Any], next: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next is not None:
        body["link"] = [{"relation": "next", "url": next}]
    return body


def res(type: str, id: str) -> dict[str, Any]:
    return {"resourceType": type, "id": id}


def outcome(severity: str = "error") -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": "x"}]}


def request(
    prefetch: Any = ABSENT, server: str | None = BASE, token: str | None = "tok", patient: str = "p1"
) -> HookRequest:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/abc", "patientId": patient},
    }
    if server is not None:
        body["fhirServer"] = server
    if token is not None:
        body["fhirAuthorization"] = {
            "access_token": token, "token_type": "Bearer", "expires_in": 300,
            "scope": "patient/*.read", "subject": "aimss",
        }
    if prefetch is not ABSENT:
        body["prefetch"] = prefetch
    return HookRequest.model_validate(body)


def full_prefetch() -> dict[str, Any]:
    return {
        "patient": res("Patient", "p1"),
        "meds": bundle(res("MedicationRequest", "m1")),
        "pain": bundle(res("Observation", "o1"), res("Observation", "o2")),
    }


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def access(
    http: httpx.AsyncClient, allow_open: bool = False, deadline: float = 2.0, **limits: int
) -> FhirAccess:
    return FhirAccess(http=http, allow_open=allow_open, request_timeout=1.0, deadline=deadline, max_pages=5,
                      **({"max_per_key": 1000, "max_per_call": 5000} | limits))


def serve_all(mock: respx.MockRouter, patient: str = "p1") -> dict[str, respx.Route]:
    """Answer the three templates rendered for ``patient`` on BASE."""
    return {
        "patient": mock.get(url__eq=f"{BASE}/Patient/{patient}").respond(json=res("Patient", patient)),
        "meds": mock.get(url__eq=f"{BASE}/MedicationRequest?patient={patient}&status=active")
        .respond(json=bundle(res("MedicationRequest", "m1"))),
        "pain": mock.get(url__eq=f"{BASE}/Observation?patient={patient}&code=72514-3")
        .respond(json=bundle(res("Observation", "o1"))),
    }


def ids(found: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in found]


# --- prefetch ---------------------------------------------------------------------------------

async def test_complete_prefetch_makes_no_request(mock, http):
    gathered = await gather(request(full_prefetch()), TEMPLATES, access(http))
    assert mock.calls.call_count == 0
    assert gathered.unavailable == {} and gathered.fetched == set()
    assert {k: ids(v) for k, v in gathered.resources.items()} == {
        "patient": ["p1"], "meds": ["m1"], "pain": ["o1", "o2"],
    }


async def test_null_prefetch_is_no_data_and_not_refetched(mock, http):
    routes = serve_all(mock)
    gathered = await gather(request({**full_prefetch(), "pain": None}), TEMPLATES, access(http))
    assert gathered.resources["pain"] == []
    assert "pain" not in gathered.unavailable and not routes["pain"].called
    assert mock.calls.call_count == 0


async def test_operation_outcome_prefetch_is_unavailable_and_not_fetched(mock, http):
    routes = serve_all(mock)
    gathered = await gather(request({**full_prefetch(), "meds": outcome()}), TEMPLATES, access(http))
    assert gathered.unavailable == {"meds": "prefetch_operation_outcome"}
    assert "meds" not in gathered.resources and not routes["meds"].called


async def test_bundle_with_error_outcome_entry_is_unavailable(mock, http):
    prefetch = {**full_prefetch(), "pain": bundle(res("Observation", "o1"), outcome("fatal"))}
    gathered = await gather(request(prefetch), TEMPLATES, access(http))
    assert gathered.unavailable == {"pain": "prefetch_operation_outcome"}
    assert "pain" not in gathered.resources and mock.calls.call_count == 0


async def test_paged_prefetch_is_finished_from_fhir_server(mock, http):
    page2 = f"{BASE}?_getpages=x&_page=2"
    route = mock.get(url__eq=page2).respond(json=bundle(res("Observation", "o3")))
    prefetch = {**full_prefetch(), "pain": bundle(res("Observation", "o1"), next=page2)}
    gathered = await gather(request(prefetch), TEMPLATES, access(http))
    assert ids(gathered.resources["pain"]) == ["o1", "o3"]
    assert gathered.fetched == {"pain"} and gathered.unavailable == {}
    assert route.calls.last.request.headers["Authorization"] == "Bearer tok"


async def test_paged_prefetch_next_link_to_another_origin_is_unavailable(mock, http):
    elsewhere = mock.route(host="evil.example.com").respond(json=bundle())
    prefetch = {**full_prefetch(), "pain": bundle(next="https://evil.example.com/r4?_page=2")}
    gathered = await gather(request(prefetch), TEMPLATES, access(http))
    assert gathered.unavailable == {"pain": "foreign_next_link"}
    assert "pain" not in gathered.resources and not elsewhere.called


# --- fetching absent keys ---------------------------------------------------------------------

async def test_absent_keys_are_fetched_with_rendered_template(mock, http):
    routes = serve_all(mock, patient="pat.1-x")
    prefetch = {"patient": res("Patient", "pat.1-x")}
    gathered = await gather(request(prefetch, patient="pat.1-x"), TEMPLATES, access(http))
    assert gathered.fetched == {"meds", "pain"} and gathered.unavailable == {}
    assert ids(gathered.resources["meds"]) == ["m1"] and ids(gathered.resources["pain"]) == ["o1"]
    assert not routes["patient"].called
    assert routes["pain"].calls.last.request.url.params["patient"] == "pat.1-x"


async def test_missing_keys_are_fetched_concurrently(mock, http):
    arrived = 0
    everyone_here = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal arrived
        arrived += 1
        if arrived == len(TEMPLATES):
            everyone_here.set()
        # A sequential gather never sends the second request while the first waits here.
        await asyncio.wait_for(everyone_here.wait(), timeout=1.0)
        return httpx.Response(200, json=bundle(res("Observation", str(arrived))))

    mock.route(host="fhir.example.org").mock(side_effect=answer)
    gathered = await gather(request(), TEMPLATES, access(http, deadline=3.0))
    assert gathered.unavailable == {}
    assert gathered.fetched == set(TEMPLATES) and arrived == len(TEMPLATES)


async def test_deadline_leaves_slow_key_unavailable_and_returns_the_rest(mock, http):
    routes = serve_all(mock)

    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(200, json=bundle())

    routes["pain"].mock(side_effect=never)
    deadline = 0.2
    started = time.monotonic()
    gathered = await gather(request(), TEMPLATES, access(http, deadline=deadline))
    assert time.monotonic() - started < deadline + 1
    assert gathered.unavailable == {"pain": "deadline"}
    assert "pain" not in gathered.resources
    assert ids(gathered.resources["patient"]) == ["p1"] and ids(gathered.resources["meds"]) == ["m1"]
    assert gathered.fetched == {"patient", "meds"}


async def test_failed_fetch_makes_only_that_key_unavailable(mock, http):
    routes = serve_all(mock)
    routes["meds"].respond(503)
    gathered = await gather(request(), TEMPLATES, access(http))
    assert gathered.unavailable == {"meds": "http_503"}
    assert set(gathered.resources) == {"patient", "pain"}


# --- when the FHIR server may be used ---------------------------------------------------------

async def test_no_fhir_server(mock, http):
    gathered = await gather(request({"patient": None}, server=None, token=None), TEMPLATES, access(http))
    assert gathered.unavailable == {"meds": "no_fhir_server", "pain": "no_fhir_server"}
    assert gathered.resources == {"patient": []} and mock.calls.call_count == 0


async def test_no_fhir_authorization(mock, http):
    gathered = await gather(request(token=None), TEMPLATES, access(http))
    assert set(gathered.unavailable.values()) == {"no_fhir_authorization"}
    assert set(gathered.unavailable) == set(TEMPLATES) and mock.calls.call_count == 0


async def test_https_with_authorization_sends_bearer(mock, http):
    routes = serve_all(mock)
    gathered = await gather(request(), TEMPLATES, access(http))
    assert gathered.unavailable == {} and gathered.fetched == set(TEMPLATES)
    for route in routes.values():
        assert route.calls.last.request.headers["Authorization"] == "Bearer tok"


async def test_plain_http_server_refused_with_token(mock, http):
    server = "http://fhir.example.org/r4"
    gathered = await gather(request(server=server), TEMPLATES, access(http))
    assert set(gathered.unavailable.values()) == {"fhir_server_not_https"}
    assert mock.calls.call_count == 0


async def test_paged_prefetch_refused_without_authorization_drops_partial_data(mock, http):
    prefetch = {**full_prefetch(), "pain": bundle(res("Observation", "o1"), next=f"{BASE}?p=2")}
    gathered = await gather(request(prefetch, token=None), TEMPLATES, access(http))
    assert gathered.unavailable == {"pain": "no_fhir_authorization"}
    assert "pain" not in gathered.resources and mock.calls.call_count == 0


async def test_allow_open_uses_plain_http_without_token(mock, http):
    server = "http://fhir.example.org/r4"
    route = mock.get(url__eq=f"{server}/Patient/p1").respond(json=res("Patient", "p1"))
    gathered = await gather(request(server=server, token=None), {"patient": TEMPLATES["patient"]},
                            access(http, allow_open=True))
    assert gathered.unavailable == {} and ids(gathered.resources["patient"]) == ["p1"]
    assert "Authorization" not in route.calls.last.request.headers


# --- templates --------------------------------------------------------------------------------

CONTEXT = {"userId": "Practitioner/abc", "patientId": "p1"}


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("Patient/{{context.patientId}}", "Patient/p1"),
        ("Patient/{{ context.patientId }}", "Patient/p1"),
        ("Practitioner/{{userPractitionerId}}", "Practitioner/abc"),
        ("MedicationRequest?patient={{context.patientId}}&requester={{userPractitionerId}}",
         "MedicationRequest?patient=p1&requester=abc"),
        ("Patient/{{userPatientId}}", None),  # the user is a Practitioner
        ("Patient/{{userPractitionerRoleId}}", None),
        ("Patient/{{patientId}}", None),  # unknown token (1.0 style without "context.")
        ("Encounter/{{context.encounterId}}", None),  # field absent from this call
        ("Observation?date=gt{{today()}}", None),  # not a 2.0 token
        ("Patient?_count=1", "Patient?_count=1"),
    ],
)
def test_render_template(template, rendered):
    assert render_template(template, CONTEXT) == rendered


def test_render_template_url_encodes_values():
    assert render_template("Patient?name={{context.patientId}}", {"patientId": "a b&c=d"}) == (
        "Patient?name=a%20b%26c%3Dd"
    )


def test_render_template_user_patient():
    assert render_template("Patient/{{userPatientId}}", {"userId": "Patient/p9"}) == "Patient/p9"


def test_context_user_id_renders_as_a_usable_reference():
    # Checklist §4.1: {{context.userId}} yields "Practitioner/abc", usable directly as a read.
    assert render_template("{{context.userId}}", CONTEXT) == "Practitioner/abc"


async def test_unresolvable_template_is_unresolved_token(mock, http):
    templates = {**TEMPLATES, "me": "Patient/{{userPatientId}}"}
    routes = serve_all(mock)
    gathered = await gather(request(), templates, access(http))
    assert gathered.unavailable == {"me": "unresolved_token"}
    assert gathered.fetched == set(TEMPLATES) and all(r.called for r in routes.values())
    assert mock.calls.call_count == len(TEMPLATES)


async def test_resources_of_another_patient_are_dropped(mock, http):
    """A server that ignores an unsupported search parameter returns every patient's data."""
    mine = {**res("Observation", "o1"), "subject": {"reference": "Patient/p1"}}
    theirs = {**res("Observation", "o2"), "subject": {"reference": "http://x.org/fhir/Patient/p2"}}
    unlinked = res("Observation", "o3")
    prefetch = {**full_prefetch(), "pain": bundle(mine, theirs, unlinked)}
    gathered = await gather(request(prefetch), TEMPLATES, access(http))
    assert ids(gathered.resources["pain"]) == ["o1", "o3"]


async def test_a_search_key_prefetched_as_a_lone_resource_is_unavailable(mock, http):
    prefetch = full_prefetch() | {"pain": res("Observation", "o1")}
    gathered = await gather(request(prefetch), TEMPLATES, access(http))
    assert gathered.unavailable == {"pain": "prefetch_not_a_bundle"}
    assert gathered.resources["patient"] == [res("Patient", "p1")], "a read is answered by the resource"


async def test_keys_over_the_resource_limits_are_unavailable_not_read_in_part(mock, http):
    many = [res("Observation", f"o{i}") for i in range(4)]
    prefetch = full_prefetch() | {"pain": bundle(*many)}
    per_key = await gather(request(prefetch), TEMPLATES, access(http, max_per_key=3))
    assert per_key.unavailable == {"pain": "too_many_resources"} and "pain" not in per_key.resources
    per_call = await gather(request(prefetch), TEMPLATES, access(http, max_per_call=5))
    assert per_call.unavailable == {"pain": "too_many_resources"}, "the largest key goes first"
    assert set(per_call.resources) == {"patient", "meds"}


async def test_a_server_the_tenant_may_not_name_is_never_contacted(mock, http):
    routes = serve_all(mock)
    gathered = await gather(request(), TEMPLATES, access(http), may_contact=False)
    assert gathered.unavailable == dict.fromkeys(TEMPLATES, "fhir_server_not_allowed")
    assert not any(route.called for route in routes.values())


# --- what an operator reads --------------------------------------------------------------------

def gather_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "cds_service.fhir.gather"]


async def test_unavailable_data_is_one_warning_with_the_kind_of_failure(mock, http, caplog):
    mock.get(url__eq=f"{BASE}/MedicationRequest?patient=p1&status=active").respond(status_code=503)
    mock.get(url__eq=f"{BASE}/Observation?patient=p1&code=72514-3").mock(side_effect=httpx.ReadTimeout)
    prefetch = {"patient": outcome()}
    with caplog.at_level(logging.DEBUG, "cds_service.fhir.gather"):
        await gather(request(prefetch), TEMPLATES, access(http))
    (record,) = gather_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "data unavailable (FHIR server https://fhir.example.org): "
        "HTTP 503 from the FHIR server [http_503]: meds; "
        "FHIR request timed out [timeout]: pain; "
        "the EHR's prefetch holds an error OperationOutcome [prefetch_operation_outcome]: patient"
    )


async def test_complete_data_logs_nothing(mock, http, caplog):
    with caplog.at_level(logging.DEBUG, "cds_service.fhir.gather"):
        await gather(request(full_prefetch()), TEMPLATES, access(http))
    assert gather_records(caplog) == []


async def test_other_patients_resources_are_counted_once_a_call_at_info(mock, http, caplog):
    theirs = {**res("Observation", "o9"), "subject": {"reference": "Patient/p2"}}
    their_med = {**res("MedicationRequest", "m9"), "subject": {"reference": "Patient/p2"}}
    prefetch = {**full_prefetch(), "pain": bundle(theirs, theirs), "meds": bundle(their_med)}
    with caplog.at_level(logging.DEBUG, "cds_service.fhir.gather"):
        await gather(request(prefetch), TEMPLATES, access(http))
    (record,) = gather_records(caplog)
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith("dropped 3 resources of other patients (keys meds, pain)")
    assert "p2" not in record.getMessage()
