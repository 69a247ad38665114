"""Before a bone-modifying agent is suggested: kidney function, calcium, vitamin D, dental status,
and whether the patient is already on one or has let denosumab lapse (DESIGN §4, bone-protection).

Each check is said on the card whatever its result, so the clinician sees what was considered and
what was not on file; a known contraindication (the label's kidney threshold, low calcium, a coded
osteonecrosis of the jaw) stops the suggestion. Thresholds come from ``[bone-protection]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.clinical.dates import months_before
from cds_service.clinical.facts.model import MedicationUse, PatientFacts

BONE_MODIFYING_AGENTS = "bone-modifying-agents"
DENOSUMAB = "denosumab"


@dataclass(frozen=True)
class AgentCheck:
    considered: tuple[str, ...]
    """One line each for kidney function, calcium, vitamin D and dental status."""
    contraindications: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.contraindications


def agent_check(
    facts: PatientFacts, min_kidney_function: float, contraindication_sets: tuple[str, ...],
    min_vitamin_d_ng_ml: float,
) -> AgentCheck:
    considered: list[str] = []
    against: list[str] = []
    kidney = facts.kidney_function
    if kidney is None:
        considered.append("Kidney function: no creatinine clearance or eGFR on file; check before starting.")
    else:
        name = "Creatinine clearance" if kidney in facts.creatinine_clearance else "eGFR"
        result = f"{name} {kidney.value:g} mL/min ({kidney.when.isoformat()})"
        if kidney.value < min_kidney_function:
            against.append(f"{result}: below {min_kidney_function:g}, the label's limit for this "
                           "bisphosphonate. Denosumab is not cleared by the kidney (watch calcium).")
        else:
            considered.append(f"Kidney function: {result}.")
    calcium = facts.serum_calcium[-1] if facts.serum_calcium else None
    if calcium is None:
        considered.append("Serum calcium: none on file; check before starting.")
    elif calcium.low:
        against.append(f"Serum calcium {calcium.value:g} ({calcium.when.isoformat()}) is low: correct "
                       "hypocalcemia before a bisphosphonate.")
    else:
        considered.append(f"Serum calcium {calcium.value:g} ({calcium.when.isoformat()}).")
    vitamin_d = facts.vitamin_d[-1] if facts.vitamin_d else None
    if vitamin_d is None:
        considered.append("25-OH vitamin D: none on file; check and replete before starting.")
    elif vitamin_d.value < min_vitamin_d_ng_ml:
        considered.append(f"25-OH vitamin D {vitamin_d.value:g} ng/mL ({vitamin_d.when.isoformat()}) "
                          "is low: replete it first.")
    else:
        considered.append(f"25-OH vitamin D {vitamin_d.value:g} ng/mL ({vitamin_d.when.isoformat()}).")
    jaw = [record for group in contraindication_sets for record in facts.has(group)]
    if jaw:
        against.append(f"{jaw[0].name}: no bisphosphonate without a specialist's decision.")
    else:
        considered.append("Dental status: no osteonecrosis of the jaw on the problem list; ask about "
                          "dental health and planned dental work before starting.")
    return AgentCheck(tuple(considered), tuple(against))


def lapsed_denosumab(facts: PatientFacts, interval_months: int) -> str | None:
    """Denosumab stopped, or its last dose more than ``interval_months`` ago while not replaced."""
    uses = facts.ever(DENOSUMAB)
    if not uses:
        return None
    stopped = [use for use in uses if use.status == "stopped"]
    doses = [taken for use in uses if (taken := use.last_taken) is not None]
    last = max(doses, default=None)
    overdue = last is not None and last < months_before(facts.today, interval_months)
    current_open = any(use.is_current and use.last_taken is None for use in uses)
    if not stopped and (not overdue or current_open):
        return None
    when = f"last dose {last.isoformat()}" if last else "last dose not recorded"
    state = "stopped" if stopped else f"overdue (given every {interval_months} months)"
    return (f"Denosumab {state}, {when}: stopping or delaying it risks rebound bone loss and multiple "
            "vertebral fractures. Give the next dose, or start a bisphosphonate if it is being stopped.")


def other_bone_agents(facts: PatientFacts) -> tuple[MedicationUse, ...]:
    """Bone-modifying agents in place now: any bisphosphonate or denosumab, by brand or strength."""
    return facts.current(BONE_MODIFYING_AGENTS)
