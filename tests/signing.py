"""A trusted issuer with a static ES384 key set, and JWTs signed now for the test app."""

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
KEY = ec.generate_private_key(ec.SECP384R1())
TESTSERVER = "http://testserver"  # the base URL of starlette's TestClient


def write_issuers_file(folder: Path) -> Path:
    jwk = {**ECAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1", "use": "sig"}
    path = folder / "issuers.json"
    path.write_text(json.dumps({"issuers": [{"iss": ISSUER, "jwks": {"keys": [jwk]}}]}))
    return path


def token(path: str, *, iss: str = ISSUER, base: str = TESTSERVER, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": iss, "aud": base + path, "iat": now, "exp": now + 60,
               "jti": str(uuid.uuid4()), **claims}
    return jwt.encode(payload, KEY, algorithm="ES384", headers={"kid": "k1"})


def bearer(path: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(path, **claims)}"}
