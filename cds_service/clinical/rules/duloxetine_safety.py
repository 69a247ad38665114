"""What every card that proposes duloxetine checks first (DESIGN §4, "Safety rules every card keeps").

The plan's duloxetine, the multimodal bundle and the adherence card all ask here, so none of them
can suggest it beside an MAOI or linezolid (current or stopped within the washout), and each names
the other serotonergic drugs and the label's cautions the chart shows. The value sets and the
thresholds come from ``[duloxetine-safety]`` in rules.toml.
"""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.clinical.facts.model import Measurement, MedicationUse, PatientFacts, Record
from cds_service.clinical.rules.names import drug, names
from cds_service.knowledge.loader import Knowledge
from cds_service.knowledge.wording import ParamValue


@dataclass(frozen=True)
class DuloxetineSafety:
    """The chart's answer to "may duloxetine be suggested, and what must the card say?"."""

    contraindicated_by: tuple[MedicationUse, ...]
    serotonergic: tuple[MedicationUse, ...]
    hepatic: tuple[Record, ...]
    alcohol: tuple[Record, ...]
    glaucoma: tuple[Record, ...]
    bleeding: tuple[MedicationUse, ...]
    low_kidney_function: Measurement | None
    kidney_measure: str
    """What the kidney result is: creatinine clearance, or eGFR when no clearance is on file."""
    washout_days: int
    min_kidney_function: float

    @property
    def allowed(self) -> bool:
        """Duloxetine may be suggested (with its cautions): no MAOI or linezolid within the washout."""
        return not self.contraindicated_by

    def params(self) -> dict[str, ParamValue]:
        """Values for the wording (card-text.toml): one per finding the chart shows, none otherwise."""
        found: dict[str, ParamValue] = {}
        if self.contraindicated_by:
            found["contraindicated"] = tuple(_when(use) for use in self.contraindicated_by)
            found["washout_days"] = self.washout_days
        for key, items in (("serotonergic", self.serotonergic), ("hepatic", self.hepatic),
                           ("alcohol", self.alcohol), ("glaucoma", self.glaucoma),
                           ("bleeding", self.bleeding)):
            if items:
                found[key] = _names(items)
        if (kidney := self.low_kidney_function) is not None:
            found["kidney"] = f"{self.kidney_measure} {kidney.value:g} mL/min ({kidney.when.isoformat()})"
            found["kidney_threshold"] = self.min_kidney_function
        return found


def duloxetine_safety(facts: PatientFacts, knowledge: Knowledge) -> DuloxetineSafety:
    rules = knowledge.rules.duloxetine_safety
    contraindicated = {
        id(use): use
        for group in rules.contraindicated_sets
        for use in (*facts.current(group), *facts.stopped_within(group, rules.washout_days))
    }
    kidney = facts.kidney_function
    return DuloxetineSafety(
        contraindicated_by=tuple(contraindicated.values()),
        serotonergic=_current(facts, rules.serotonergic_sets, exclude=("duloxetine",)),
        hepatic=_conditions(facts, rules.hepatic_sets),
        alcohol=_conditions(facts, rules.alcohol_sets),
        glaucoma=_conditions(facts, rules.glaucoma_sets),
        bleeding=_current(facts, rules.bleeding_sets),
        low_kidney_function=kidney if kidney and kidney.value < rules.min_kidney_function else None,
        kidney_measure="creatinine clearance" if kidney in facts.creatinine_clearance else "eGFR",
        washout_days=rules.washout_days,
        min_kidney_function=rules.min_kidney_function,
    )


def _current(
    facts: PatientFacts, groups: tuple[str, ...], exclude: tuple[str, ...] = ()
) -> tuple[MedicationUse, ...]:
    found = {id(use): use for group in groups for use in facts.current(group)}
    return tuple(use for use in found.values() if not use.groups.intersection(exclude))


def _conditions(facts: PatientFacts, groups: tuple[str, ...]) -> tuple[Record, ...]:
    found = {id(record): record for group in groups for record in facts.has(group)}
    return tuple(found.values())


def _names(items: tuple[MedicationUse, ...] | tuple[Record, ...]) -> tuple[str, ...]:
    return names(items)


def _when(use: MedicationUse) -> str:
    if use.is_current:
        return drug(use)
    if use.end is None:
        return f"{drug(use)} ({use.status}, end date not recorded)"
    return f"{drug(use)} ({use.status} {use.end.isoformat()})"
