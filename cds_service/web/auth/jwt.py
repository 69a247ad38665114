"""Verification of the JWT a CDS Client sends with every call (CDS Hooks 2.0, DESIGN §6).

Every failure raises `AuthError` with a short machine code; the HTTP layer turns it into a bare
401 and counts it by code. Tokens and claims other than `iss`/`jti` never reach messages or logs.
"""

from __future__ import annotations

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
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]


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
        token = _bearer_token(authorization_header)
        header, unverified = _unverified_parts(token)
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
        payload = _verified_payload(token, key, alg)

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


def _unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload before any check: used only to pick the key, never trusted."""
    try:
        decoded = jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthError("malformed") from None
    return decoded["header"], decoded["payload"]


def _algorithm_fits_key(alg: str, key: SigningKey) -> bool:
    """A key whose JWK names its ``alg`` verifies only that one; otherwise an EC key only its
    curve's ES algorithm, an RSA key only RS*/PS*."""
    if key.declared_alg is not None and key.declared_alg != alg:
        return False
    if key.key_type == "EC":
        return _EC_ALGORITHM_BY_CURVE_NAME.get(key.key.curve.name) == alg
    return key.key_type == "RSA" and alg in _RSA_ALGORITHMS


def _verified_payload(token: str, key: SigningKey, alg: str) -> dict[str, Any]:
    """Signature and claim presence by PyJWT; time and audience are checked by the caller."""
    try:
        return jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            options={
                "require": _REQUIRED_CLAIMS,
                "verify_aud": False,  # our own check normalises a trailing slash
                "verify_exp": False,  # our own checks use the injected clock
                "verify_iat": False,
                "verify_nbf": False,
                "verify_jti": False,  # its type is checked with the other claims
                "verify_sub": False,  # CDS Hooks 2.0 defines no `sub`; ignore it
            },
        )
    except jwt.InvalidSignatureError:
        raise AuthError("signature") from None
    except (jwt.InvalidAlgorithmError, jwt.InvalidKeyError):
        raise AuthError("algorithm") from None
    except jwt.MissingRequiredClaimError:
        raise AuthError("claims") from None
    except jwt.PyJWTError:
        raise AuthError("malformed") from None


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
