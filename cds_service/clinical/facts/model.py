"""The facts the rules read: typed, dated, each naming the resource it came from.

Missing data is unknown, not "no": ``PatientFacts.unavailable`` names every data source that
could not be read, and the rules consult it before concluding that something is absent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from cds_service.fhir.resources import Resource
from cds_service.knowledge.loader import CodeMatch


class DataSource(StrEnum):
    """A kind of data the rules need; a prefetch key feeds one. Cards name them in words."""

    MEDICATIONS = "medications"
    BONE_DENSITY = "bone_density"
    PAIN = "pain"
    CONDITIONS = "conditions"
    LABS = "labs"
    INTERVENTIONS = "interventions"


AROMATASE_INHIBITORS = "aromatase-inhibitors"
AI_INGREDIENTS = ("anastrozole", "letrozole", "exemestane")
INTERVENTION_SETS = ("physical-therapy", "acupuncture", "exercise-program")


@dataclass(frozen=True)
class MedicationUse:
    """One record of a drug of interest, from a MedicationStatement or a MedicationRequest."""

    groups: frozenset[str]
    name: str
    status: str
    start: date | None
    end: date | None
    source: str
    unverified_codes: tuple[str, ...]
    status_reason: str | None = None
    status_reason_groups: frozenset[str] = frozenset()
    reason_groups: frozenset[str] = frozenset()
    """Value sets of why it was given (reasonCode)."""
    planned_days: float | None = None
    """How long it was planned for (supply duration or dosage bounds), when the record says."""
    point_in_time: bool = False
    """The record is one administration or order on one date (effectiveDateTime, authoredOn)."""

    @property
    def is_current(self) -> bool:
        return self.status == "active"

    @property
    def last_taken(self) -> date | None:
        """The last date the drug is known to have been taken or given; unknown for an open-ended
        current course."""
        if self.end is not None:
            return self.end
        return self.start if self.point_in_time or not self.is_current else None

    def belongs_to(self, group: str) -> bool:
        return group in self.groups


@dataclass(frozen=True)
class Measurement:
    """A dated number: a pain score, a BPI interference score, a lab or a T-score."""

    when: date
    value: float
    name: str
    source: str
    unverified_codes: tuple[str, ...] = ()
    abnormal: bool | None = None
    code: str = ""
    low: bool | None = None
    """Below the lab's own range (interpretation L/LL/LU or referenceRange.low)."""

    def describe(self) -> str:
        return f"{self.name} {self.value:g} on {self.when.isoformat()}"


@dataclass(frozen=True)
class BoneDensityTest:
    """A DXA: a result Observation, a DiagnosticReport or a Procedure."""

    when: date
    source: str
    name: str
    t_score: float | None
    unverified_codes: tuple[str, ...]
    site: str = ""


@dataclass(frozen=True)
class Record:
    """A coded condition, or an intervention (referral or procedure), found in the record."""

    groups: frozenset[str]
    name: str
    when: date | None
    source: str
    unverified_codes: tuple[str, ...]

    def describe(self) -> str:
        when = f" ({self.when.isoformat()})" if self.when else ""
        return f"{self.name}{when}"


@dataclass(frozen=True)
class PatientFacts:
    today: date
    unavailable: frozenset[DataSource]
    medications: tuple[MedicationUse, ...]
    bone_density_tests: tuple[BoneDensityTest, ...]
    pain_scores: tuple[Measurement, ...] = ()
    bpi_interference: tuple[Measurement, ...] = ()
    phq9: tuple[Measurement, ...] = ()
    tsh: tuple[Measurement, ...] = ()
    vitamin_d: tuple[Measurement, ...] = ()
    conditions: tuple[Record, ...] = ()
    interventions: tuple[Record, ...] = ()
    creatinine_clearance: tuple[Measurement, ...] = ()
    egfr: tuple[Measurement, ...] = ()
    serum_calcium: tuple[Measurement, ...] = ()

    def knows(self, *sources: DataSource) -> bool:
        return not self.unavailable.intersection(sources)

    def current(self, group: str) -> tuple[MedicationUse, ...]:
        return tuple(m for m in self.medications if m.is_current and m.belongs_to(group))

    def ever(self, group: str) -> tuple[MedicationUse, ...]:
        return tuple(m for m in self.medications if m.belongs_to(group))

    def stopped_within(self, group: str, days: int) -> tuple[MedicationUse, ...]:
        """Records of ``group`` no longer current whose end is less than ``days`` ago, or unknown
        (a stop without a date cannot show that the time has passed). Never-taken ones are left out."""
        return tuple(
            m for m in self.ever(group)
            if not m.is_current and m.status != "not-taken"
            and (m.end is None or (self.today - m.end).days < days)
        )

    @property
    def kidney_function(self) -> Measurement | None:
        """The latest creatinine clearance, or without one the latest eGFR (labels dose by CrCl)."""
        for results in (self.creatinine_clearance, self.egfr):
            if results:
                return results[-1]
        return None

    def has(self, group: str) -> tuple[Record, ...]:
        """Active conditions and interventions in a value set."""
        return tuple(f for f in (*self.conditions, *self.interventions) if group in f.groups)

    @property
    def current_aromatase_inhibitors(self) -> tuple[MedicationUse, ...]:
        return self.current(AROMATASE_INHIBITORS)

    @property
    def ai_start(self) -> date | None:
        starts = [m.start for m in self.current_aromatase_inhibitors if m.start]
        return min(starts, default=None)

    @property
    def last_bone_density_test(self) -> BoneDensityTest | None:
        return max(self.bone_density_tests, key=lambda test: test.when, default=None)

    @property
    def latest_pain(self) -> Measurement | None:
        return self.pain_scores[-1] if self.pain_scores else None

    @property
    def latest_bpi_interference(self) -> Measurement | None:
        return self.bpi_interference[-1] if self.bpi_interference else None


@dataclass(frozen=True)
class DraftedOrder:
    """A selected order-select draft whose drug is in one of the value sets."""

    resource_id: str
    name: str
    groups: frozenset[str]
    unverified_codes: tuple[str, ...]


Coded = tuple[Resource, tuple[CodeMatch, ...]]
"""A resource with every value-set membership of its code."""


def unverified(matches: Iterable[CodeMatch]) -> tuple[str, ...]:
    return tuple(sorted({f"{m.code} ({m.display})" for m in matches if not m.verified}))
