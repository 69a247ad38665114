"""A real, misbehaving FHIR server on a free port: raw asyncio sockets in a background thread.

Raw sockets rather than an ASGI app, so it can do what frameworks refuse to: cut a body
short, never answer, stream forever. The URL chooses the fault and the resource type it hits:
``{base}/{fault}/{ResourceType}/fhir``. Other resource types get a normal answer (an active
anastrozole MedicationStatement, or an empty Bundle), so the service's other keys succeed.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

HUGE_BYTES = 25 * 1024 * 1024  # above the client's 20 MB response limit

FAULTS = (
    "slow",  # answers correctly, but after 30 s
    "silent",  # accepts the connection, reads the request, never answers
    "http_503",
    "http_401",
    "bad_json",
    "truncated",  # Content-Length promises more than is sent, then the connection closes
    "chunked_cut",  # a chunked body dropped mid-chunk
    "huge",  # a valid, 25 MB Bundle
    "endless",  # a chunked body that trickles forever
    "next_loop",  # page 1 -> page 2 -> page 1 ...
    "http_404",  # a search answered 404: says nothing about the patient's data
    "not_a_bundle",  # a search answered with a lone resource
)


def anastrozole(patient: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "id": "ms-fault-1",
        "status": "active",
        "subject": {"reference": f"Patient/{patient}"},
        "effectivePeriod": {"start": "2026-03-01"},
        "medicationCodeableConcept": {"coding": [{
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "199224",
            "display": "anastrozole 1 MG Oral Tablet",
        }]},
    }


def _bundle(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        body["link"] = [{"relation": "next", "url": next_url}]
    return body


class FaultyFhir:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0
        self.requests: list[str] = []

    def base(self, fault: str, resource_type: str) -> str:
        return f"http://127.0.0.1:{self.port}/{fault}/{resource_type}/fhir"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(5)

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode()
            self.requests.append(target)
            await self._answer(target, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, target: str, writer: asyncio.StreamWriter) -> None:
        _, fault, hit, _, rest = target.split("/", 4)
        resource_type = rest.split("?")[0].split("/")[0]
        patient = rest.partition("patient=")[2].partition("&")[0]
        if resource_type != hit:
            found = [anastrozole(patient)] if resource_type == "MedicationStatement" else []
            return await self._json(writer, 200, _bundle(found))
        if fault == "slow":
            await asyncio.sleep(30)
            await self._json(writer, 200, _bundle([]))
        elif fault == "silent":
            await asyncio.sleep(3600)
        elif fault.startswith("http_"):
            outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "x"}]}
            await self._json(writer, int(fault[5:]), outcome)
        elif fault == "bad_json":
            await self._raw(writer, 200, b'{"resourceType": "Bundle", "entry": [{"resource": ')
        elif fault == "truncated":
            writer.write(self._head(200, {"Content-Length": "100000"}) + b'{"resourceType": "Bun')
            await writer.drain()
        elif fault == "chunked_cut":
            writer.write(self._head(200, {"Transfer-Encoding": "chunked"}) + b"400\r\n{\"resou")
            await writer.drain()
        elif fault == "huge":
            await self._huge(writer)
        elif fault == "endless":
            writer.write(self._head(200, {"Transfer-Encoding": "chunked"}) + b"1\r\n[\r\n")
            while True:
                writer.write(b"2\r\n1,\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
        elif fault == "not_a_bundle":
            await self._json(writer, 200, anastrozole(patient))
        elif fault == "next_loop":
            page = rest.partition("_page=")[2] or "1"
            other = "2" if page == "1" else "1"
            url = f"http://127.0.0.1:{self.port}/{fault}/{hit}/fhir/{resource_type}?_page={other}"
            await self._json(writer, 200, _bundle([], next_url=url))
        else:
            raise AssertionError(f"unknown fault {fault}")

    @staticmethod
    def _head(status: int, headers: dict[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} X", "Content-Type: application/fhir+json", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def _raw(self, writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
        writer.write(self._head(status, {"Content-Length": str(len(body))}) + body)
        await writer.drain()

    async def _json(self, writer: asyncio.StreamWriter, status: int, body: dict[str, Any]) -> None:
        await self._raw(writer, status, json.dumps(body).encode())

    async def _huge(self, writer: asyncio.StreamWriter) -> None:
        entry = json.dumps({"resource": {"resourceType": "Observation", "id": "o", "status": "final"}})
        count = HUGE_BYTES // (len(entry) + 1)
        prefix, suffix = b'{"resourceType": "Bundle", "type": "searchset", "entry": [', b"]}"
        length = len(prefix) + count * (len(entry) + 1) - 1 + len(suffix)
        writer.write(self._head(200, {"Content-Length": str(length)}) + prefix)
        chunk = ",".join([entry] * 1000).encode()
        sent = 0
        while sent < count:
            n = min(1000, count - sent)
            writer.write((chunk if n == 1000 else ",".join([entry] * n).encode()) + (b"," if sent + n < count else b""))
            sent += n
            await writer.drain()
        writer.write(suffix)
        await writer.drain()


@contextmanager
def faulty_fhir() -> Iterator[FaultyFhir]:
    server = FaultyFhir()
    server.start()
    try:
        yield server
    finally:
        server.stop()
