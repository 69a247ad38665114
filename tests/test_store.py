"""The shared store on SQLite and PostgreSQL: feedback, JWT ids, patient keys, issued cards."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import MetaData, Table, create_engine, insert, select

from cds_service.hooks.protocol import Card, Coding, FeedbackItem, Source
from cds_service.knowledge.loader import OVERRIDE_SYSTEM
from cds_service.knowledge.rules_config import SnoozeRules
from cds_service.store import Database, FeedbackLog, Store
from cds_service.store.database import engine_url
from cds_service.store.issued import draft_key, issued_rows, order_card_rows
from cds_service.store.patients import PatientKeys
from cds_service.store.replay import DatabaseReplayGuard
from cds_service.store.report import tenant_report
from cds_service.store.schema import issued_cards, metadata, seen_jti
from cds_service.store.tenants import DEVELOPMENT_TENANT

DAY = date(2026, 11, 21)
DEV = DEVELOPMENT_TENANT
SNOOZE = SnoozeRules(reasons=("not-now", "already-addressed"), days=30)
TOPIC_SYSTEM = "http://aimss-cds.example.org/fhir/CodeSystem/aimss-card-topics"


def item(card: str, outcome: str = "overridden", code: str | None = "not-now", **extra) -> FeedbackItem:
    body = {"card": card, "outcome": outcome, "outcomeTimestamp": "2026-11-21T13:29:01Z", **extra}
    if outcome == "accepted":
        body["acceptedSuggestions"] = [{"id": "s-1"}]
    elif code:
        body["overrideReason"] = {"reason": {"system": OVERRIDE_SYSTEM, "code": code}}
    return FeedbackItem.model_validate(body)


def card(uuid: str, topic: str, indicator: str = "info") -> Card:
    return Card(
        uuid=uuid,
        summary="s",
        indicator=indicator,
        source=Source(label="l", topic=Coding(system=TOPIC_SYSTEM, code=topic)),
    )


def test_feedback_is_stored_once(database_url):
    log = FeedbackLog(Database(database_url))
    assert log.add("aimss-patient-view", [item("c-1"), item("c-2", "accepted")], DAY, tenant=DEV) == 2
    assert log.add("aimss-patient-view", [item("c-1")], DAY + timedelta(days=1), tenant=DEV) == 0
    rows = sorted(log.rows(), key=lambda row: row["card_uuid"])
    assert [(r["card_uuid"], r["outcome"], r["received_on"]) for r in rows] == [
        ("c-1", "overridden", DAY),
        ("c-2", "accepted", DAY),
    ]


async def test_a_jti_is_accepted_once(database_url):
    guard = Store(database_url).replay_guard
    assert await guard.first_use("jti-1", 2_000_000_000)
    assert not await guard.first_use("jti-1", 2_000_000_000)
    assert await guard.first_use("jti-2", 2_000_000_000)


def test_a_second_store_on_the_same_database_sees_the_jti(database_url):
    """As a second worker process would: its own engines, the same tables."""
    assert Store(database_url).replay_guard.first_use_sync("shared", 2_000_000_000)
    assert not Store(database_url).replay_guard.first_use_sync("shared", 2_000_000_000)


def test_racing_workers_cannot_both_win_a_jti(database_url):
    guards = [Store(database_url).replay_guard for _ in range(4)]
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def attempt(guard: DatabaseReplayGuard) -> None:
        barrier.wait()
        wins.append(guard.first_use_sync("raced", 2_000_000_000))

    threads = [threading.Thread(target=attempt, args=(g,)) for g in guards * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 7 + [True]


async def test_a_jti_checked_on_the_event_loop_and_one_checked_in_a_thread_meet(database_url):
    """On SQLite the check runs on the event loop when it can, as a second worker's runs in a
    thread: both write the same table, so either way a replay is refused."""
    inline, threaded = Store(database_url).replay_guard, Store(database_url).replay_guard
    assert await inline.first_use("warm-up", 2_000_000_000)  # the first call prunes, in a thread
    assert await inline.first_use("a", 2_000_000_000)
    assert not threaded.first_use_sync("a", 2_000_000_000)
    assert threaded.first_use_sync("b", 2_000_000_000)
    assert not await inline.first_use("b", 2_000_000_000)


async def test_a_busy_sqlite_writer_sends_the_jti_check_to_a_thread_that_waits_its_turn(tmp_path):
    url = f"sqlite:///{tmp_path}/aimss.db"
    store = Store(url)
    assert await store.replay_guard.first_use("warm-up", 2_000_000_000)
    other_worker = sqlite3.connect(tmp_path / "aimss.db", isolation_level=None)
    other_worker.execute("BEGIN IMMEDIATE")  # holds SQLite's one write lock
    assert store.inline.run("INSERT INTO seen_jti VALUES ('x', 1)", (), write=True) is None
    check = asyncio.create_task(store.replay_guard.first_use("during", 2_000_000_000))
    await asyncio.sleep(0.2)
    assert not check.done()  # waiting in a thread, not failed, not on the event loop
    other_worker.execute("COMMIT")
    assert await check
    assert not await store.replay_guard.first_use("during", 2_000_000_000)


def test_jti_is_stored_hashed_and_expired_ids_are_pruned(database_url):
    database = Database(database_url)
    now = [1_000.0]
    guard = DatabaseReplayGuard(database, now=lambda: now[0])
    assert guard.first_use_sync("secret-looking-jti", 1_100)
    assert guard.first_use_sync("later", 5_000)
    with database.fast.connect() as connection:
        stored = connection.execute(select(seen_jti.c.jti_hash)).scalars().all()
    assert "secret-looking-jti" not in stored and len(stored) == 2
    now[0] = 1_200.0  # past the first id's expiry, and past the prune interval
    assert guard.first_use_sync("another", 5_000)
    with database.fast.connect() as connection:
        remaining = connection.execute(select(seen_jti.c.expires_at)).scalars().all()
    assert sorted(remaining) == [5_000, 5_000]


def test_patient_key_is_one_generated_secret_for_every_worker(database_url):
    first, second = Store(database_url), Store(database_url)
    assert first.patients.key("http://fhir/", "p-1", tenant=DEV) == second.patients.key("http://fhir", "p-1", tenant=DEV)
    assert first.patients.key("http://fhir", "p-1", tenant=DEV) != first.patients.key("http://other", "p-1", tenant=DEV)
    configured = PatientKeys.for_database(Database(database_url), "a configured secret")
    assert configured.key("http://fhir", "p-1", tenant=DEV) != first.patients.key("http://fhir", "p-1", tenant=DEV)


def test_snoozed_topics_come_from_snoozing_overrides_of_the_patients_cards(database_url):
    store = Store(database_url)
    store.cards.record_rows(issued_rows("aimss-patient-view", [card("u-1", "exercise"), card("u-2", "duloxetine")], "pk-a", DAY, tenant=DEV))
    store.cards.record_rows(issued_rows("aimss-patient-view", [card("u-3", "exercise")], "pk-b", DAY, tenant=DEV))
    store.feedback.add("aimss-patient-view", [item("u-1"), item("u-2", code="patient-declined")], DAY, tenant=DEV)
    assert store.cards.snoozed_topics("pk-a", DAY, SNOOZE, tenant=DEV) == {"exercise"}
    assert store.cards.snoozed_topics("pk-b", DAY, SNOOZE, tenant=DEV) == frozenset()
    assert store.cards.snoozed_topics("pk-a", DAY + timedelta(days=29), SNOOZE, tenant=DEV) == {"exercise"}
    assert store.cards.snoozed_topics("pk-a", DAY + timedelta(days=30), SNOOZE, tenant=DEV) == frozenset()
    assert store.cards.snoozed_topics("pk-a", DAY, SnoozeRules(reasons=SNOOZE.reasons, days=0), tenant=DEV) == frozenset()


async def test_snoozes_read_on_the_event_loop_are_the_stored_query_s(database_url):
    """``snoozed`` (on SQLite, a hand-written query on the event loop) answers as
    ``snoozed_topics`` at every edge: the window's last day, another patient, another tenant."""
    store = Store(database_url)
    store.cards.record_rows(issued_rows("aimss-patient-view", [card("u-1", "exercise"), card("u-2", "duloxetine")], "pk-a", DAY, tenant=DEV))
    store.cards.record_rows(issued_rows("aimss-patient-view", [card("u-3", "bone-health")], "pk-a", DAY, tenant="other"))
    store.feedback.add("aimss-patient-view", [item("u-1"), item("u-2", code="already-addressed")], DAY, tenant=DEV)
    store.feedback.add("aimss-patient-view", [item("u-3")], DAY, tenant="other")
    for patient, day, tenant in [
        ("pk-a", DAY, DEV), ("pk-a", DAY + timedelta(days=29), DEV), ("pk-a", DAY + timedelta(days=30), DEV),
        ("pk-b", DAY, DEV), ("pk-a", DAY, "other"), ("pk-a", DAY, "nobody"),
    ]:
        expected = store.cards.snoozed_topics(patient, day, SNOOZE, tenant=tenant)
        assert await store.cards.snoozed(patient, day, SNOOZE, tenant=tenant) == expected, (patient, day, tenant)
    assert await store.cards.snoozed("pk-a", DAY, SNOOZE, tenant=DEV) == {"exercise", "duloxetine"}


def test_feedback_before_the_issued_record_still_snoozes(database_url):
    store = Store(database_url)
    store.feedback.add("aimss-patient-view", [item("u-9", code="already-addressed")], DAY, tenant=DEV)
    assert store.cards.snoozed_topics("pk-a", DAY, SNOOZE, tenant=DEV) == frozenset()
    store.cards.record_rows(issued_rows("aimss-patient-view", [card("u-9", "hand-wrist")], "pk-a", DAY, tenant=DEV))
    assert store.cards.snoozed_topics("pk-a", DAY, SNOOZE, tenant=DEV) == {"hand-wrist"}


def test_a_reason_of_another_code_system_does_not_snooze(database_url):
    store = Store(database_url)
    store.cards.record_rows(issued_rows("aimss-patient-view", [card("u-1", "exercise")], "pk-a", DAY, tenant=DEV))
    other = FeedbackItem.model_validate({
        "card": "u-1", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T13:29:01Z",
        "overrideReason": {"reason": {"system": "http://example.org/override", "code": "not-now"}},
    })
    store.feedback.add("aimss-patient-view", [other], DAY, tenant=DEV)
    assert store.cards.snoozed_topics("pk-a", DAY, SNOOZE, tenant=DEV) == frozenset()


def test_ping_reaches_both_engines(database_url):
    Store(database_url).ping()


def test_ready_says_knowledge_loaded_and_store_reachable(make_client, database_url):
    client = make_client(database_url=database_url)
    assert client.get("/ready").json() == {"status": "ready", "knowledge": "loaded", "store": "reachable"}
    database = client.app.state.runtime.store.database
    database.fast = create_engine("sqlite:////nonexistent-dir/aimss.db")  # the jti/cards engine down
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["resourceType"] == "OperationOutcome"


def test_workers_starting_together_on_a_fresh_database_all_start(database_url, tmp_path):
    """``serve --workers N`` starts its workers at once: each must come up on a database that
    none of them has made yet (a worker failing its start-up makes uvicorn stop them all)."""
    for round_ in range(5):
        if database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path}/fresh-{round_}.db"
        else:
            url = database_url
            engine = create_engine(engine_url(url))
            metadata.drop_all(engine)
            engine.dispose()
        barrier = threading.Barrier(4)

        def start() -> None:
            barrier.wait()  # noqa: B023 (called before the loop moves on)
            Store(url).close()  # noqa: B023

        with ThreadPoolExecutor(4) as pool:
            for future in [pool.submit(start) for _ in range(4)]:
                future.result()


A, B = "https://ehr-a.example.org", "https://ehr-b.example.org"
VIEW = "aimss-patient-view"


def test_a_patient_has_one_key_per_tenant(database_url):
    keys = Store(database_url).patients
    assert keys.key("http://fhir", "p-1", tenant=A) != keys.key("http://fhir", "p-1", tenant=B)
    assert keys.key("http://fhir/", "p-1", tenant=A) == keys.key("http://fhir", "p-1", tenant=A)


def test_one_tenant_cannot_quiet_another_tenants_cards(database_url):
    """Issuer B, naming A's FHIR server, patient and even A's card, and answering "not now"."""
    store = Store(database_url)
    key_at_a = store.patients.key("https://fhir.a.example.org", "p-1", tenant=A)
    key_at_b = store.patients.key("https://fhir.a.example.org", "p-1", tenant=B)
    store.cards.record_rows(issued_rows(VIEW, [card("a-1", "exercise")], key_at_a, DAY, tenant=A))
    store.cards.record_rows(issued_rows(VIEW, [card("b-1", "duloxetine")], key_at_b, DAY, tenant=B))
    store.feedback.add(VIEW, [item("a-1"), item("b-1")], DAY, tenant=B)
    assert store.cards.snoozed_topics(key_at_a, DAY, SNOOZE, tenant=A) == frozenset()
    assert store.cards.snoozed_topics(key_at_b, DAY, SNOOZE, tenant=B) == {"duloxetine"}
    store.feedback.add(VIEW, [item("a-1")], DAY, tenant=A)
    assert store.cards.snoozed_topics(key_at_a, DAY, SNOOZE, tenant=A) == {"exercise"}
    assert store.cards.snoozed_topics(key_at_a, DAY, SNOOZE, tenant=B) == frozenset()


def _schema_before_tenants() -> MetaData:
    """The tables as they were before tenants: no tenant or silent column, no probe table."""
    old = MetaData()
    for table in metadata.sorted_tables:
        if table.name != "store_probe":
            Table(table.name, old, *(c._copy() for c in table.columns if c.name not in {"tenant", "silent"}))
    return old


def test_a_database_from_before_tenants_gains_the_columns_and_keeps_its_rows(database_url):
    url = engine_url(database_url)
    engine = create_engine(url)
    _schema_before_tenants().create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(issued_cards), {
            "card_uuid": "old-1", "service_id": VIEW, "topic": "exercise", "indicator": "info",
            "patient_key": "pk-old", "issued_on": DAY,
        })
    engine.dispose()
    store = Store(database_url)
    store.feedback.add(VIEW, [item("old-1", "accepted")], DAY, tenant="")  # as an old row reads
    report = tenant_report(store.database)
    assert list(report) == [""]
    (exercise,) = report[""]
    assert (exercise.topic, exercise.issued, exercise.accepted) == ("exercise", 1, 1)
    store.cards.record_rows(issued_rows(VIEW, [card("new-1", "exercise")], "pk-new", DAY, tenant=A))
    assert {tenant: [r.issued for r in rows] for tenant, rows in tenant_report(store.database).items()} == {
        "": [1], A: [1]
    }
    Store(database_url).close()  # a second start finds every column there


def test_order_sign_reads_only_its_tenants_overrides_at_order_select(database_url):
    """The no-repeat at signing (DESIGN §4) is per tenant, and within its window: issuer B
    overriding its own card and A's (by uuid) quiets only its own at signing."""
    store = Store(database_url)
    at = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    keys = {}
    for tenant, uuid in ((A, "sel-a"), (B, "sel-b")):
        keys[tenant] = store.patients.key("https://fhir.a.example.org", "p-1", tenant=tenant)
        selected = card(uuid, "serm-with-ai", "critical")
        store.cards.record_rows(
            issued_rows("aimss-order-select", [selected], keys[tenant], DAY, tenant=tenant),
            draft_rows=order_card_rows("order-select", [(selected, "MedicationRequest/r-1|rx")], keys[tenant],
                                       at, tenant=tenant),
        )
    store.feedback.add("aimss-order-select", [item("sel-a", code="x"), item("sel-b", code="x")], DAY, at, tenant=B)
    answered = {("serm-with-ai", draft_key("MedicationRequest/r-1|rx"))}
    assert store.cards.overridden_at_selection(keys[B], at - timedelta(hours=12), tenant=B) == answered
    assert store.cards.overridden_at_selection(keys[A], at - timedelta(hours=12), tenant=A) == frozenset()
    assert store.cards.overridden_at_selection(keys[B], at + timedelta(minutes=1), tenant=B) == frozenset()
