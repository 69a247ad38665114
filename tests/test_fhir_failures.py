"""The kind of a failed FHIR request, from real sockets on this machine: a refused connection,
a name that does not resolve, TLS to a server that speaks plain HTTP, a server that accepts and
never answers, one that closes mid-answer. Each reads differently in the log."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from cds_service.fhir.client import FhirClient, FhirError
from cds_service.fhir.failures import WORDS, words
from tests.conftest import _free_port


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, int]]:
    """A TCP socket on a free port that accepts connections; the test says what it answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server, server.getsockname()[1]


async def reason(http: httpx.AsyncClient, base: str, timeout: float = 2.0) -> str:
    fhir = FhirClient(http, base, "tok", timeout=timeout, max_pages=2)
    with pytest.raises(FhirError) as raised:
        await fhir.fetch("Observation?patient=p1")
    return raised.value.reason


def answer_with(server: socket.socket, reply: bytes) -> threading.Thread:
    def run() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(reply)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def test_nothing_listening_is_refused(http):
    assert await reason(http, f"http://127.0.0.1:{_free_port()}/fhir") == "refused"
    assert words("refused") == "connection refused by the FHIR server"


async def test_a_name_that_does_not_resolve_is_dns(http):
    assert await reason(http, "https://fhir.does-not-exist.invalid/r4") == "dns"


async def test_tls_to_a_plain_http_server_is_tls(http, listener):
    server, port = listener
    answer_with(server, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    assert await reason(http, f"https://127.0.0.1:{port}/fhir") == "tls"


async def test_a_server_that_never_answers_is_a_timeout(http, listener):
    _, port = listener  # accepted by the kernel's backlog, never read
    assert await reason(http, f"http://127.0.0.1:{port}/fhir", timeout=0.3) == "timeout"


async def test_a_server_that_closes_mid_answer_lost_the_connection(http, listener):
    server, port = listener
    answer_with(server, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{")
    assert await reason(http, f"http://127.0.0.1:{port}/fhir") == "connection_lost"


def test_every_kind_reads_differently():
    network = ["dns", "refused", "tls", "timeout", "connection_lost", "unreachable"]
    assert len({words(kind) for kind in network}) == len(network)
    assert "DNS" in words("dns") and "DNS" not in words("refused")
    assert words("http_503") == "HTTP 503 from the FHIR server"
    assert all(text and "\n" not in text for text in WORDS.values())


def test_every_reason_the_fhir_client_gives_has_words():
    import re
    from pathlib import Path

    import cds_service.fhir.client as client_module

    source = Path(client_module.__file__).read_text()
    reasons = set(re.findall(r'FhirError\("([a-z_0-9]+)"\)', source))
    assert reasons and reasons <= set(WORDS), reasons - set(WORDS)
