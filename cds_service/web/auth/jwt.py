"""Verification of the JWT a CDS Client sends with every call (CDS Hooks 2.0, DESIGN §6).

Every failure raises `AuthError` with a short machine code; the HTTP layer turns it into a bare
401 and counts it by code. Tokens and claims other than `iss`/`jti` never reach messages or logs.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx
import jwt

logger = logging.getLogger(__name__)

AuthFailure = Literal[
    "missing",  # no Authorization header
    "malformed",  # not "Bearer <JWT>", undecodable, bad typ, no kid
    "algorithm",  # alg not allowed, or not the algorithm of the selected key
    "unknown_issuer",
    "unknown_kid",
    "jwks_unavailable",  # the issuer's JWKS URL could not be fetched and the kid is not cached
    "signature",
    "claims",  # a required claim is missing or has the wrong JSON type
    "audience",
    "expired",
    "not_yet_valid",
    "lifetime",  # exp - iat above the maximum, or negative
    "replay",
]
"""The fixed set of failure codes (`typing.get_args(AuthFailure)` lists them for metrics)."""

# Asymmetric only: the spec forbids `none` and every HMAC algorithm.
ALLOWED_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
_RSA_ALGORITHMS = frozenset(a for a in ALLOWED_ALGORITHMS if a[:2] in {"RS", "PS"})
_EC_CURVES = frozenset({"P-256", "P-384", "P-521"})
# An EC key signs with exactly one algorithm, fixed by its curve.
_EC_ALGORITHM_BY_CURVE_NAME = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class AuthError(Exception):
    """The caller is not authenticated; `reason` says why, for metrics (never for the client)."""

    def __init__(self, reason: AuthFailure) -> None:
        super().__init__(reason)
        self.reason: AuthFailure = reason


@dataclass(frozen=True)
class Claims:
    """What the rest of the service may know about an accepted caller (safe to log)."""

    iss: str
    jti: str
    tenant: str | None
    exp: int


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
        if self.jwks is not None and not _signing_keys(self.jwks):
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


def _signing_keys(jwks: object) -> dict[str, jwt.PyJWK]:
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


@dataclass
class _RemoteKeySet:
    """The cached keys of one issuer's JWKS URL and when we last asked for them."""

    url: str
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float | None = None
    attempted_at: float | None = None
    last_fetch_failed: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class KeyResolver:
    """Finds the public key for `(iss, kid)` among the configured issuers' key sets.

    A token's `jku` header is never followed: keys come only from the configuration, so a
    token cannot point us at an attacker's keys or make us call arbitrary URLs.
    """

    def __init__(
        self,
        issuers: Sequence[TrustedIssuer],
        http: httpx.AsyncClient | None = None,
        *,
        cache_ttl_seconds: float = 3600.0,
        min_refetch_interval_seconds: float = 60.0,
        fetch_timeout_seconds: float = 2.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if http is None and any(issuer.jwks_url for issuer in issuers):
            raise ValueError("issuers with a jwks_url need an HTTP client")
        self._http = http
        self._cache_ttl = cache_ttl_seconds
        self._min_refetch_interval = min_refetch_interval_seconds
        self._fetch_timeout = fetch_timeout_seconds
        self._now = now
        self._static: dict[str, dict[str, jwt.PyJWK]] = {
            i.iss: _signing_keys(i.jwks) for i in issuers if i.jwks is not None
        }
        self._remote: dict[str, _RemoteKeySet] = {
            i.iss: _RemoteKeySet(i.jwks_url) for i in issuers if i.jwks_url is not None
        }

    def is_trusted(self, iss: str) -> bool:
        return iss in self._static or iss in self._remote

    async def key_for(self, iss: str, kid: str) -> jwt.PyJWK:
        """The key, or AuthError: unknown_issuer, unknown_kid or jwks_unavailable."""
        if iss in self._static:
            key = self._static[iss].get(kid)
            if key is None:
                raise AuthError("unknown_kid")
            return key
        remote = self._remote.get(iss)
        if remote is None:
            raise AuthError("unknown_issuer")
        return await self._remote_key(iss, remote, kid)

    async def _remote_key(self, iss: str, remote: _RemoteKeySet, kid: str) -> jwt.PyJWK:
        """Serve from cache; refetch when stale or for a new kid, at most once per interval.

        The rate limit stops a flood of made-up kids from hammering the issuer's URL. If a
        refetch fails, the keys we already have stay in use rather than failing every call.
        """
        if not self._has_fresh_key(remote, kid):
            async with remote.lock:  # concurrent callers wait for one fetch instead of racing
                if not self._has_fresh_key(remote, kid) and self._may_fetch(remote):
                    await self._refresh(iss, remote)
        key = remote.keys.get(kid)
        if key is None:
            raise AuthError("jwks_unavailable" if remote.last_fetch_failed else "unknown_kid")
        return key

    def _has_fresh_key(self, remote: _RemoteKeySet, kid: str) -> bool:
        fresh = remote.fetched_at is not None and self._now() - remote.fetched_at < self._cache_ttl
        return fresh and kid in remote.keys

    def _may_fetch(self, remote: _RemoteKeySet) -> bool:
        return (
            remote.attempted_at is None
            or self._now() - remote.attempted_at >= self._min_refetch_interval
        )

    async def _refresh(self, iss: str, remote: _RemoteKeySet) -> None:
        assert self._http is not None  # guaranteed by __init__ for remote issuers
        remote.attempted_at = self._now()
        try:
            response = await self._http.get(remote.url, timeout=self._fetch_timeout)
            response.raise_for_status()
            keys = _signing_keys(response.json())
        except (httpx.HTTPError, ValueError) as error:
            remote.last_fetch_failed = True
            logger.warning(
                "JWKS fetch for issuer %s from %s failed: %s", iss, remote.url, type(error).__name__
            )
            return
        remote.keys, remote.fetched_at, remote.last_fetch_failed = keys, remote.attempted_at, False


class ReplayGuard(Protocol):
    """Remembers token ids so a captured JWT cannot be played again (one store for all workers)."""

    async def first_use(self, jti: str, expires_at: int) -> bool:
        """True the first time `jti` is seen (remember it until `expires_at`), False on reuse."""
        ...


class InMemoryReplayGuard:
    """A `ReplayGuard` for a single process (tests, one worker); forgets ids once expired."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._expiry_by_jti: dict[str, int] = {}
        self._expiry_order: list[tuple[int, str]] = []

    async def first_use(self, jti: str, expires_at: int) -> bool:
        self._forget_expired()
        if jti in self._expiry_by_jti:
            return False
        self._expiry_by_jti[jti] = expires_at
        heapq.heappush(self._expiry_order, (expires_at, jti))
        return True

    def _forget_expired(self) -> None:
        now = self._now()
        while self._expiry_order and self._expiry_order[0][0] < now:
            _, jti = heapq.heappop(self._expiry_order)
            del self._expiry_by_jti[jti]


class JwtVerifier:
    """Checks the `Authorization` header of a CDS Hooks call (checklist JWT-1..JWT-11)."""

    def __init__(
        self,
        resolver: KeyResolver,
        replay_guard: ReplayGuard,
        *,
        leeway_seconds: int = 30,
        max_lifetime_seconds: int = 3600,
        now: Callable[[], float] = time.time,
        check_time: bool = True,
    ) -> None:
        """`check_time=False` skips exp/iat/nbf/lifetime: only for the spec's 2015 example."""
        self._resolver = resolver
        self._replay_guard = replay_guard
        self._leeway = leeway_seconds
        self._max_lifetime = max_lifetime_seconds
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
            raise AuthError("unknown_issuer")

        key = await self._resolver.key_for(iss, kid)
        if not _algorithm_fits_key(alg, key):
            raise AuthError("algorithm")
        payload = _verified_payload(token, key, alg)

        claims = _claims(payload)
        if not _audience_matches(payload["aud"], audience):
            raise AuthError("audience")
        if self._check_time:
            self._check_times(payload)
        if not await self._replay_guard.first_use(claims.jti, claims.exp + self._leeway):
            raise AuthError("replay")
        return claims

    def _check_times(self, payload: dict[str, Any]) -> None:
        now = self._now()
        exp, iat = payload["exp"], payload["iat"]
        if now >= exp + self._leeway:
            raise AuthError("expired")
        if max(iat, payload.get("nbf", iat)) > now + self._leeway:
            raise AuthError("not_yet_valid")
        if not 0 <= exp - iat <= self._max_lifetime:
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


def _algorithm_fits_key(alg: str, key: jwt.PyJWK) -> bool:
    """An EC key only verifies its curve's ES algorithm; an RSA key only RS*/PS*."""
    if key.key_type == "EC":
        return _EC_ALGORITHM_BY_CURVE_NAME.get(key.key.curve.name) == alg
    return key.key_type == "RSA" and alg in _RSA_ALGORITHMS


def _verified_payload(token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
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


def _audience_matches(aud: object, audience: str) -> bool:
    """`aud` is the called URL, as a string or inside a list; a trailing slash is ignored."""
    wanted = audience.rstrip("/")
    values = aud if isinstance(aud, list) else [aud]
    return any(isinstance(value, str) and value.rstrip("/") == wanted for value in values)
