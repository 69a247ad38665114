"""Issued cards are written in batches off the call's path, and none is lost at shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from cds_service.hooks.card_recorder import CardRecorder
from cds_service.store import Store
from cds_service.store.schema import issued_cards
from tests.test_store import DAY, DEV, SNOOZE, card, item

VIEW = "aimss-patient-view"


def issued(store: Store) -> set[str]:
    with store.database.fast.connect() as connection:
        return set(connection.execute(select(issued_cards.c.card_uuid)).scalars())


async def eventually_issued(store: Store, expected: set[str]) -> set[str]:
    for _ in range(100):
        if issued(store) == expected:
            break
        await asyncio.sleep(0.05)
    return issued(store)


async def test_a_batch_is_written_each_interval_and_the_last_at_shutdown(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/aimss.db")
    recorder = CardRecorder(store.cards, interval=0.05)
    async with recorder.running():
        recorder.add(VIEW, [card("u-1", "exercise"), card("u-2", "duloxetine")], "pk-a", DAY, tenant=DEV)
        recorder.add(VIEW, [card("u-3", "exercise")], "pk-b", DAY, tenant=DEV)
        assert issued(store) == set(), "nothing is written on the call's path"
        assert await eventually_issued(store, {"u-1", "u-2", "u-3"}) == {"u-1", "u-2", "u-3"}
        recorder.add(VIEW, [card("u-4", "hand-wrist")], "pk-a", DAY, tenant=DEV)
    assert issued(store) == {"u-1", "u-2", "u-3", "u-4"}
    store.close()


async def test_flush_before_feedback_lets_an_override_quiet_its_topic_at_once(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/aimss.db")
    recorder = CardRecorder(store.cards, interval=3600)
    async with recorder.running():
        recorder.add(VIEW, [card("u-1", "exercise")], "pk-a", DAY, tenant=DEV)
        await recorder.flush()
        store.feedback.add(VIEW, [item("u-1")], DAY, tenant=DEV)
        assert store.cards.snoozed_topics("pk-a", DAY, SNOOZE, tenant=DEV) == {"exercise"}
    store.close()
