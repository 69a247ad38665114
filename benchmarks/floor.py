"""The floors the service is measured against (DESIGN §7), served like the service (uvicorn, the
same workers) and answering one fixed card:

- ``app`` at ``/parse/cds-services/{id}``, floor (a): a bare FastAPI endpoint that parses the
  hook request with the service's own wire model, doing nothing else;
- ``app`` at ``/cds-services/{id}``, floor (b): the same, plus verifying the caller's JWT
  (signature by the key its ``kid`` names, ``aud`` the URL called, ``exp``, the claims CDS Hooks
  requires) as a FastAPI dependency; no replay guard, so a token may be sent again;
- ``raw_app``, floor (c): a raw ASGI endpoint that decodes the body with orjson (the fastest
  decoder, the service's) and reads every resource of the prefetch once: the practical limit of
  reading the data in Python.

Floors (a) and (b) decode the body as bare FastAPI does, with the standard library's ``json``.

Floor (b) reads its keys from the JWK Set file named by ``AIMSS_BENCH_FLOOR_JWKS`` and takes the
audience from the address it listens on. Each floor freezes what start-up built (``gc.freeze``),
as the service does, so full collections do not walk it.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import jwt
import orjson
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from cds_service.hooks.protocol import HookRequest

CARD = {
    "uuid": "00000000-0000-4000-8000-000000000000",
    "summary": "Offer a supervised exercise program for aromatase-inhibitor joint pain",
    "indicator": "info",
    "detail": "A fixed card of the usual size: the floor reads no data and applies no rule.",
    "source": {"label": "AIMSS CDS benchmark floor"},
}
CARDS = json.dumps({"cards": [CARD]}).encode()
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]


def _keys() -> dict[str, jwt.PyJWK]:
    path = os.environ.get("AIMSS_BENCH_FLOOR_JWKS")
    if not path:
        return {}
    return {jwk["kid"]: jwt.PyJWK(jwk) for jwk in json.loads(Path(path).read_text())["keys"]}


@asynccontextmanager
async def _frozen(_: FastAPI) -> AsyncIterator[None]:
    gc.freeze()
    yield


app = FastAPI(lifespan=_frozen)
KEYS = _keys()


def verify_jwt(request: Request) -> None:
    """Floor (b)'s JWT check: what a bare endpoint must do with the same token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        key = KEYS[jwt.get_unverified_header(token)["kid"]]
        jwt.decode(
            token, key.key, algorithms=[key.algorithm_name], audience=str(request.url),
            options={"require": REQUIRED_CLAIMS},
        )
    except (KeyError, jwt.PyJWTError):
        raise HTTPException(401) from None
    if scheme.lower() != "bearer":
        raise HTTPException(401)


@app.post("/parse/cds-services/{service_id}")
async def parse_only(service_id: str, request: HookRequest) -> JSONResponse:
    return JSONResponse({"cards": [CARD]})


@app.post("/cds-services/{service_id}")
async def parse_and_verify(
    service_id: str, request: HookRequest, _: Annotated[None, Depends(verify_jwt)]
) -> JSONResponse:
    return JSONResponse({"cards": [CARD]})


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Floor (c): every POST is a hook call; any GET answers 200 (readiness)."""
    if scope["type"] == "lifespan":
        while True:
            if (await receive())["type"] == "lifespan.startup":
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    if scope["method"] == "POST":
        _read_every_resource(orjson.loads(b"".join(chunks)))
    await send({
        "type": "http.response.start", "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(CARDS)).encode())],
    })
    await send({"type": "http.response.body", "body": CARDS})


def _read_every_resource(request: dict[str, Any]) -> int:
    """Touch each prefetched resource once (its type), as any reader of the chart must."""
    read = 0
    for value in (request.get("prefetch") or {}).values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") != "Bundle":
            read += value.get("resourceType") is not None
            continue
        for entry in value.get("entry") or ():
            read += entry.get("resource", {}).get("resourceType") is not None
    return read
