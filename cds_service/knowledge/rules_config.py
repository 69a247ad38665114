"""Typed thresholds of every recommendation, read from the shipped ``rules.toml`` and a site file.

The values live only in the TOML files; these models give them names and types and reject a
misspelt key, so a site override cannot silently do nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Score = Annotated[float, Field(ge=0, le=10)]
TScore = Annotated[float, Field(le=0)]
ValueSets = tuple[str, ...]
"""Ids of ValueSets in fhir_profiles/ (checked at start-up)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FactsRules(_Section):
    lookback_months: int = Field(gt=0)
    bpi_min_items_answered: int = Field(ge=1, le=7)


class SymptomAssessmentRules(_Section):
    min_weeks_on_ai: int = Field(ge=0)
    pain_score_within_days: int = Field(gt=0)


class ExerciseRules(_Section):
    min_pain: Score


class MultimodalRules(_Section):
    min_bpi_interference: Score


class DuloxetineRules(_Section):
    min_pain: Score
    min_phq9: int = Field(ge=0, le=27)
    entrapment_sets: ValueSets
    explained_symptom_sets: ValueSets


class DuloxetineSafetyRules(_Section):
    """What every card that proposes duloxetine checks first (DESIGN §4, safety rules)."""

    contraindicated_sets: ValueSets
    washout_days: int = Field(ge=0)
    serotonergic_sets: ValueSets
    hepatic_sets: ValueSets
    alcohol_sets: ValueSets
    glaucoma_sets: ValueSets
    bleeding_sets: ValueSets
    min_kidney_function: float = Field(gt=0)


class OtherIndicationRules(_Section):
    """AIs given for something other than breast cancer get no AIMSS or bone cards."""

    reason_sets: ValueSets
    max_course_days: int = Field(gt=0)


class AnalgesicExpectationsRules(_Section):
    max_mild_pain: Score


class BoneDensityScanRules(_Section):
    dxa_interval_months: int = Field(gt=0)
    baseline_window_months: int = Field(ge=0)


class BoneProtectionRules(_Section):
    t_score_guideline: Literal["hadji-2017", "asco-2019"]
    t_score_thresholds: dict[Literal["hadji-2017", "asco-2019"], TScore]
    osteopenia_t_score: TScore
    min_t_score_fall: float = Field(gt=0)
    fracture_sets: ValueSets
    agent_activity: str
    agent_min_kidney_function: float = Field(gt=0)
    agent_contraindication_sets: ValueSets
    denosumab_interval_months: int = Field(gt=0)

    @property
    def max_t_score(self) -> float:
        """The T-score at or below which a bone-modifying agent is suggested, per the site's guideline."""
        return self.t_score_thresholds[self.t_score_guideline]


class ContributingFactorsRules(_Section):
    lab_within_months: int = Field(gt=0)
    min_vitamin_d_ng_ml: float = Field(gt=0)
    min_phq9: int = Field(ge=0, le=27)


class SwitchTherapyRules(_Section):
    min_pain: Score
    min_weeks_apart: int = Field(gt=0)
    min_interventions: int = Field(ge=0)
    min_weeks_in_place: int = Field(ge=0)
    stop_reason_words: tuple[str, ...]
    metastatic_sets: ValueSets


class RedFlagsRules(_Section):
    min_pain_rise: float = Field(gt=0, le=10)
    condition_sets: ValueSets


class AiStartBoneHealthRules(_Section):
    dxa_interval_months: int = Field(gt=0)


class PresentationRules(_Section):
    """How patient-view findings become cards: a few plan cards, or one per recommendation."""

    cards: Literal["grouped", "per-recommendation"]


class AimssPlanRules(_Section):
    """When the joint-symptom findings (the AIMSS plan) are a warning rather than info."""

    warning_min_pain: Score
    warning_min_bpi_interference: Score


class SnoozeRules(_Section):
    """Alert fatigue: which override reasons quiet a topic for a patient, and for how long."""

    reasons: tuple[str, ...]
    days: int = Field(ge=0)


class RulesConfig(_Section):
    facts: FactsRules
    presentation: PresentationRules
    aimss_plan: AimssPlanRules = Field(alias="aimss-plan")
    symptom_assessment: SymptomAssessmentRules = Field(alias="symptom-assessment")
    exercise: ExerciseRules
    multimodal_management: MultimodalRules = Field(alias="multimodal-management")
    duloxetine: DuloxetineRules
    duloxetine_safety: DuloxetineSafetyRules = Field(alias="duloxetine-safety")
    other_indications: OtherIndicationRules = Field(alias="other-indications")
    analgesic_expectations: AnalgesicExpectationsRules = Field(alias="analgesic-expectations")
    bone_density_scan: BoneDensityScanRules = Field(alias="bone-density-scan")
    bone_protection: BoneProtectionRules = Field(alias="bone-protection")
    contributing_factors: ContributingFactorsRules = Field(alias="contributing-factors")
    switch_therapy: SwitchTherapyRules = Field(alias="switch-therapy")
    red_flags: RedFlagsRules = Field(alias="red-flags")
    ai_start_bone_health: AiStartBoneHealthRules = Field(alias="ai-start-bone-health")
    snooze: SnoozeRules


def valueset_references(config: BaseModel) -> set[str]:
    """Every ValueSet id the rules name (fields ending ``_sets``), to check against fhir_profiles."""
    found: set[str] = set()
    for name, value in config:
        if isinstance(value, BaseModel):
            found |= valueset_references(value)
        elif name.endswith("_sets"):
            found |= set(value)
    return found


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge a site's partial rules over the shipped ones."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
