"""Issued cards are written in batches, off the hook calls' path.

Feedback names only a card's uuid, so every card sent is recorded (``store.issued``) for a later
override to quiet its topic. Written one call at a time, that was a write transaction and a
thread hand-off per call per worker, all contending for SQLite's single writer lock with the
JWT replay checks. Batched, a worker writes at most once per ``interval`` whatever its call
rate. Nothing depends on the record being there at once: an override received first is linked
when the record arrives (``issued.link_overrides``), and this worker flushes before it stores
feedback. A killed worker loses at most one interval of records: the snooze of those cards,
never a call or a feedback item.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import date

from starlette.concurrency import run_in_threadpool

from cds_service.hooks.protocol import Card
from cds_service.store.issued import CardLedger, IssuedRow, issued_rows, recommendation_rows

log = logging.getLogger(__name__)


class CardRecorder:
    def __init__(self, ledger: CardLedger, interval: float = 0.25) -> None:
        self._ledger = ledger
        self._interval = interval
        self._pending: list[IssuedRow] = []
        self._held: list[IssuedRow] = []

    def add(
        self,
        service_id: str,
        cards: Sequence[Card],
        patient_key: str,
        issued_on: date,
        *,
        tenant: str,
        silent: bool = False,
    ) -> None:
        self._pending += issued_rows(
            service_id, cards, patient_key, issued_on, tenant=tenant, silent=silent
        )
        self._held += recommendation_rows(cards)

    async def flush(self) -> None:
        batch, held, self._pending, self._held = self._pending, self._held, [], []
        if batch:
            await run_in_threadpool(self._ledger.record_rows, batch, held)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CardRecorder]:
        """Flushes every ``interval`` while the app serves, and once more at shutdown."""

        async def every_interval() -> None:
            while True:
                await asyncio.sleep(self._interval)
                try:
                    await self.flush()
                except Exception as error:  # keep recording later batches whatever happened
                    log.error("issued cards not recorded: %s", type(error).__name__)

        task = asyncio.create_task(every_interval())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.flush()
