"""Public keys of the trusted issuers: inline, or fetched from a configured URL and cached.

A configured URL is the issuer's ``jwks_url``, or one of its ``jku`` URLs when a token's ``jku``
header names it (Epic publishes its keys so). A token never makes the service fetch a URL that
is not in the issuers file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from cds_service.web.auth.failures import AuthError
from cds_service.web.auth.issuers import SigningKey, TrustedIssuer, signing_keys

logger = logging.getLogger(__name__)


@dataclass
class _RemoteKeySet:
    """The cached keys of one issuer's JWKS URL and when we last asked for them."""

    url: str
    keys: dict[str, SigningKey] = field(default_factory=dict)
    fetched_at: float | None = None
    attempted_at: float | None = None
    last_fetch_failed: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class KeyResolver:
    """Finds the public key for `(iss, kid, jku)` among the configured issuers' key sets.

    A token's `jku` header is followed only to a URL listed for its issuer; for an issuer with
    no `jku` list it is ignored and the configured keys decide. A token cannot point us at an
    attacker's keys or make us call arbitrary URLs.
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
        if http is None and any(issuer.jwks_url or issuer.jku for issuer in issuers):
            raise ValueError("issuers with a jwks_url or jku need an HTTP client")
        self._http = http
        self._cache_ttl = cache_ttl_seconds
        self._min_refetch_interval = min_refetch_interval_seconds
        self._fetch_timeout = fetch_timeout_seconds
        self._now = now
        self._static: dict[str, dict[str, SigningKey]] = {
            i.iss: signing_keys(i.jwks) for i in issuers if i.jwks is not None
        }
        self._remote: dict[str, _RemoteKeySet] = {
            i.iss: _RemoteKeySet(i.jwks_url) for i in issuers if i.jwks_url is not None
        }
        self._jku: dict[str, dict[str, _RemoteKeySet]] = {
            i.iss: {url: _RemoteKeySet(url) for url in i.jku} for i in issuers if i.jku
        }
        self._issuers = {i.iss: i for i in issuers}

    def is_trusted(self, iss: str) -> bool:
        return iss in self._issuers

    def issuer(self, iss: str) -> TrustedIssuer:
        return self._issuers[iss]

    async def key_for(self, iss: str, kid: str, jku: str | None = None) -> SigningKey:
        """The key, or AuthError: unknown_issuer, jku, unknown_kid or jwks_unavailable."""
        if iss in self._jku and (jku is not None or not self._has_configured_keys(iss)):
            remote = self._jku[iss].get(jku or "")
            if remote is None:
                raise AuthError("jku")
            return await self._remote_key(iss, remote, kid)
        if iss in self._static:
            key = self._static[iss].get(kid)
            if key is None:
                raise AuthError("unknown_kid")
            return key
        remote = self._remote.get(iss)
        if remote is None:
            raise AuthError("unknown_issuer")
        return await self._remote_key(iss, remote, kid)

    def _has_configured_keys(self, iss: str) -> bool:
        return iss in self._static or iss in self._remote

    async def _remote_key(self, iss: str, remote: _RemoteKeySet, kid: str) -> SigningKey:
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
            keys = signing_keys(response.json())
        except (httpx.HTTPError, ValueError) as error:
            remote.last_fetch_failed = True
            logger.warning(
                "JWKS fetch for issuer %s from %s failed: %s", iss, remote.url, type(error).__name__
            )
            return
        remote.keys, remote.fetched_at, remote.last_fetch_failed = keys, remote.attempted_at, False
