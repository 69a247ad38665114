"""The sandbox's development signing key: an ES384 (P-384) key pair made on first use.

The sandbox page signs every call to the service with it, so the service's real JWT checks run
in development too. The key lives under ``.data/sandbox/`` (gitignored) and never enters git;
the service trusts it through a trusted-issuers file holding only the PUBLIC key.
Development only: the page is handed the private key, so anyone who can load the page can sign.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / ".data" / "sandbox"
DEFAULT_ISSUER = "http://127.0.0.1:8081/sandbox"
PRIVATE_KEY_FILE = "dev-signing-key.jwk.json"
ISSUERS_FILE = "trusted-issuers.json"
TOKEN_LIFETIME_SECONDS = 300


@dataclass(frozen=True)
class DevKey:
    issuer: str
    private_jwk: dict[str, Any]  # with "d": for signing, handed only to the local sandbox page
    issuers_file: Path

    @property
    def kid(self) -> str:
        return self.private_jwk["kid"]

    @property
    def public_jwk(self) -> dict[str, Any]:
        return {k: v for k, v in self.private_jwk.items() if k != "d"}

    def sign(self, audience: str, now: float | None = None) -> str:
        """A JWT shaped like a CDS Client's: iss, aud (the exact URL called), iat, exp, jti."""
        iat = int(time.time() if now is None else now)
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "iat": iat,
            "exp": iat + TOKEN_LIFETIME_SECONDS,
            "jti": str(uuid.uuid4()),
        }
        key = ECAlgorithm.from_jwk(json.dumps(self.private_jwk))
        return jwt.encode(claims, key, algorithm="ES384", headers={"kid": self.kid, "typ": "JWT"})


def ensure_dev_key(directory: Path = DEFAULT_DIR, issuer: str = DEFAULT_ISSUER) -> DevKey:
    """Load the key pair (creating it the first time) and (re)write the trusted-issuers file."""
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / PRIVATE_KEY_FILE
    if not key_path.exists():
        private = ec.generate_private_key(ec.SECP384R1())
        jwk = {**ECAlgorithm.to_jwk(private, as_dict=True), "kid": str(uuid.uuid4()),
               "alg": "ES384", "use": "sig"}
        _write_private(key_path, json.dumps(jwk, indent=2))
    private_jwk = json.loads(key_path.read_text(encoding="utf-8"))
    key = DevKey(issuer, private_jwk, directory / ISSUERS_FILE)
    document = {"issuers": [{"iss": issuer, "jwks": {"keys": [key.public_jwk]}}]}
    key.issuers_file.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return key


def _write_private(path: Path, text: str) -> None:
    """Readable by the owner only, created atomically with that mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def main() -> int:
    key = ensure_dev_key()
    print(key.issuers_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
