"""Realistic charts for the benchmark: a year of pain scores, several DXAs, a dozen medications.

Built from the sandbox's resource builders and codes (every code is one of the reference's), so
the benchmark's data is shaped like the sandbox's and the EHRs'. Dates are relative to ``today``.
"""

from __future__ import annotations

from datetime import date, timedelta

from cds_service.clinical.dates import months_before
from sandbox.synthetic import (
    ACETAMINOPHEN_500MG,
    ANASTROZOLE_1MG,
    BPI_INTERFERENCE,
    BREAST_CANCER,
    CALCIUM_CARBONATE,
    CHOLECALCIFEROL,
    DEPRESSION,
    DULOXETINE_30MG,
    DXA_FEMUR_T,
    DXA_SPINE_T,
    IBUPROFEN_600MG,
    ICD10,
    JOINT_PAIN_HANDS,
    LETROZOLE_2_5MG,
    NAPROXEN_500MG,
    PHQ9,
    PT_REFERRAL,
    SNOMED,
    TAMOXIFEN_10MG,
    TRIGGER_FINGER,
    TSH,
    VITAMIN_D,
    SandboxPatient,
    bpi_response,
    condition,
    dxa_procedure,
    medication_request,
    medication_statement,
    observation,
    pain,
    referral,
)

# Three more drugs of the reference (RxNorm), so the chart holds a dozen medications.
GABAPENTIN_300MG = ("310431", "gabapentin 300 MG Oral Capsule")
PREGABALIN_75MG = ("483450", "pregabalin 75 MG Oral Capsule")
CELECOXIB_200MG = ("205323", "celecoxib 200 MG Oral Capsule")


def realistic_patients(today: date, count: int = 3) -> list[SandboxPatient]:
    """``count`` charts alike in size, each with its own values (so no two answers are equal)."""
    return [_chart(f"bench-{n}", today, variant=n) for n in range(count)]


def _chart(pid: str, today: date, variant: int) -> SandboxPatient:
    ai_start = months_before(today, 14 + variant)
    months = lambda n: months_before(today, n)  # noqa: E731 (a local shorthand)
    weekly_pain = [
        pain(pid, f"{pid}-nrs-{week}", today - timedelta(weeks=week), float((3 + week + variant) % 8))
        for week in range(52)
    ]
    monthly_interference = [
        observation(pid, f"{pid}-bpi-{m}", BPI_INTERFERENCE, months(m), float((4 + m + variant) % 9), "{score}")
        for m in range(12)
    ]
    bpi_forms = [
        bpi_response(pid, f"{pid}-qr-{q}", months(3 * q), {
            "severity-worst": 7, "severity-least": 2, "severity-average": 5, "severity-now": 4,
            "interference-general-activity": 6, "interference-mood": 5 + variant % 3,
            "interference-walking": 7, "interference-work": 6, "interference-relations": 4,
            "interference-sleep": 7, "interference-enjoyment": 6,
        })
        for q in range(4)
    ]
    scans = [(ai_start, -1.0), (months(7), -1.4), (months(1), -1.9 - variant / 10)]
    dxa = [
        resource
        for n, (when, t_score) in enumerate(scans)
        for resource in (
            observation(pid, f"{pid}-dxa-spine-{n}", DXA_SPINE_T, when, t_score, "{T-score}"),
            observation(pid, f"{pid}-dxa-femur-{n}", DXA_FEMUR_T, when, t_score + 0.3, "{T-score}"),
            dxa_procedure(pid, f"{pid}-dxa-proc-{n}", when),
        )
    ]
    medications = [
        medication_statement(pid, f"{pid}-ai", ANASTROZOLE_1MG, ai_start),
        medication_request(pid, f"{pid}-ai-rx", ANASTROZOLE_1MG, months(1)),
        medication_statement(pid, f"{pid}-letrozole", LETROZOLE_2_5MG, months(20 + variant), "stopped"),
        medication_statement(pid, f"{pid}-tamoxifen", TAMOXIFEN_10MG, months(60), "completed"),
        medication_statement(pid, f"{pid}-calcium", CALCIUM_CARBONATE, months(12)),
        medication_statement(pid, f"{pid}-vitd3", CHOLECALCIFEROL, months(12)),
        medication_statement(pid, f"{pid}-naproxen", NAPROXEN_500MG, months(6), "stopped"),
        medication_statement(pid, f"{pid}-acetaminophen", ACETAMINOPHEN_500MG, months(3)),
        medication_request(pid, f"{pid}-ibuprofen", IBUPROFEN_600MG, months(9), "completed"),
        medication_request(pid, f"{pid}-celecoxib", CELECOXIB_200MG, months(8), "stopped"),
        medication_request(pid, f"{pid}-gabapentin", GABAPENTIN_300MG, months(5), "stopped"),
        medication_request(pid, f"{pid}-pregabalin", PREGABALIN_75MG, months(4), "cancelled"),
        medication_request(pid, f"{pid}-duloxetine", DULOXETINE_30MG, months(2), "stopped"),
    ]
    labs = [
        observation(pid, f"{pid}-tsh-{n}", TSH, months(2 + 12 * n), 2.4, "mIU/L") for n in range(2)
    ] + [
        observation(pid, f"{pid}-vitd-{n}", VITAMIN_D, months(2 + 12 * n), 24.0, "ng/mL") for n in range(2)
    ] + [
        observation(pid, f"{pid}-phq9-{n}", PHQ9, months(2 + 6 * n), 8.0, "{score}") for n in range(2)
    ]
    conditions = [
        condition(pid, f"{pid}-cancer", ICD10, BREAST_CANCER, months(30)),
        condition(pid, f"{pid}-trigger", SNOMED, TRIGGER_FINGER, months(4)),
        condition(pid, f"{pid}-hand-pain", ICD10, JOINT_PAIN_HANDS, months(6)),
        condition(pid, f"{pid}-depression", ICD10, DEPRESSION, months(10)),
    ]
    resources = (
        *medications, *weekly_pain, *monthly_interference, *bpi_forms, *dxa, *labs, *conditions,
        referral(pid, f"{pid}-pt", PT_REFERRAL, months(5)),
    )
    return SandboxPatient(
        id=pid,
        name=f"Bench Patient{variant}",
        story="A busy chart: a year of weekly pain scores, three DXAs, a dozen medications.",
        expected=frozenset(),
        resources=resources,
    )
