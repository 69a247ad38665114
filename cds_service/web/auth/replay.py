"""The replay guard: a JWT id is accepted once (the database one is ``store.replay``)."""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from typing import Protocol

from cds_service.store import StoreFault

log = logging.getLogger("aimss_cds")


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


class FallbackReplayGuard:
    """The shared guard, or this worker's own while the store cannot record (disk full, file
    gone): hook calls keep their answers instead of a 503, a replay to the same worker is still
    refused, and only a replay to another worker during the fault would pass. Logged at ERROR."""

    def __init__(self, shared: ReplayGuard, local: ReplayGuard) -> None:
        self._shared = shared
        self._local = local

    async def first_use(self, jti: str, expires_at: int) -> bool:
        try:
            return await self._shared.first_use(jti, expires_at)
        except StoreFault as fault:
            log.error("JWT ids checked by this worker only, the store failed: %s", fault)
            return await self._local.first_use(jti, expires_at)
