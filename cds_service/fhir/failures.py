"""Why a prefetch key's data is unavailable: a short code (metrics, the 412 body) and the words
an operator reads in the log at 2 a.m. A refused connection must not read like a DNS failure.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import httpx

WORDS = {
    # the network, from the exception httpx raised (``network_failure``)
    "dns": "DNS lookup of the FHIR server failed",
    "refused": "connection refused by the FHIR server",
    "tls": "TLS handshake with the FHIR server failed",
    "timeout": "FHIR request timed out",
    "connection_lost": "the FHIR server closed the connection before answering in full",
    "unreachable": "FHIR server unreachable",
    # the FHIR server's answer
    "unauthorized": "FHIR server refused the access token (HTTP 401/403)",
    "http_404": "the FHIR server answered a search or a page of results with 404",
    "not_a_bundle": "the FHIR server answered a search with something other than a Bundle",
    "too_large": "FHIR answer above the size limit",
    "malformed": "FHIR answer is not FHIR JSON",
    "operation_outcome": "FHIR server answered with an error OperationOutcome",
    "paging_loop": "FHIR paging loops back to a page already read",
    "page_limit": "more pages than AIMSS_FHIR_MAX_PAGES",
    "foreign_next_link": "a next link points to another server",
    "foreign_reference": "a referenced Medication is on another server (not read)",
    "reference_not_found": "a referenced Medication is not on the FHIR server",
    # this service's own limits and rules
    "deadline": "hook deadline (AIMSS_HOOK_DEADLINE) passed",
    "error": "unexpected error (a bug; see the log line before)",
    "no_fhir_server": "no fhirServer in the request",
    "no_fhir_authorization": "no fhirAuthorization (set AIMSS_ALLOW_OPEN_FHIR=1 for development)",
    "fhir_server_not_https": "fhirServer is not https (set AIMSS_ALLOW_OPEN_FHIR=1 for development)",
    "fhir_server_not_allowed": "fhirServer is not in the fhir_servers of the caller's issuer",
    "too_many_resources": "more resources than AIMSS_MAX_RESOURCES_PER_KEY / _PER_CALL",
    # the prefetch the EHR sent
    "unresolved_token": "a prefetch token has no value in this call",
    "prefetch_operation_outcome": "the EHR's prefetch holds an error OperationOutcome",
    "prefetch_not_a_bundle": "the EHR's prefetch for a search is not a Bundle",
    "malformed_content": "the data is not valid FHIR R4",
}


def words(reason: str) -> str:
    """The operator's words for a reason code (``http_503`` -> ``HTTP 503 from the FHIR server``)."""
    if reason in WORDS:
        return WORDS[reason]
    if reason.startswith("http_"):
        return f"HTTP {reason.removeprefix('http_')} from the FHIR server"
    return reason


def network_failure(error: httpx.HTTPError) -> str:
    """The kind of a failed request, read from the exception and the OS errors that caused it."""
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if isinstance(error, httpx.DecodingError):
        return "malformed"
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror):
            return "dns"
        if isinstance(cause, ssl.SSLError):
            return "tls"
        if isinstance(cause, ConnectionRefusedError):
            return "refused"
    if isinstance(error, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "connection_lost"
    return "unreachable"


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
