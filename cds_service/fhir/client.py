"""Async reads from the CDS client's FHIR server, bounded in time, pages and bytes.

Every failure becomes a ``FhirError`` with a short reason; the caller turns it into
"this data is unknown". The access token is sent only to the ``fhirServer`` origin and is
never logged.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from cds_service.fhir.failures import network_failure
from cds_service.fhir.resources import bundle_resources, is_error_outcome, is_read, next_link

MAX_RESPONSE_BYTES = 20 * 1024 * 1024


class FhirError(Exception):
    """A FHIR read failed; ``reason`` is a short code safe to log and count (``failures``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FhirClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        access_token: str | None,
        *,
        timeout: float,
        max_pages: int,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/") + "/"
        self._origin = _origin(self._base)
        self._headers = {"Accept": "application/fhir+json, application/json"}
        if access_token:
            self._headers["Authorization"] = f"Bearer {access_token}"
        self._timeout = timeout
        self._max_pages = max_pages

    async def fetch(self, relative_url: str) -> list[dict[str, Any]]:
        """The resources a search (or a read) returns, following every ``next`` page."""
        url = urljoin(self._base, relative_url.lstrip("/"))
        return await self.follow(url, read=is_read(relative_url))

    async def read(self, reference: str) -> dict[str, Any]:
        """The resource a literal reference names, relative to the server or absolute on its
        origin: a reference elsewhere is never read, so the token never leaves ``fhirServer``."""
        url = urljoin(self._base, reference)
        if _origin(url) != self._origin:
            raise FhirError("foreign_reference")
        body = await self._get(url)
        if body is None:
            raise FhirError("reference_not_found")
        if is_error_outcome(body):
            raise FhirError("operation_outcome")
        return body

    async def follow(self, url: str, *, read: bool = False) -> list[dict[str, Any]]:
        """Resources from ``url`` and its ``next`` links (also used to finish a paged prefetch).

        A search is answered by a Bundle even when nothing matches: a 404 or any other answer
        says nothing about the patient's data, so it is an error ("unavailable"), never "no
        data". Only a ``read`` answers with the resource itself."""
        resources: list[dict[str, Any]] = []
        visited: set[str] = set()
        current: str | None = url
        while current is not None:
            if current in visited:
                raise FhirError("paging_loop")
            if len(visited) == self._max_pages:
                raise FhirError("page_limit")
            if _origin(current) != self._origin:
                raise FhirError("foreign_next_link")
            visited.add(current)
            body = await self._get(current)
            if body is None:
                raise FhirError("http_404")
            if body.get("resourceType") != "Bundle":
                if is_error_outcome(body):
                    raise FhirError("operation_outcome")
                if read and len(visited) == 1:
                    return [body]
                raise FhirError("not_a_bundle")
            for resource in bundle_resources(body):
                if is_error_outcome(resource):
                    raise FhirError("operation_outcome")
                if resource.get("resourceType") != "OperationOutcome":
                    resources.append(dict(resource))
            current = next_link(body)
        return resources

    async def _get(self, url: str) -> dict[str, Any] | None:
        try:
            async with self._http.stream(
                "GET", url, headers=self._headers, timeout=self._timeout
            ) as response:
                if response.status_code == 404:
                    return None
                if response.status_code in (401, 403):
                    raise FhirError("unauthorized")
                if response.status_code >= 400:
                    raise FhirError(f"http_{response.status_code}")
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise FhirError("too_large")
        except httpx.HTTPError as error:
            raise FhirError(network_failure(error)) from error
        try:
            body = json.loads(raw)
        except ValueError as error:
            raise FhirError("malformed") from error
        if not isinstance(body, dict):
            raise FhirError("malformed")
        return body


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()
