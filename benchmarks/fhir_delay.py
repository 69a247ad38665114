"""A FHIR server with a network round trip: forwards every request to a real FHIR server after
a fixed delay, so a benchmark can tell parallel reads (one delay) from serial ones (a sum).

``python -m benchmarks.fhir_delay --upstream http://127.0.0.1:8090/fhir --port 8091 --delay 0.05``
serves ``http://127.0.0.1:8091/fhir``. Bundle links are rewritten to the proxy, so every page
of a paged search pays the delay too.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import httpx
import uvicorn

Scope = dict[str, Any]


class DelayedFhir:
    """A raw ASGI app: no framework between the delay and the upstream server."""

    def __init__(self, upstream: str, delay: float) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay = delay
        self.http: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await asyncio.sleep(self.delay)
        path = scope["path"].removeprefix("/fhir")
        query = scope["query_string"].decode()
        assert self.http is not None
        answer = await self.http.request(
            scope["method"], self.upstream + path + (f"?{query}" if query else ""), content=body,
            headers={"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"},
        )
        own_base = f"http://{scope['server'][0]}:{scope['server'][1]}/fhir".encode()
        content_type = answer.headers.get("content-type", "application/fhir+json").encode()
        await send({"type": "http.response.start", "status": answer.status_code,
                    "headers": [(b"content-type", content_type)]})
        await send({"type": "http.response.body",
                    "body": answer.content.replace(self.upstream.encode(), own_base)})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.http is not None:
                    await self.http.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds added to each request")
    args = parser.parse_args()
    uvicorn.run(DelayedFhir(args.upstream, args.delay), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
