"""``aimss-cds report``: cards issued, accepted and overridden per topic, with reasons."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from cds_service.hooks.protocol import (
    RECOMMENDATIONS_EXTENSION,
    SUGGESTION_EXTENSION,
    Card,
    Coding,
    FeedbackItem,
    Source,
    Suggestion,
)
from cds_service.knowledge.loader import TOPIC_SYSTEM
from cds_service.store import Store
from cds_service.store.issued import issued_rows, recommendation_rows
from tests.test_store import DEV, card, item


def run_report(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"AIMSS_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "cds_service", "report", *args], env=env, capture_output=True, text=True
    )


def fill(database_url: str) -> None:
    store = Store(database_url)
    today = datetime.now(UTC).date()
    long_ago = today - timedelta(days=40)
    view = "aimss-patient-view"
    store.cards.record_rows(issued_rows(view, [card("e-1", "exercise"), card("e-2", "exercise"), card("e-3", "exercise"),
                              card("d-1", "duloxetine")], "pk-a", today, tenant=DEV))
    store.cards.record_rows(issued_rows(view, [card("e-old", "exercise")], "pk-b", long_ago, tenant=DEV))
    store.feedback.add(view, [item("e-1", "accepted"), item("e-2", code="not-now"),
                              item("e-2", code="not-now", outcomeTimestamp="2026-11-21T13:30:00Z"),
                              item("d-1", code="patient-declined"), item("e-old", code="disagree"),
                              item("stranger", code="not-now")], today, tenant=DEV)


def test_json_report_counts_each_card_once_per_topic(database_url):
    fill(database_url)
    result = run_report(database_url, "--json")
    assert result.returncode == 0, result.stderr
    (development,) = json.loads(result.stdout)["tenants"]
    assert development["tenant"] == "development"
    by_topic = {row["topic"]: row for row in development["topics"]}
    exercise = by_topic["exercise"]
    assert (exercise["issued"], exercise["accepted"], exercise["overridden"]) == (4, 1, 2)
    assert exercise["acceptance_rate"] == 0.25 and exercise["override_rate"] == 0.5
    assert exercise["override_reasons"] == {"disagree": 1, "not-now": 2}  # items, not cards
    assert by_topic["duloxetine"]["override_reasons"] == {"patient-declined": 1}
    unknown = by_topic["(card not on record)"]
    assert (unknown["issued"], unknown["overridden"], unknown["acceptance_rate"]) == (0, 1, None)


def test_days_keeps_recent_cards_and_the_table_is_readable(database_url):
    fill(database_url)
    (development,) = json.loads(run_report(database_url, "--days", "7", "--json").stdout)["tenants"]
    recent = {r["topic"]: r for r in development["topics"]}
    assert (recent["exercise"]["issued"], recent["exercise"]["overridden"]) == (3, 1)
    table = run_report(database_url, "--days", "7")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert "cards issued since" in lines[0]
    (exercise,) = [line for line in lines if line.startswith("exercise ")]
    assert exercise.split()[:7] == ["exercise", "3", "0", "1", "1", "33%", "33%"]
    assert "not-now 2" in exercise


def test_silent_cards_are_what_would_have_fired_per_tenant(database_url):
    """A tenant in a silent go-live: its cards were computed and recorded, none returned."""
    store = Store(database_url)
    today = datetime.now(UTC).date()
    view = "aimss-patient-view"
    silent, live = "https://ehr-silent.example.org", "https://ehr-live.example.org"
    store.cards.record_rows(issued_rows(view, [card("s-1", "exercise"), card("s-2", "duloxetine")], "pk-s",
                                        today, tenant=silent, silent=True))
    store.cards.record_rows(issued_rows(view, [card("l-1", "exercise")], "pk-l", today, tenant=live))
    store.feedback.add(view, [item("l-1", "accepted")], today, tenant=live)
    store.feedback.add(view, [item("l-1", code="not-now")], today, tenant=silent)  # not its card
    report = json.loads(run_report(database_url, "--json").stdout)["tenants"]
    shown = {t["tenant"]: {r["topic"]: (r["issued"], r["silent"], r["accepted"], r["overridden"])
                           for r in t["topics"]} for t in report}
    assert shown == {
        live: {"exercise": (1, 0, 1, 0)},
        silent: {"exercise": (0, 1, 0, 0), "duloxetine": (0, 1, 0, 0), "(card not on record)": (0, 0, 0, 1)},
    }
    only = json.loads(run_report(database_url, "--json", "--tenant", silent).stdout)["tenants"]
    assert [t["tenant"] for t in only] == [silent]
    table = run_report(database_url, "--tenant", silent).stdout
    assert f"tenant {silent}" in table and live not in table
    (exercise,) = [line for line in table.splitlines() if line.startswith("exercise ")]
    assert exercise.split()[:3] == ["exercise", "0", "1"]


def test_report_of_an_empty_database_says_so(database_url):
    Store(database_url).close()
    result = run_report(database_url)
    assert result.returncode == 0 and "no cards issued" in result.stdout


def test_report_without_a_database_says_where_it_looked_and_creates_none(tmp_path):
    result = run_report(f"sqlite:///{tmp_path}/nothing-here.db")
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert f"no database at {tmp_path}/nothing-here.db" in line and "AIMSS_DATABASE_URL" in line
    assert list(tmp_path.iterdir()) == []


def test_report_reads_the_default_location_serve_writes(tmp_path):
    """``serve`` and ``report`` share .data/aimss-cds.db under the working directory."""
    (tmp_path / ".data").mkdir()
    fill(f"sqlite:///{tmp_path}/.data/aimss-cds.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMSS_")}
    result = subprocess.run([sys.executable, "-m", "cds_service", "report", "--json"], env=env,
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (development,) = json.loads(result.stdout)["tenants"]
    assert {row["topic"] for row in development["topics"]} >= {"exercise", "duloxetine"}


def test_report_of_a_database_without_tables_is_one_line(database_url):
    if database_url.startswith("sqlite"):
        sqlite3.connect(database_url.removeprefix("sqlite:///")).close()  # an empty file
    result = run_report(database_url)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("aimss-cds: cannot read the database: AIMSS_DATABASE_URL: ")
    assert "issued_cards" in line  # the missing table, in the driver's words


def test_help_lists_every_command():
    help_text = subprocess.run(
        [sys.executable, "-m", "cds_service", "--help"], capture_output=True, text=True
    ).stdout
    for command in ("serve", "check", "report"):
        assert command in help_text


def plan_card(uuid: str, held: dict[str, list[str]]) -> Card:
    """A grouped card holding recommendations, each with the uuids of its suggestions."""
    suggestions = [
        Suggestion(label=s, uuid=s, extension={SUGGESTION_EXTENSION: {"system": TOPIC_SYSTEM, "code": r}})
        for r, uuids in held.items() for s in uuids
    ]
    return Card(
        uuid=uuid, summary="s", indicator="warning",
        source=Source(label="l", topic=Coding(system=TOPIC_SYSTEM, code="aimss-plan")),
        suggestions=suggestions or None, selectionBehavior="any" if suggestions else None,
        extension={RECOMMENDATIONS_EXTENSION: [{"system": TOPIC_SYSTEM, "code": r} for r in held]},
    )


def test_grouped_cards_are_reported_per_card_and_per_recommendation(database_url):
    store = Store(database_url)
    today = datetime.now(UTC).date()
    view = "aimss-patient-view"
    cards = [plan_card("p-1", {"exercise": ["s-ex"], "duloxetine": ["s-dlx"]}), plan_card("p-2", {"exercise": ["s-ex2"]}),
             card("b-1", "bone-density-scan")]
    store.cards.record_rows(issued_rows(view, cards, "pk-a", today, tenant=DEV), recommendation_rows(cards))
    accepted = FeedbackItem.model_validate({"card": "p-1", "outcome": "accepted", "outcomeTimestamp": "2026-11-21T13:29:01Z",
                                            "acceptedSuggestions": [{"id": "s-dlx"}]})
    store.feedback.add(view, [accepted, item("p-2", code="not-now"), item("b-1", "accepted")], today, tenant=DEV)
    store.feedback.add(view, [item("p-1", code="not-now")], today, tenant="https://another-ehr.example.org")
    tenants = {t["tenant"]: t for t in json.loads(run_report(database_url, "--json").stdout)["tenants"]}
    result = tenants[DEV]  # the other EHR's override of p-1 counts for none of DEV's rows
    by_card = {row["topic"]: row for row in result["topics"]}
    assert (by_card["aimss-plan"]["issued"], by_card["aimss-plan"]["accepted"], by_card["aimss-plan"]["overridden"]) == (2, 1, 1)
    by_recommendation = {row["topic"]: row for row in result["recommendations"]}
    exercise, duloxetine = by_recommendation["exercise"], by_recommendation["duloxetine"]
    assert (exercise["issued"], exercise["accepted"], exercise["overridden"]) == (2, 0, 1)
    assert exercise["override_reasons"] == {"not-now": 1}
    assert (duloxetine["issued"], duloxetine["accepted"], duloxetine["overridden"]) == (1, 1, 0)
    scan = by_recommendation["bone-density-scan"]  # a card of its own: its acceptance is its recommendation's
    assert (scan["issued"], scan["accepted"]) == (1, 1)
    table = run_report(database_url).stdout
    assert "by recommendation" in table and any(line.startswith("duloxetine ") for line in table.splitlines())
