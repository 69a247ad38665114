"""Typed thresholds of every recommendation, read from the shipped ``rules.toml`` and a site file.

The values live only in the TOML files; these models give them names and types and reject a
misspelt key, so a site override cannot silently do nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Score = Annotated[float, Field(ge=0, le=10)]


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


class AnalgesicExpectationsRules(_Section):
    max_mild_pain: Score


class BoneDensityScanRules(_Section):
    dxa_interval_months: int = Field(gt=0)
    baseline_window_months: int = Field(ge=0)


class BoneProtectionRules(_Section):
    max_t_score: float = Field(le=0)
    min_t_score_fall: float = Field(gt=0)


class ContributingFactorsRules(_Section):
    lab_within_months: int = Field(gt=0)
    min_vitamin_d_ng_ml: float = Field(gt=0)
    min_phq9: int = Field(ge=0, le=27)


class SwitchTherapyRules(_Section):
    min_pain: Score
    min_weeks_apart: int = Field(gt=0)
    min_interventions: int = Field(ge=0)
    stop_reason_words: tuple[str, ...]


class RedFlagsRules(_Section):
    min_pain_rise: float = Field(gt=0, le=10)


class AiStartBoneHealthRules(_Section):
    dxa_interval_months: int = Field(gt=0)


class SnoozeRules(_Section):
    """Alert fatigue: which override reasons quiet a topic for a patient, and for how long."""

    reasons: tuple[str, ...]
    days: int = Field(ge=0)


class RulesConfig(_Section):
    facts: FactsRules
    symptom_assessment: SymptomAssessmentRules = Field(alias="symptom-assessment")
    exercise: ExerciseRules
    multimodal_management: MultimodalRules = Field(alias="multimodal-management")
    duloxetine: DuloxetineRules
    analgesic_expectations: AnalgesicExpectationsRules = Field(alias="analgesic-expectations")
    bone_density_scan: BoneDensityScanRules = Field(alias="bone-density-scan")
    bone_protection: BoneProtectionRules = Field(alias="bone-protection")
    contributing_factors: ContributingFactorsRules = Field(alias="contributing-factors")
    switch_therapy: SwitchTherapyRules = Field(alias="switch-therapy")
    red_flags: RedFlagsRules = Field(alias="red-flags")
    ai_start_bone_health: AiStartBoneHealthRules = Field(alias="ai-start-bone-health")
    snooze: SnoozeRules


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge a site's partial rules over the shipped ones."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
