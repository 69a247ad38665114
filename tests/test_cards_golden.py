"""Golden cards: what a clinician sees for every sandbox patient (DESIGN §4 Presentation).

Pinned: the cards' count, order and indicator; every card within the length budget; no
resource id or internal note in any clinician-facing string; a recommendation on one card
only; nothing suggested that is already in place; the multimodal bundle only when its rule
fires. Pure: the facts, rules and cards of the pipeline with a pinned clock.
"""

from __future__ import annotations

import re
from datetime import date

import pytest

from cds_service.clinical.cards import render_cards
from cds_service.clinical.facts import extract_facts
from cds_service.clinical.facts.medications import drafted_orders
from cds_service.clinical.facts.model import DataSource
from cds_service.clinical.findings import Finding
from cds_service.clinical.rules.order_select import evaluate_order_select
from cds_service.clinical.rules.patient_view import evaluate_patient_view
from cds_service.hooks.protocol import RECOMMENDATIONS_EXTENSION, SUGGESTION_EXTENSION, Card
from cds_service.knowledge.loader import Knowledge, load_knowledge
from sandbox.synthetic import SandboxPatient, sandbox_patients
from tests.conftest import TODAY
from tests.test_wording import CHARTS, broken

SUMMARY_CHARACTERS = 139  # CDS Hooks: under 140
DETAIL_WORDS = 150  # about one screen of the public sandbox, links counted by their text
MAX_CARDS = 3

# patient -> [(card topic, indicator)] in the order sent
EXPECTED_CARDS: dict[str, list[tuple[str, str]]] = {
    "aimss-no-dxa": [("aimss-plan", "info"), ("bone-health", "info")],
    "aimss-recent-dxa": [("aimss-plan", "info"), ("bone-health", "info")],
    "aimss-old-dxa": [("aimss-plan", "info"), ("bone-health", "info")],
    "aimss-no-ai": [],
    "aimss-mild": [("aimss-plan", "info")],
    "aimss-severe-bpi": [("aimss-plan", "warning")],
    "aimss-hand": [("aimss-plan", "info")],
    "aimss-depression": [("aimss-plan", "warning")],
    "aimss-persisting": [("aimss-plan", "warning")],
    "aimss-worsening": [("red-flags", "warning"), ("aimss-plan", "warning")],
    "aimss-on-hold": [("aimss-plan", "warning")],
    "aimss-osteoporosis": [("bone-health", "warning")],
    "aimss-sparse": [],
}
# patient -> the plan card's recommendations, in the order a clinician acts
EXPECTED_PLAN: dict[str, list[str]] = {
    "aimss-severe-bpi": ["exercise", "multimodal-management", "duloxetine"],
    "aimss-depression": ["exercise", "duloxetine", "contributing-factors"],
    "aimss-persisting": ["exercise", "switch-therapy"],
    "aimss-worsening": ["exercise", "duloxetine", "analgesic-expectations"],
    "aimss-hand": ["exercise", "hand-wrist"],
}
# Activities each patient already has in place: never suggested again.
IN_PLACE: dict[str, set[str]] = {
    "aimss-hand": {"exercise-program"},
    "aimss-depression": {"physical-therapy-referral"},
    "aimss-persisting": {"exercise-program", "physical-therapy-referral", "duloxetine-30mg"},
    "aimss-osteoporosis": {"calcium-supplement", "vitamin-d-supplement"},
}

PATIENTS = {patient.id: patient for patient in sandbox_patients(TODAY)}
INTERNAL = re.compile(r"unverified|verify|confirm|design choice|todo|rule:|\{|\}", re.IGNORECASE)
REFERENCE = re.compile(  # MedicationStatement/abc
    r"\b(Patient|Medication|MedicationStatement|MedicationRequest|Observation|Condition|Procedure"
    r"|ServiceRequest|DiagnosticReport|QuestionnaireResponse)/"
)


def patient_cards(patient: SandboxPatient, knowledge: Knowledge, grouped: bool = True, today: date = TODAY) -> list[Card]:
    facts = extract_facts(patient.resources, knowledge, today)
    return render_cards(evaluate_patient_view(facts, knowledge), knowledge, patient.id, today, grouped=grouped)


def held(card: Card) -> list[str]:
    codings = (card.extension or {}).get(RECOMMENDATIONS_EXTENSION)
    return [c["code"] for c in codings] if codings else [card.source.topic.code if card.source.topic else ""]


def words(markdown: str) -> int:
    """Words a clinician reads: a link counts by its text, not its URL."""
    return len(re.sub(r"\]\([^)]*\)", "]", markdown).split())


def clinician_text(card: Card) -> list[str]:
    """Every string of a card a clinician may read, including what the suggested orders say."""
    texts = [card.summary, card.detail or "", card.source.label]
    for suggestion in card.suggestions or []:
        texts.append(suggestion.label)
        for action in suggestion.actions or []:
            texts.append(action.description)
            for dosage in (action.resource or {}).get("dosageInstruction", []):
                texts.append(dosage.get("text", ""))
    return texts


@pytest.mark.parametrize("patient_id", sorted(PATIENTS))
def test_card_count_order_and_indicator(knowledge, patient_id):
    cards = patient_cards(PATIENTS[patient_id], knowledge)
    assert [(c.source.topic.code if c.source.topic else "", c.indicator) for c in cards] == EXPECTED_CARDS[patient_id]
    assert len(cards) <= MAX_CARDS
    shown = [topic for card in cards for topic in held(card)]
    assert len(shown) == len(set(shown)), "a recommendation on two cards"
    assert set(shown) == PATIENTS[patient_id].expected
    if patient_id in EXPECTED_PLAN:
        (plan,) = [c for c in cards if c.source.topic and c.source.topic.code == "aimss-plan"]
        assert held(plan) == EXPECTED_PLAN[patient_id]


def test_the_plan_summary_says_the_state_and_the_main_action(knowledge):
    (plan,) = patient_cards(PATIENTS["aimss-severe-bpi"], knowledge)
    assert plan.summary == (
        "Pain 6/10 and BPI interference 7.6 on anastrozole: start exercise, physical therapy and duloxetine together"
    )
    labels = [s.label for s in plan.suggestions or []]
    assert labels[0] == "Start together: exercise, physical therapy and duloxetine"
    assert len(labels) == len(set(labels)), "one suggestion per action"


def test_a_summary_names_the_reason_the_bone_card_fired(knowledge):
    """Only calcium and vitamin D missing is not "low or falling bone density"."""
    cards = patient_cards(PATIENTS["aimss-no-dxa"], knowledge, grouped=False)
    (protection,) = [c for c in cards if c.source.topic and c.source.topic.code == "bone-protection"]
    assert protection.summary.startswith("On anastrozole without calcium or vitamin D: start")
    (bone,) = [c for c in patient_cards(PATIENTS["aimss-osteoporosis"], knowledge)
               if c.source.topic and c.source.topic.code == "bone-health"]
    assert "threshold -2.0 (Hadji 2017" in (bone.detail or "")


@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize("patient_id", sorted(PATIENTS))
def test_every_card_fits_the_budget_and_says_nothing_internal(knowledge, patient_id, grouped):
    patient = PATIENTS[patient_id]
    cards = patient_cards(patient, knowledge, grouped)
    facts = extract_facts(patient.resources, knowledge, TODAY)
    for draft in patient.drafts:
        selected = drafted_orders([{"resource": draft.resource(TODAY)}], [f"MedicationRequest/{draft.id}"], knowledge)
        cards += render_cards(evaluate_order_select(facts, knowledge, selected), knowledge, patient.id, TODAY, grouped=False)
    ids = {r["id"] for r in patient.resources} | {d.id for d in patient.drafts}
    for card in cards:
        assert len(card.summary) <= SUMMARY_CHARACTERS, card.summary
        assert words(card.detail or "") <= DETAIL_WORDS, (card.summary, words(card.detail or ""))
        for text in clinician_text(card):
            assert not INTERNAL.search(text), text
            assert not REFERENCE.search(text), text
            assert not any(rid in text for rid in ids), text


def test_the_budget_holds_for_the_other_charts_too(knowledge):
    for resources, unavailable in CHARTS:
        facts = extract_facts(resources, knowledge, TODAY, unavailable)
        for card in render_cards(evaluate_patient_view(facts, knowledge), knowledge, "p", TODAY, grouped=True):
            assert len(card.summary) <= SUMMARY_CHARACTERS
            assert words(card.detail or "") <= DETAIL_WORDS, card.summary


@pytest.mark.parametrize("patient_id", sorted(PATIENTS))
def test_suggestions_name_their_recommendation_and_nothing_in_place(knowledge, patient_id):
    for card in patient_cards(PATIENTS[patient_id], knowledge):
        bundles = []
        for suggestion in card.suggestions or []:
            of = (suggestion.extension or {})[SUGGESTION_EXTENSION]["code"]
            assert of in held(card), "a suggestion belongs to a recommendation on its card"
            created = [a.resource["instantiatesCanonical"][0].rsplit("/", 1)[-1]
                       for a in suggestion.actions or [] if a.resource]
            assert not set(created) & IN_PLACE.get(patient_id, set()), (patient_id, suggestion.label)
            if of == "multimodal-management":
                bundles.append(created)
        assert sum(bool(s.isRecommended) for s in card.suggestions or []) <= 1, "one main action per card"
        if "multimodal-management" in held(card):
            assert bundles and all(len(b) >= 2 for b in bundles)
        else:
            assert not bundles


def test_unreadable_data_is_said_on_the_cards_and_alone_only_when_nothing_else_shows(knowledge):
    facts = extract_facts(PATIENTS["aimss-no-dxa"].resources, knowledge, TODAY, {DataSource.CONDITIONS, DataSource.LABS})
    cards = render_cards(evaluate_patient_view(facts, knowledge), knowledge, "p", TODAY, grouped=True)
    assert len(cards) == 2
    assert all("Could not be read: conditions and TSH, vitamin D and PHQ-9 results" in (c.detail or "") for c in cards)
    assert "data-incomplete" not in [c.source.topic.code for c in cards if c.source.topic]
    alone = render_cards(
        [Finding("data-incomplete", "warning", params={"unavailable": ("pain",)})], knowledge, "p", TODAY, grouped=True
    )
    assert [c.source.topic.code for c in alone if c.source.topic] == ["data-incomplete"]
    assert "pain and BPI scores" in (alone[0].detail or "")


def test_a_line_two_recommendations_share_is_said_once_per_card(tmp_path):
    """A caution worded the same for the bundle and for duloxetine appears once on the plan."""
    caution = '  "On {tamoxifen}: duloxetine inhibits CYP2D6 and may weaken tamoxifen.",\n'
    bundle = ']\ntogether = "Start together: {items}"'
    knowledge = load_knowledge(broken(tmp_path, bundle, caution + bundle))
    findings = [
        Finding("multimodal-management", "warning", params={"tamoxifen": "tamoxifen", "bpi_threshold": 7}),
        Finding("duloxetine", "warning", params={"tamoxifen": "tamoxifen"}),
    ]
    (plan,) = render_cards(findings, knowledge, "p", TODAY, grouped=True)
    assert (plan.detail or "").count("On tamoxifen: duloxetine inhibits CYP2D6") == 1
