"""The JWT issuers this deployment trusts (``AIMSS_TRUSTED_ISSUERS_FILE``) and their usable keys.

A bad file or key set raises ``ValueError`` so start-up stops naming the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

# Asymmetric only: the spec forbids `none` and every HMAC algorithm.
ALLOWED_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
_EC_CURVES = frozenset({"P-256", "P-384", "P-521"})
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class TrustedIssuer:
    """A client we accept tokens from, with its keys given inline or at a fixed URL."""

    iss: str
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.iss, str) or not self.iss:
            raise ValueError("'iss' must be a non-empty string")
        if (self.jwks is None) == (self.jwks_url is None):
            raise ValueError("give exactly one of 'jwks' or 'jwks_url'")
        if self.jwks is not None and not signing_keys(self.jwks):
            raise ValueError(
                "'jwks' has no usable public signing key (EC P-256/384/521 or RSA, with a 'kid')"
            )
        if self.jwks_url is not None:
            _check_jwks_url(self.jwks_url)


def _check_jwks_url(url: object) -> None:
    """Keys fetched over plain http could be swapped in transit; allow it only on loopback."""
    parts = urlsplit(url if isinstance(url, str) else "")
    schemes = {"https", "http"} if parts.hostname in _LOOPBACK_HOSTS else {"https"}
    if not parts.hostname or parts.scheme not in schemes:
        raise ValueError("'jwks_url' must be an https URL (plain http only for localhost)")


def signing_keys(jwks: object) -> dict[str, jwt.PyJWK]:
    """The usable verification keys of a JWK Set, by `kid`.

    Symmetric, encryption-only, private, unsupported-curve and kid-less keys are skipped:
    none of them may verify a token we accept. Raises ValueError if `jwks` is not a JWK Set at all.
    """
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise ValueError('a JWK Set must be an object with a "keys" array')
    usable: dict[str, jwt.PyJWK] = {}
    for jwk in keys:
        if not _is_usable_jwk(jwk):
            continue
        try:
            usable[jwk["kid"]] = jwt.PyJWK(jwk)
        except jwt.PyJWTError:
            continue
    return usable


def _is_usable_jwk(jwk: object) -> bool:
    if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
        return False
    if jwk.get("use", "sig") != "sig" or "d" in jwk:  # "d": private key material, a config slip
        return False
    if "alg" in jwk and jwk["alg"] not in ALLOWED_ALGORITHMS:
        return False
    return jwk.get("kty") == "RSA" or (jwk.get("kty") == "EC" and jwk.get("crv") in _EC_CURVES)


def load_trusted_issuers(path: Path) -> list[TrustedIssuer]:
    """Read the `AIMSS_TRUSTED_ISSUERS_FILE`; a bad file raises ValueError so start-up stops."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"trusted issuers file {path}: cannot read JSON: {error}") from None
    entries = document.get("issuers") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(
            f'trusted issuers file {path}: expected {{"issuers": [...]}} with at least one issuer'
        )
    issuers: list[TrustedIssuer] = []
    for index, entry in enumerate(entries):
        try:
            issuers.append(_issuer_from_json(entry))
        except ValueError as error:
            raise ValueError(f"trusted issuers file {path}: issuers[{index}]: {error}") from None
    seen: set[str] = set()
    for issuer in issuers:
        if issuer.iss in seen:
            raise ValueError(f"trusted issuers file {path}: issuer {issuer.iss!r} listed twice")
        seen.add(issuer.iss)
    return issuers


def _issuer_from_json(entry: object) -> TrustedIssuer:
    if not isinstance(entry, dict):
        raise ValueError("each issuer must be a JSON object")
    unknown = sorted(set(entry) - {"iss", "jwks", "jwks_url"})
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; allowed: iss, jwks, jwks_url")
    return TrustedIssuer(
        iss=entry.get("iss", ""), jwks=entry.get("jwks"), jwks_url=entry.get("jwks_url")
    )
