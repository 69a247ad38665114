"""Before a bone-modifying agent is suggested: kidney function, calcium, vitamin D, dental status,
and whether the patient is already on one or has let denosumab lapse (DESIGN §4, bone-protection).

Each check is stated on the card whatever its result, so the clinician sees what was considered
and what was not on file; a known contraindication (the label's kidney limit, low calcium, a coded
osteonecrosis of the jaw) stops the suggestion. Thresholds come from ``[bone-protection]``; the
words from card-text.toml.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds_service.clinical.dates import months_before
from cds_service.clinical.facts.model import MedicationUse, PatientFacts
from cds_service.knowledge.wording import ParamValue

BONE_MODIFYING_AGENTS = "bone-modifying-agents"
DENOSUMAB = "denosumab"


@dataclass(frozen=True)
class AgentCheck:
    params: dict[str, ParamValue]
    """What was found: results on file, and any contraindication (``agent_*`` keys)."""
    notes: tuple[str, ...]
    """Lines for what was not on file or must be asked (card-text.toml notes)."""
    allowed: bool


def agent_check(
    facts: PatientFacts, min_kidney_function: float, contraindication_sets: tuple[str, ...],
    min_vitamin_d_ng_ml: float,
) -> AgentCheck:
    params: dict[str, ParamValue] = {}
    notes: list[str] = []
    kidney = facts.kidney_function
    if kidney is None:
        notes.append("no_kidney")
    else:
        name = "creatinine clearance" if kidney in facts.creatinine_clearance else "eGFR"
        result = f"{name} {kidney.value:g} mL/min ({kidney.when.isoformat()})"
        if kidney.value < min_kidney_function:
            params |= {"agent_kidney_low": result, "agent_kidney_threshold": min_kidney_function}
        else:
            params["kidney_function"] = result
    calcium = facts.serum_calcium[-1] if facts.serum_calcium else None
    if calcium is None:
        notes.append("no_calcium")
    else:
        key = "agent_calcium_low" if calcium.low else "calcium"
        params[key] = f"{calcium.value:g} ({calcium.when.isoformat()})"
    vitamin_d = facts.vitamin_d[-1] if facts.vitamin_d else None
    if vitamin_d is None:
        notes.append("no_vitamin_d")
    else:
        key = "vitamin_d_low" if vitamin_d.value < min_vitamin_d_ng_ml else "vitamin_d"
        params[key] = f"{vitamin_d.value:g} ng/mL ({vitamin_d.when.isoformat()})"
    if jaw := [record for group in contraindication_sets for record in facts.has(group)]:
        params["agent_jaw"] = tuple(dict.fromkeys(record.name for record in jaw))
    else:
        notes.append("dental")
    allowed = not {"agent_kidney_low", "agent_calcium_low", "agent_jaw"} & params.keys()
    return AgentCheck(params, tuple(notes), allowed)


@dataclass(frozen=True)
class DenosumabLapse:
    stopped: bool
    last_dose: date | None


def lapsed_denosumab(facts: PatientFacts, interval_months: int) -> DenosumabLapse | None:
    """Denosumab stopped, or its last known dose more than ``interval_months`` ago (an open-ended
    current course without dose dates is not judged overdue)."""
    uses = facts.ever(DENOSUMAB)
    if not uses:
        return None
    stopped = any(use.status == "stopped" for use in uses)
    last = max((taken for use in uses if (taken := use.last_taken) is not None), default=None)
    overdue = last is not None and last < months_before(facts.today, interval_months)
    current_open = any(use.is_current and use.last_taken is None for use in uses)
    if not stopped and (not overdue or current_open):
        return None
    return DenosumabLapse(stopped, last)


def other_bone_agents(facts: PatientFacts) -> tuple[MedicationUse, ...]:
    """Bone-modifying agents in place now: any bisphosphonate or denosumab, by brand or strength."""
    return facts.current(BONE_MODIFYING_AGENTS)
