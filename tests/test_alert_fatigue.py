"""Overrides that quiet a card for one patient, through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine, inspect, select

from cds_service.clinical.findings import Finding
from cds_service.hooks.alert_fatigue import without_quieted
from cds_service.knowledge.loader import OVERRIDE_SYSTEM
from cds_service.knowledge.rules_config import SnoozeRules
from cds_service.store.database import engine_url
from cds_service.store.schema import metadata
from tests.conftest import TODAY
from tests.helpers import card_topics, patient_view, per_recommendation, topics
from tests.test_conformance import ANASTROZOLE, full_prefetch

FHIR = "http://127.0.0.1:9/fhir"  # complete prefetch: never called
HOOK = "/cds-services/aimss-patient-view"
TOPIC = "bone-health"  # a grouped card: bone-density-scan and bone-protection


class Clock:
    def __init__(self) -> None:
        self.today = TODAY

    def __call__(self) -> date:
        return self.today


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(make_client, database_url, clock):
    return make_client(clock=clock, database_url=database_url)


def view(api, patient: str) -> list[dict]:
    anastrozole = {**ANASTROZOLE, "subject": {"reference": f"Patient/{patient}"}}
    body = patient_view(patient, fhirServer=FHIR, prefetch=full_prefetch(anastrozole))
    response = api.post(HOOK, json=body)
    assert response.status_code == 200
    return response.json()["cards"]


def override(api, card_uuid: str, code: str, system: str = OVERRIDE_SYSTEM) -> None:
    item = {
        "card": card_uuid,
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-21T13:29:01Z",
        "overrideReason": {"reason": {"system": system, "code": code}},
    }
    assert api.post(HOOK + "/feedback", json={"feedback": [item]}).status_code == 200


def uuid_of(cards: list[dict], topic: str) -> str:
    (card,) = [c for c in cards if c["source"]["topic"]["code"] == topic]
    return card["uuid"]


@pytest.mark.parametrize("reason", ["not-now", "already-addressed"])
def test_a_snoozing_override_quiets_the_card_for_that_patient_only(api, clock, knowledge, reason):
    days = knowledge.rules.snooze.days
    override(api, uuid_of(view(api, "pat-a"), TOPIC), reason)
    quieted = {"cards": view(api, "pat-a")}
    assert TOPIC not in card_topics(quieted)
    assert card_topics(quieted), "other cards still show"
    assert TOPIC in card_topics({"cards": view(api, "pat-b")})
    clock.today = TODAY + timedelta(days=days - 1)
    assert TOPIC not in card_topics({"cards": view(api, "pat-a")})
    clock.today = TODAY + timedelta(days=days)
    assert TOPIC in card_topics({"cards": view(api, "pat-a")})


def test_with_one_card_per_recommendation_an_override_quiets_that_recommendation(
    make_client, database_url, clock, tmp_path
):
    api = make_client(clock=clock, database_url=database_url, rules_file=per_recommendation(tmp_path))
    override(api, uuid_of(view(api, "pat-a"), "bone-density-scan"), "not-now")
    assert set(card_topics({"cards": view(api, "pat-a")})) == {"symptom-assessment", "bone-protection"}


def test_a_quieted_plan_card_hides_all_its_recommendations_not_the_other_cards(api):
    override(api, uuid_of(view(api, "pat-a"), "aimss-plan"), "already-addressed")
    cards = {"cards": view(api, "pat-a")}
    assert card_topics(cards) == ["bone-health"]
    assert topics(cards) == {"bone-density-scan", "bone-protection"}


@pytest.mark.parametrize(
    ("code", "system"),
    [("patient-declined", OVERRIDE_SYSTEM), ("disagree", OVERRIDE_SYSTEM), ("not-now", "http://example.org/x")],
)
def test_other_overrides_do_not_quiet(api, code, system):
    override(api, uuid_of(view(api, "pat-a"), TOPIC), code, system)
    assert TOPIC in card_topics({"cards": view(api, "pat-a")})


def test_feedback_on_an_unknown_card_is_stored_but_quiets_nothing(api, database_url):
    view(api, "pat-a")
    override(api, "no-such-card", "not-now")
    assert TOPIC in card_topics({"cards": view(api, "pat-a")})
    engine = create_engine(engine_url(database_url))
    with engine.connect() as connection:
        cards = connection.execute(select(metadata.tables["feedback"].c.card_uuid)).scalars().all()
    engine.dispose()
    assert cards == ["no-such-card"]


def test_the_database_holds_no_patient_id_or_server_in_clear(api, database_url):
    override(api, uuid_of(view(api, "pat-secret-7"), TOPIC), "not-now")
    view(api, "pat-secret-7")
    engine = create_engine(engine_url(database_url))
    values: list[str] = []
    with engine.connect() as connection:
        tables = inspect(connection).get_table_names()
        assert {"feedback", "issued_cards", "seen_jti"} <= set(tables)
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                values += [str(value) for value in row]
    engine.dispose()
    assert any(len(value) == 64 for value in values), "the patient is stored as a hash"
    leaks = [v for v in values if "pat-secret" in v or "127.0.0.1" in v or "Patient/" in v]
    assert leaks == []


def finding(topic: str, indicator: str) -> Finding:
    return Finding(topic=topic, indicator=indicator)


class QuietEverything:
    async def snoozed(
        self, patient_key: str, today: date, rules: SnoozeRules, *, tenant: str
    ) -> frozenset[str]:
        return frozenset({"serm-with-ai", "data-incomplete", "exercise"})


async def test_critical_cards_and_data_incomplete_are_never_quieted():
    findings = [
        finding("serm-with-ai", "critical"),
        finding("data-incomplete", "warning"),
        finding("exercise", "info"),
    ]
    rules = SnoozeRules(reasons=("not-now",), days=30)
    kept = await without_quieted(findings, QuietEverything(), "pk", TODAY, rules, "t")  # type: ignore[arg-type]
    assert [f.topic for f in kept] == ["serm-with-ai", "data-incomplete"]


class QuietThePlan:
    async def snoozed(
        self, patient_key: str, today: date, rules: SnoozeRules, *, tenant: str
    ) -> frozenset[str]:
        return frozenset({"aimss-plan"})


async def test_quieting_a_grouped_card_drops_the_findings_it_would_hold(knowledge):
    findings = [finding("exercise", "warning"), finding("duloxetine", "info"), finding("bone-density-scan", "info")]
    rules = SnoozeRules(reasons=("not-now",), days=30)
    kept = await without_quieted(
        findings, QuietThePlan(), "pk", TODAY, rules, "t", knowledge.wording.card_topic  # type: ignore[arg-type]
    )
    assert [f.topic for f in kept] == ["bone-density-scan"]
    ungrouped = await without_quieted(findings, QuietThePlan(), "pk", TODAY, rules, "t")  # type: ignore[arg-type]
    assert ungrouped == findings
