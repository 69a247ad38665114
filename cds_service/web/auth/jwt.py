"""Verification of the JWT a CDS Client sends with every call (CDS Hooks 2.0, DESIGN §6).

Every failure raises `AuthError` with a short machine code; the HTTP layer turns it into a bare
401 and counts it by code. Tokens and claims other than `iss`/`jti` never reach messages or logs.

A token is decoded once (``_decoded``): its header and payload pick the key, then PyJWT's
algorithm verifies the signature over exactly the bytes decoded, and that payload is trusted.
Decoding it twice, as PyJWT's ``decode`` after an unverified decode did, cost more than the
RSA verification itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from cds_service.hooks.tenant import Tenant
from cds_service.web.auth.failures import AuthError
from cds_service.web.auth.issuers import ALLOWED_ALGORITHMS, SigningKey
from cds_service.web.auth.keys import KeyResolver
from cds_service.web.auth.replay import ReplayGuard

_RSA_ALGORITHMS = frozenset(a for a in ALLOWED_ALGORITHMS if a[:2] in {"RS", "PS"})
# An EC key signs with exactly one algorithm, fixed by its curve.
_EC_ALGORITHM_BY_CURVE_NAME = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")
_SEGMENT = re.compile(rb"[A-Za-z0-9_-]*={0,2}")
"""A base64url segment; trailing ``=`` accepted, as PyJWT does (some issuers pad)."""
_VERIFIERS = jwt.algorithms.get_default_algorithms()


@dataclass(frozen=True)
class Claims:
    """What the rest of the service may know about an accepted caller (safe to log)."""

    iss: str
    jti: str
    tenant: str | None
    exp: int


class JwtVerifier:
    """Checks the `Authorization` header of a CDS Hooks call (checklist JWT-1..JWT-11)."""

    def __init__(
        self,
        resolver: KeyResolver,
        replay_guard: ReplayGuard,
        *,
        leeway_seconds: int = 30,
        now: Callable[[], float] = time.time,
        check_time: bool = True,
    ) -> None:
        """`check_time=False` skips exp/iat/nbf/lifetime: only for the spec's 2015 example."""
        self._resolver = resolver
        self._replay_guard = replay_guard
        self._leeway = leeway_seconds
        self._now = now
        self._check_time = check_time

    async def verify(self, authorization_header: str | None, audience: str) -> Claims:
        """The caller's claims if the header holds a valid, fresh, unused JWT for `audience`.

        `audience` is the exact URL the client called (built from the public base URL).
        """
        token = _decoded(_bearer_token(authorization_header))
        header, unverified = token.header, token.payload
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise AuthError("algorithm")
        typ = header.get("typ", "JWT")
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise AuthError("malformed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("malformed")
        iss = unverified.get("iss")
        if not isinstance(iss, str):
            raise AuthError("claims")
        if not self._resolver.is_trusted(iss):
            raise AuthError("unknown_issuer", f"token iss {_shown(iss)}")

        jku = header.get("jku")
        if jku is not None and not isinstance(jku, str):
            raise AuthError("malformed")
        key = await self._resolver.key_for(iss, kid, jku)
        if not _algorithm_fits_key(alg, key):
            raise AuthError("algorithm")
        _verify_signature(token, key, alg)
        payload = token.payload
        if any(name not in payload for name in _REQUIRED_CLAIMS):
            raise AuthError("claims")
        claims = _claims(payload)
        if not _audience_matches(payload["aud"], audience):
            raise AuthError("audience", f"token aud {_shown(payload['aud'])}")
        if self._check_time:
            self._check_times(payload, self._resolver.issuer(iss).max_token_lifetime)
        if not await self._replay_guard.first_use(claims.jti, claims.exp + self._leeway):
            raise AuthError("replay")
        return claims

    def tenant_of(self, claims: Claims) -> Tenant:
        """The tenant of an accepted caller: its issuer's entry."""
        return self._resolver.issuer(claims.iss).tenant

    def _check_times(self, payload: dict[str, Any], max_lifetime: int) -> None:
        now = self._now()
        exp, iat = payload["exp"], payload["iat"]
        if now >= exp + self._leeway:
            raise AuthError("expired")
        if max(iat, payload.get("nbf", iat)) > now + self._leeway:
            raise AuthError("not_yet_valid")
        if not 0 <= exp - iat <= max_lifetime:
            raise AuthError("lifetime")


def _bearer_token(authorization_header: str | None) -> str:
    if authorization_header is None or not authorization_header.strip():
        raise AuthError("missing")
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthError("malformed")
    return token


@dataclass(frozen=True)
class _Token:
    header: dict[str, Any]
    payload: dict[str, Any]
    """Untrusted until ``_verify_signature`` has checked ``signature`` over ``signing_input``."""
    signing_input: bytes
    signature: bytes


def _decoded(token: str) -> _Token:
    """The three parts of a compact JWS, each decoded once. No critical or unencoded-payload
    extension is supported (RFC 7515 §4.1.11, RFC 7797): a header naming one is refused."""
    try:
        segments = token.encode("ascii").split(b".")
        if len(segments) != 3 or not all(_SEGMENT.fullmatch(segment) for segment in segments):
            raise AuthError("malformed")
        header, payload = (json.loads(_base64url(segment)) for segment in segments[:2])
        signature = _base64url(segments[2])
    except (UnicodeError, ValueError, binascii.Error):  # JSON's errors are ValueErrors
        raise AuthError("malformed") from None
    if not isinstance(header, dict) or not isinstance(payload, dict) or {"crit", "b64"} & header.keys():
        raise AuthError("malformed")
    return _Token(header, payload, segments[0] + b"." + segments[1], signature)


def _base64url(segment: bytes) -> bytes:
    unpadded = segment.rstrip(b"=")
    return base64.urlsafe_b64decode(unpadded + b"=" * (-len(unpadded) % 4))


def _algorithm_fits_key(alg: str, key: SigningKey) -> bool:
    """A key whose JWK names its ``alg`` verifies only that one; otherwise an EC key only its
    curve's ES algorithm, an RSA key only RS*/PS*."""
    if key.declared_alg is not None and key.declared_alg != alg:
        return False
    if key.key_type == "EC":
        return _EC_ALGORITHM_BY_CURVE_NAME.get(key.key.curve.name) == alg
    return key.key_type == "RSA" and alg in _RSA_ALGORITHMS


def _verify_signature(token: _Token, key: SigningKey, alg: str) -> None:
    """The signature by PyJWT's algorithm for ``alg`` (a key that fits it, see above)."""
    try:
        valid = _VERIFIERS[alg].verify(token.signing_input, key.key, token.signature)
    except (ValueError, TypeError, jwt.PyJWTError):  # a key the algorithm cannot use
        raise AuthError("algorithm") from None
    if not valid:
        raise AuthError("signature")


def _claims(payload: dict[str, Any]) -> Claims:
    jti, tenant = payload["jti"], payload.get("tenant")
    if (
        not isinstance(jti, str)
        or not jti
        or not all(_is_number(payload[name]) for name in ("exp", "iat", "nbf") if name in payload)
        or not (tenant is None or isinstance(tenant, str))
    ):
        raise AuthError("claims")
    return Claims(iss=payload["iss"], jti=jti, tenant=tenant, exp=math.ceil(payload["exp"]))


def _is_number(value: object) -> bool:
    """A JSON number; Python's JSON parser also yields NaN and Infinity, which are not times."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _shown(claim: object) -> str:
    """A claim as the log may show it: JSON, printable ASCII only, at most 200 characters."""
    return re.sub(r"[^\x21-\x7e]", "?", json.dumps(claim, ensure_ascii=True))[:200]


def _audience_matches(aud: object, audience: str) -> bool:
    """`aud` is the called URL, as a string or inside a list; a trailing slash is ignored."""
    wanted = audience.rstrip("/")
    values = aud if isinstance(aud, list) else [aud]
    return any(isinstance(value, str) and value.rstrip("/") == wanted for value in values)
