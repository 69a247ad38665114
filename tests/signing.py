"""Trusted issuers with static ES384 key sets, and JWTs signed now for the test app.

Two issuers, so tests can play two tenants (two EHRs) against one service."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ISSUER = "https://ehr.test.example.org"
ISSUER_B = "https://ehr-b.test.example.org"
KEY = ec.generate_private_key(ec.SECP384R1())
KEY_B = ec.generate_private_key(ec.SECP384R1())
KEYS = {ISSUER: KEY, ISSUER_B: KEY_B}
TESTSERVER = "http://testserver"  # the base URL of starlette's TestClient


def issuer_entry(iss: str = ISSUER, **fields: Any) -> dict[str, Any]:
    """An issuers-file entry with the issuer's static key set, plus tenant ``fields``."""
    jwk = {**ECAlgorithm.to_jwk(KEYS[iss].public_key(), as_dict=True), "kid": "k1", "use": "sig"}
    return {"iss": iss, "jwks": {"keys": [jwk]}, **fields}


def write_issuers_file(folder: Path, *entries: dict[str, Any]) -> Path:
    path = folder / "issuers.json"
    path.write_text(json.dumps({"issuers": list(entries) or [issuer_entry()]}))
    return path


def token(path: str, *, iss: str = ISSUER, base: str = TESTSERVER, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": iss, "aud": base + path, "iat": now, "exp": now + 60,
               "jti": str(uuid.uuid4()), **claims}
    return jwt.encode(payload, KEYS.get(iss, KEY), algorithm="ES384", headers={"kid": "k1"})


def bearer(path: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(path, **claims)}"}
