"""The two CDS services: discovery entries, the data each reads, and how it decides.

Prefetch templates are built at start-up from the ValueSets, so the codes a query asks for
and the codes the facts recognise come from one place. Templates use only CDS Hooks 2.0
tokens and the 2.0 query subset (token equality lists, ``_sort``, ``_count``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .facts import BONE_DENSITY, MEDICATIONS, PatientFacts
from .fhirdata import bundle_resources, codings, reference_key
from .findings import Finding
from .knowledge import Knowledge
from .protocol import OrderSelectContext, PatientViewContext, ServiceDescription
from .rules import evaluate_patient_view

PATIENT_VIEW = "aimss-patient-view"
ORDER_SELECT = "aimss-order-select"

Evaluate = Callable[[PatientFacts, Knowledge, Any], list[Finding]]


@dataclass(frozen=True)
class DataKey:
    """One prefetch key: its template and the data source (as facts name it) it feeds."""

    name: str
    template: str
    source: str


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str
    keys: tuple[DataKey, ...]
    required_sources: frozenset[str]
    context_model: type[PatientViewContext]
    evaluate: Evaluate
    needs_data: Callable[[Any, Knowledge], bool] = lambda context, knowledge: True

    @property
    def prefetch(self) -> dict[str, str]:
        return {key.name: key.template for key in self.keys}

    def sources_of(self, key_names: Mapping[str, str]) -> frozenset[str]:
        return frozenset(key.source for key in self.keys if key.name in key_names)

    def describe(self) -> ServiceDescription:
        return ServiceDescription(
            hook=self.hook,
            id=self.id,
            title=self.title,
            description=self.description,
            usageRequirements=self.usage_requirements,
            prefetch=self.prefetch,
        )


def build_services(knowledge: Knowledge) -> dict[str, CdsService]:
    keys = _patient_keys(knowledge)
    usage = (
        "Needs read access to the patient's MedicationStatement, MedicationRequest, Observation "
        "and Procedure resources, through prefetch or `fhirServer` with `fhirAuthorization`. "
        "Calls must carry a JWT from a trusted issuer."
    )
    services = (
        CdsService(
            id=PATIENT_VIEW,
            hook="patient-view",
            title="AIMSS: keep patients on their aromatase inhibitor",
            description=(
                "For patients on an aromatase inhibitor: musculoskeletal symptoms (AIMSS), "
                "bone health and adherence, with the data and evidence behind each card."
            ),
            usage_requirements=usage,
            keys=keys,
            required_sources=frozenset({MEDICATIONS}),
            context_model=PatientViewContext,
            evaluate=lambda facts, knowledge, context: evaluate_patient_view(facts, knowledge),
        ),
        CdsService(
            id=ORDER_SELECT,
            hook="order-select",
            title="AIMSS: check orders against aromatase-inhibitor therapy",
            description=(
                "Checks a drafted medication against aromatase-inhibitor therapy: interactions, "
                "bone health at AI start, and what to expect from analgesics."
            ),
            usage_requirements=usage,
            keys=keys,
            required_sources=frozenset({MEDICATIONS}),
            context_model=OrderSelectContext,
            evaluate=lambda facts, knowledge, context: [],
            needs_data=lambda context, knowledge: bool(drafted_medications(context, knowledge)),
        ),
    )
    return {service.id: service for service in services}


def drafted_medications(
    context: OrderSelectContext, knowledge: Knowledge
) -> dict[str, frozenset[str]]:
    """Value-set memberships of each selected draft's drug, by ``Type/id``.

    The sandbox fires order-select before a drug is chosen and on every edit: a draft with no
    drug we know answers at once with no cards, without reading the chart.
    """
    selected = set(context.selections)
    drafted: dict[str, frozenset[str]] = {}
    for resource in bundle_resources({"entry": context.draftOrders.entry}):
        key = reference_key(resource)
        if key not in selected:
            continue
        groups = frozenset(
            m.valueset for m in knowledge.matches(codings(resource.get("medicationCodeableConcept")))
        )
        if groups:
            drafted[key] = groups
    return drafted


def _patient_keys(knowledge: Knowledge) -> tuple[DataKey, ...]:
    patient = "patient={{context.patientId}}"
    return (
        DataKey(
            "medicationStatements",
            f"MedicationStatement?{patient}&status=active,intended,on-hold,stopped,completed,not-taken",
            MEDICATIONS,
        ),
        DataKey(
            "medicationRequests",
            f"MedicationRequest?{patient}&status=active,on-hold,stopped,cancelled,completed",
            MEDICATIONS,
        ),
        DataKey(
            "dxaObservations",
            f"Observation?{patient}&code={_codes(knowledge, 'dxa-results')}&_sort=-date",
            BONE_DENSITY,
        ),
        DataKey(
            "dxaProcedures",
            f"Procedure?{patient}&code={_codes(knowledge, 'dxa-procedures')}",
            BONE_DENSITY,
        ),
    )


def _codes(knowledge: Knowledge, *valuesets: str) -> str:
    """A token search value: ``system|code`` of every member, comma-separated (OR)."""
    members = sorted({member for vs in valuesets for member in knowledge.codes(vs)})
    return ",".join(f"{system}|{code}" for system, code in members)
