"""The JWT issuers this deployment trusts (``AIMSS_TRUSTED_ISSUERS_FILE``) and their usable keys.

Each issuer is a tenant (``hooks.tenant``). Besides its keys (``jwks``, ``jwks_url``), an entry
may name the ``jku`` key-set URLs its tokens may point to, the ``fhir_servers`` its calls may
name, a ``max_token_lifetime`` and a rollout ``mode`` (with ``users``). An entry with only
``iss`` and ``jwks``/``jwks_url`` accepts any FHIR server, ignores a token's ``jku`` and shows
cards to everyone. A bad file or key set raises ``ValueError`` so start-up stops naming the
problem.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import jwt

from cds_service.hooks.tenant import MODES, Mode, Tenant
from cds_service.store.schema import TENANT_LENGTH

# Asymmetric only: the spec forbids `none` and every HMAC algorithm.
ALLOWED_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
_EC_CURVES = frozenset({"P-256", "P-384", "P-521"})
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_MAX_TOKEN_LIFETIME = 900
"""Seconds from ``iat`` to ``exp``: Epic's CDS Hooks tokens carry exactly 15 minutes, the public
sandbox's 5. Clock skew is allowed on ``iat`` and ``exp`` themselves, not on their distance."""
_FIELDS = ("iss", "jwks", "jwks_url", "jku", "fhir_servers", "max_token_lifetime", "mode", "users")


@dataclass(frozen=True)
class TrustedIssuer:
    """A client we accept tokens from, with its keys and what its tenant entry allows."""

    iss: str
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None
    jku: tuple[str, ...] = ()
    fhir_servers: tuple[str, ...] | None = None
    max_token_lifetime: int = DEFAULT_MAX_TOKEN_LIFETIME
    mode: Mode = "active"
    users: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.iss, str) or not self.iss or len(self.iss) > TENANT_LENGTH:
            raise ValueError(f"'iss' must be a non-empty string of at most {TENANT_LENGTH} characters")
        if self.jwks is not None and self.jwks_url is not None:
            raise ValueError("give one of 'jwks' or 'jwks_url', not both")
        if self.jwks is None and self.jwks_url is None and not self.jku:
            raise ValueError("give 'jwks', 'jwks_url' or a 'jku' list")
        if self.jwks is not None and not signing_keys(self.jwks):
            raise ValueError(
                "'jwks' has no usable public signing key (EC P-256/384/521 or RSA, with a 'kid')"
            )
        for url in [self.jwks_url, *self.jku]:
            if url is not None:
                _check_key_url(url)
        for server in self.fhir_servers or ():
            _check_fhir_server(server)
        lifetime = self.max_token_lifetime
        if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not 0 < lifetime <= 86400:
            raise ValueError("'max_token_lifetime' must be whole seconds, 1 to 86400")
        if self.mode not in MODES:
            raise ValueError(f"'mode' must be one of {', '.join(MODES)}")
        if (self.mode == "users") != bool(self.users):
            raise ValueError("'users' (a non-empty list of userId values) goes with mode 'users' only")
        if not all(isinstance(user, str) and user for user in self.users):
            raise ValueError("'users' must be userId strings such as 'Practitioner/123'")

    @functools.cached_property
    def tenant(self) -> Tenant:
        servers = None if self.fhir_servers is None else frozenset(s.rstrip("/") for s in self.fhir_servers)
        return Tenant(self.iss, servers, self.mode, frozenset(self.users))


def _check_key_url(url: object) -> None:
    """Keys fetched over plain http could be swapped in transit; allow it only on loopback."""
    parts = urlsplit(url if isinstance(url, str) else "")
    schemes = {"https", "http"} if parts.hostname in _LOOPBACK_HOSTS else {"https"}
    if not parts.hostname or parts.scheme not in schemes:
        raise ValueError(
            "'jwks_url' and 'jku' must be https URLs (plain http only for localhost)"
        )


def _check_fhir_server(url: object) -> None:
    parts = urlsplit(url if isinstance(url, str) else "")
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ValueError("'fhir_servers' must be http(s) base URLs")
    if parts.username is not None or parts.password is not None:
        raise ValueError("'fhir_servers' must not carry credentials")


class SigningKey(jwt.PyJWK):
    """A key of a JWK Set that remembers the set's own ``alg`` for it: when given, the only
    algorithm the key verifies (RFC 7517 §4.4), so an RS384 key does not verify RS256."""

    def __init__(self, jwk: dict[str, Any]) -> None:
        super().__init__(jwk)
        self.declared_alg: str | None = jwk.get("alg")


def signing_keys(jwks: object) -> dict[str, SigningKey]:
    """The usable verification keys of a JWK Set, by `kid`.

    Symmetric, encryption-only, private, unsupported-curve and kid-less keys are skipped:
    none of them may verify a token we accept. Raises ValueError if `jwks` is not a JWK Set at all.
    """
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise ValueError('a JWK Set must be an object with a "keys" array')
    usable: dict[str, SigningKey] = {}
    for jwk in keys:
        if not _is_usable_jwk(jwk):
            continue
        try:
            usable[jwk["kid"]] = SigningKey(jwk)
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
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; allowed: {', '.join(_FIELDS)}")
    servers = entry.get("fhir_servers")
    return TrustedIssuer(
        iss=entry.get("iss", ""),
        jwks=entry.get("jwks"),
        jwks_url=entry.get("jwks_url"),
        jku=tuple(_strings(entry, "jku")),
        fhir_servers=None if servers is None else tuple(_strings(entry, "fhir_servers")),
        max_token_lifetime=entry.get("max_token_lifetime", DEFAULT_MAX_TOKEN_LIFETIME),
        mode=cast("Mode", entry.get("mode", "active")),
        users=tuple(_strings(entry, "users")),
    )


def _strings(entry: dict[str, Any], name: str) -> list[str]:
    value = entry.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"'{name}' must be a list of strings")
    return value
