"""FhirClient: paging, limits, the token's origin and every failure reason (respx, no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from cds_service.fhir import client as fhir_client
from cds_service.fhir.client import FhirClient, FhirError

BASE = "https://fhir.example.org/r4"
SEARCH = f"{BASE}/Observation?patient=p1"


def page(n: int) -> str:
    return f"{BASE}?_getpages=abc&_page={n}"


def bundle(*resources: dict[str, Any], next: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next is not None:
        body["link"] = [{"relation": "self", "url": "ignored"}, {"relation": "next", "url": next}]
    return body


def obs(id: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": id}


def outcome(severity: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": "x"}]}


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def client(http: httpx.AsyncClient, token: str | None = "tok", max_pages: int = 5) -> FhirClient:
    return FhirClient(http, BASE, token, timeout=1.0, max_pages=max_pages)


def serve(mock: respx.MockRouter, url: str, **response: Any) -> respx.Route:
    return mock.get(url__eq=url).mock(return_value=httpx.Response(response.pop("status", 200), **response))


async def reason(fhir: FhirClient, url: str = "Observation?patient=p1") -> str:
    with pytest.raises(FhirError) as raised:
        await fhir.fetch(url)
    return raised.value.reason


# --- reads and paging ------------------------------------------------------------------------

async def test_search_follows_two_next_pages_in_order(mock, http):
    routes = [
        serve(mock, SEARCH, json=bundle(obs("1"), obs("2"), next=page(2))),
        serve(mock, page(2), json=bundle(obs("3"), next=page(3))),
        serve(mock, page(3), json=bundle(obs("4"))),
    ]
    found = await client(http).fetch("Observation?patient=p1")
    assert [r["id"] for r in found] == ["1", "2", "3", "4"]
    for route in routes:
        assert route.call_count == 1
        assert route.calls.last.request.headers["Authorization"] == "Bearer tok"


async def test_no_authorization_header_without_token(mock, http):
    routes = [
        serve(mock, SEARCH, json=bundle(obs("1"), next=page(2))),
        serve(mock, page(2), json=bundle(obs("2"))),
    ]
    assert len(await client(http, token=None).fetch("Observation?patient=p1")) == 2
    for route in routes:
        assert "Authorization" not in route.calls.last.request.headers


@pytest.mark.parametrize("body", [None, outcome("error")])
async def test_a_search_answered_404_is_unavailable_not_empty(mock, http, body):
    """Security review (patient safety): a server answering searches with 404 read as "no data"."""
    serve(mock, SEARCH, status=404, **({"json": body} if body else {}))
    assert await reason(client(http)) == "http_404"


async def test_a_search_answered_with_anything_but_a_bundle_is_unavailable(mock, http):
    serve(mock, SEARCH, json={"resourceType": "Patient", "id": "p1"})
    assert await reason(client(http)) == "not_a_bundle"


async def test_informational_outcome_entry_is_dropped(mock, http):
    body = bundle(obs("1"), obs("2"))
    body["entry"].insert(1, {"resource": outcome("information"), "search": {"mode": "outcome"}})
    serve(mock, SEARCH, json=body)
    assert [r["id"] for r in await client(http).fetch("Observation?patient=p1")] == ["1", "2"]


# --- failures --------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [401, 403])
async def test_unauthorized(mock, http, status):
    serve(mock, SEARCH, status=status)
    assert await reason(client(http)) == "unauthorized"


@pytest.mark.parametrize("status", [500, 503])
async def test_server_error(mock, http, status):
    serve(mock, SEARCH, status=status, json=outcome("error"))
    assert await reason(client(http)) == f"http_{status}"


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ConnectTimeout])
async def test_timeout(mock, http, error):
    mock.get(url__eq=SEARCH).mock(side_effect=error)
    assert await reason(client(http)) == "timeout"


async def test_connection_error_is_unreachable(mock, http):
    mock.get(url__eq=SEARCH).mock(side_effect=httpx.ConnectError)
    assert await reason(client(http)) == "unreachable"


@pytest.mark.parametrize("content", [b"{not json", b'[{"resourceType": "Observation"}]'])
async def test_malformed_body(mock, http, content):
    serve(mock, SEARCH, content=content)
    assert await reason(client(http)) == "malformed"


async def test_error_outcome_inside_bundle(mock, http):
    serve(mock, SEARCH, json=bundle(obs("1"), outcome("error")))
    assert await reason(client(http)) == "operation_outcome"


async def test_error_outcome_as_body(mock, http):
    serve(mock, SEARCH, json=outcome("fatal"))
    assert await reason(client(http)) == "operation_outcome"


async def test_next_link_back_to_earlier_page_is_a_loop(mock, http):
    # A second request for page one gets a 500, so an implementation that loops fails, not hangs.
    first = mock.get(url__eq=SEARCH).mock(
        side_effect=[httpx.Response(200, json=bundle(obs("1"), next=page(2))), httpx.Response(500)]
    )
    page2 = serve(mock, page(2), json=bundle(obs("2"), next=SEARCH))
    assert await reason(client(http)) == "paging_loop"
    assert first.call_count == 1 and page2.call_count == 1


async def test_more_pages_than_max_pages(mock, http):
    serve(mock, SEARCH, json=bundle(obs("1"), next=page(2)))
    serve(mock, page(2), json=bundle(obs("2"), next=page(3)))
    page3 = serve(mock, page(3), json=bundle(obs("3")))
    assert await reason(client(http, max_pages=2)) == "page_limit"
    assert not page3.called


async def test_exactly_max_pages_is_allowed(mock, http):
    serve(mock, SEARCH, json=bundle(obs("1"), next=page(2)))
    serve(mock, page(2), json=bundle(obs("2")))
    assert len(await client(http, max_pages=2).fetch("Observation?patient=p1")) == 2


@pytest.mark.parametrize(
    "foreign",
    [
        "https://evil.example.com/r4?_page=2",
        "http://fhir.example.org/r4?_page=2",  # same host, other scheme
        "https://fhir.example.org@evil.example.com/r4?_page=2",
    ],
)
async def test_next_link_to_another_origin_is_never_requested(mock, http, foreign):
    serve(mock, SEARCH, json=bundle(obs("1"), next=foreign))
    elsewhere = mock.route(host="evil.example.com").mock(return_value=httpx.Response(200))
    insecure = mock.route(scheme="http").mock(return_value=httpx.Response(200))
    assert await reason(client(http)) == "foreign_next_link"
    assert not elsewhere.called and not insecure.called
    assert mock.calls.call_count == 1


async def test_absolute_template_to_another_origin_is_refused(mock, http):
    elsewhere = mock.route(host="evil.example.com").mock(return_value=httpx.Response(200))
    assert await reason(client(http), "https://evil.example.com/Patient") == "foreign_next_link"
    assert not elsewhere.called


async def test_body_larger_than_cap(mock, http, monkeypatch):
    monkeypatch.setattr(fhir_client, "MAX_RESPONSE_BYTES", 100)
    serve(mock, SEARCH, json=bundle(*(obs(str(i)) for i in range(10))))
    assert await reason(client(http)) == "too_large"


async def test_body_under_cap_is_read(mock, http, monkeypatch):
    monkeypatch.setattr(fhir_client, "MAX_RESPONSE_BYTES", 10_000)
    serve(mock, SEARCH, json=bundle(*(obs(str(i)) for i in range(10))))
    assert len(await client(http).fetch("Observation?patient=p1")) == 10


# --- a later page must never silently replace or truncate the earlier ones -------------------

async def test_missing_later_page_is_an_error_not_the_end(mock, http):
    serve(mock, SEARCH, json=bundle(obs("1"), next=page(2)))
    serve(mock, page(2), status=404)
    with pytest.raises(FhirError):
        await client(http).fetch("Observation?patient=p1")


async def test_later_page_that_is_not_a_bundle_is_an_error(mock, http):
    serve(mock, SEARCH, json=bundle(obs("1"), obs("2"), next=page(2)))
    serve(mock, page(2), json=obs("3"))
    assert await reason(client(http)) == "not_a_bundle"
