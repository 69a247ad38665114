"""Card wording as data (fhir_profiles/card-text.toml): checked at start-up, complete for every rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cds_service.clinical.cards import render_cards
from cds_service.clinical.facts import extract_facts
from cds_service.clinical.facts.medications import drafted_orders
from cds_service.clinical.facts.model import DataSource
from cds_service.clinical.findings import Finding
from cds_service.clinical.rules.order_select import evaluate_order_select
from cds_service.clinical.rules.patient_view import evaluate_patient_view
from cds_service.knowledge.loader import WORDING_FILE, Knowledge, KnowledgeError, load_knowledge
from cds_service.settings import default_profiles_dir
from sandbox.synthetic import ICD10, SNOMED, sandbox_patients
from tests.conftest import TODAY
from tests.test_rules_golden import (
    CALCIUM,
    GOOD_LABS,
    QUIET,
    ai,
    bpi,
    condition,
    drug,
    dxa,
    lab,
    pain,
    referral,
)

PROFILES = default_profiles_dir()

# Charts beyond the sandbox patients that reach the other wording: contraindications, cautions,
# falling T-scores, failed AIs, abnormal labs, unreadable data.
CHARTS: list[tuple[tuple[dict, ...], frozenset[DataSource]]] = [
    ((ai(), pain(6), drug("312347", "phenelzine"), drug("10324", "tamoxifen"), *QUIET), frozenset()),
    ((ai(), pain(5), condition(ICD10, "R20.2", "Paresthesia of skin"), *QUIET), frozenset()),
    ((ai(), pain(0), dxa(30, -0.8), dxa(6, -1.3), *GOOD_LABS), frozenset()),
    ((ai(), pain(3), bpi(8), dxa(6), CALCIUM, lab("62292-8", 12, "ng/mL"),
      referral("308447003", "Referral to physiotherapist")), frozenset()),
    ((ai(status="stopped", reason="joint pain"),
      ai(status="stopped", reason="arthralgia", code=("200064", "letrozole 2.5 MG Oral Tablet")),
      ai(code=("310261", "exemestane 25 MG Oral Tablet")), pain(2), *QUIET), frozenset()),
    ((ai(), pain(0), *QUIET), frozenset({DataSource.CONDITIONS, DataSource.LABS})),
    ((ai(), pain(0), condition(SNOMED, "64859006", "Osteoporosis"), dxa(6), *GOOD_LABS), frozenset()),
]


def broken(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the knowledge with one edit to card-text.toml."""
    folder = tmp_path / "profiles"
    shutil.copytree(PROFILES, folder)
    text = (folder / WORDING_FILE).read_text(encoding="utf-8")
    assert old in text, old
    (folder / WORDING_FILE).write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('action = "splint and hand therapy"', 'action = "splint {and hand therapy"', "recommendations.hand-wrist.action"),
        ('action = "splint and hand therapy"', 'action = "splint {hand}{theraphy}"', "recommendations.hand-wrist.action"),
        ('action = "splint and hand therapy"', 'action = "splint {pain!r}"', "recommendations.hand-wrist.action"),
        ('cite = ["HOPE 2015", "SWOG S1200 2018"]', 'cite = ["HOPE 2016"]', "recommendations.exercise.cite"),
        ("[activities.tsh-test]", "[activities.tsh]", "tsh-test"),
        ('"red-flags"]\nsummary_order = ["red-flags"]', '"red-flags", "exercise"]\nsummary_order = ["red-flags"]', "cards.red-flags"),
        ("[recommendations.hand-wrist]", "[recommendations.hand-and-wrist]", "hand-and-wrist"),
        ('[recommendations.adherence]\ntitle = ', '[recommendations.adherence]\ntitel = ', "titel"),
    ],
)
def test_a_broken_template_stops_start_up_naming_the_file_and_key(tmp_path, old, new, named):
    with pytest.raises(KnowledgeError) as error:
        load_knowledge(broken(tmp_path, old, new))
    assert WORDING_FILE in str(error.value) and named in str(error.value)


def test_a_patient_view_recommendation_on_no_card_stops_start_up(tmp_path):
    """It would be a fourth card: every patient-view recommendation sits on a grouped card."""
    folder = broken(tmp_path, '"analgesic-expectations", "hand-wrist", "contributing-factors"',
                    '"analgesic-expectations", "contributing-factors"')
    text = (folder / WORDING_FILE).read_text(encoding="utf-8")
    (folder / WORDING_FILE).write_text(text.replace('"hand-wrist", "symptom-assessment"', '"symptom-assessment"'))
    with pytest.raises(KnowledgeError, match=r"card-text\.toml: patient-view recommendations on no \[cards\]: hand-wrist"):
        load_knowledge(folder)


def all_findings(knowledge: Knowledge) -> list[list[Finding]]:
    """The findings of every rule, per call, over the sandbox patients and the charts above."""
    calls = []
    for resources, unavailable in CHARTS:
        calls.append(evaluate_patient_view(extract_facts(resources, knowledge, TODAY, unavailable), knowledge))
    for patient in sandbox_patients(TODAY):
        facts = extract_facts(patient.resources, knowledge, TODAY)
        calls.append(evaluate_patient_view(facts, knowledge))
        for draft in patient.drafts:
            entries = [{"resource": draft.resource(TODAY)}]
            selected = drafted_orders(entries, [f"MedicationRequest/{draft.id}"], knowledge)
            calls.append(evaluate_order_select(facts, knowledge, selected))
    return calls


def test_every_template_renders_for_every_rule(knowledge):
    wording = knowledge.wording
    calls = all_findings(knowledge)
    findings = [f for call in calls for f in call]
    assert {f.topic for f in findings} == set(wording.recommendations), "a rule never fired in the fixtures"
    for finding in findings:
        text = wording.recommendations[finding.topic]
        assert set(finding.params) <= wording.parameters, finding.topic
        values = {name: wording.show(value) for name, value in finding.params.items()}
        values |= {"orders": "x", "items": "x"} if finding.orders else {}
        assert text.title.render(values), (finding.topic, "title", sorted(values))
        assert text.action.render(values), (finding.topic, "action", sorted(values))
        assert set(finding.notes) <= set(text.notes), finding.topic
        lines = [*text.detail, *(text.notes[note] for note in finding.notes)]
        assert any(line.render(values) for line in lines), (finding.topic, "detail")
        for order in finding.orders:
            assert set(order.activities) <= set(wording.activities), finding.topic
    for call in calls:
        for card in render_cards(call, knowledge, "p", TODAY, grouped=False):
            for text in (card.summary, card.detail or "", *(s.label for s in card.suggestions or [])):
                assert "unknown" not in text and "{" not in text, text


def test_every_data_source_has_words(knowledge):
    assert {source.value for source in DataSource} <= set(knowledge.wording.sources)
