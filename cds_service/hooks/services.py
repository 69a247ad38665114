"""The two CDS services: discovery entries, the data each reads, and how it decides.

Prefetch templates are built at start-up from the ValueSets, so the codes a query asks for
and the codes the facts recognise come from one place. Templates use only CDS Hooks 2.0
tokens and the 2.0 query subset (token equality lists, ``_sort``, ``_count``), plus
``_include`` of the Medications an order references (US Core servers support it; README, Data).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cds_service.clinical.facts.medications import drafted_orders
from cds_service.clinical.facts.model import (
    INTERVENTION_SETS,
    DataSource,
    DraftedOrder,
    PatientFacts,
)
from cds_service.clinical.findings import Finding
from cds_service.clinical.rules.order_select import evaluate_order_select
from cds_service.clinical.rules.patient_view import evaluate_patient_view
from cds_service.hooks.protocol import OrderSelectContext, PatientViewContext, ServiceDescription
from cds_service.knowledge.loader import Knowledge

PATIENT_VIEW = "aimss-patient-view"
ORDER_SELECT = "aimss-order-select"

Evaluate = Callable[[PatientFacts, Knowledge, Any], list[Finding]]

PAGE_SIZE = 100
"""``_count`` of every search: a year of weekly pain scores in one page. On a FHIR fallback each
further page is one more round trip after the last (servers default to 10-50 per page); a
server with a lower maximum still pages, and every page is read."""


@dataclass(frozen=True)
class DataKey:
    """One prefetch key: its template and the data source (as facts name it) it feeds."""

    name: str
    template: str
    source: DataSource


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str
    keys: tuple[DataKey, ...]
    required_sources: frozenset[DataSource]
    context_model: type[PatientViewContext]
    evaluate: Evaluate
    needs_data: Callable[[Any, Knowledge], bool] = lambda context, knowledge: True
    plan_cards: bool = False
    """Whether recommendations are grouped into plan cards (DESIGN §4 Presentation) when the
    rules' [presentation] asks for it; order-time safety cards stay one per topic and draft."""

    def grouped(self, knowledge: Knowledge) -> bool:
        return self.plan_cards and knowledge.rules.presentation.cards == "grouped"

    @property
    def prefetch(self) -> dict[str, str]:
        return {key.name: key.template for key in self.keys}

    def sources_of(self, key_names: Mapping[str, str]) -> frozenset[DataSource]:
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
            required_sources=frozenset({DataSource.MEDICATIONS}),
            context_model=PatientViewContext,
            evaluate=lambda facts, knowledge, context: evaluate_patient_view(facts, knowledge),
            plan_cards=True,
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
            required_sources=frozenset({DataSource.MEDICATIONS}),
            context_model=OrderSelectContext,
            evaluate=lambda facts, knowledge, context: evaluate_order_select(
                facts, knowledge, _drafts(context, knowledge)
            ),
            needs_data=lambda context, knowledge: bool(_drafts(context, knowledge)),
        ),
    )
    return {service.id: service for service in services}


def _drafts(context: OrderSelectContext, knowledge: Knowledge) -> tuple[DraftedOrder, ...]:
    """The selected drafts with a drug we know. The sandbox fires order-select before a drug is
    chosen and on every edit: such drafts answer at once with no cards, without reading the chart."""
    return drafted_orders(context.draftOrders.entry, context.selections, knowledge)


def _patient_keys(knowledge: Knowledge) -> tuple[DataKey, ...]:
    patient = "patient={{context.patientId}}"
    keys = (
        DataKey(
            "medicationStatements",
            f"MedicationStatement?{patient}&status=active,intended,on-hold,stopped,completed,not-taken"
            "&_include=MedicationStatement:medication",
            DataSource.MEDICATIONS,
        ),
        DataKey(
            "medicationRequests",
            f"MedicationRequest?{patient}&status=active,on-hold,stopped,cancelled,completed"
            "&_include=MedicationRequest:medication",
            DataSource.MEDICATIONS,
        ),
        DataKey(
            "dxaObservations",
            f"Observation?{patient}&code={_codes(knowledge, 'dxa-results')}&_sort=-date",
            DataSource.BONE_DENSITY,
        ),
        DataKey(
            "dxaProcedures",
            f"Procedure?{patient}&code={_codes(knowledge, 'dxa-procedures')}",
            DataSource.BONE_DENSITY,
        ),
        DataKey(
            "dxaReports",
            f"DiagnosticReport?{patient}&code={_codes(knowledge, 'dxa-results')}",
            DataSource.BONE_DENSITY,
        ),
        DataKey(
            "painObservations",
            f"Observation?{patient}&code={_codes(knowledge, 'pain-severity', 'bpi-interference')}"
            "&_sort=-date",
            DataSource.PAIN,
        ),
        DataKey("bpiResponses", f"QuestionnaireResponse?{patient}&status=completed,amended", DataSource.PAIN),
        DataKey(
            "labObservations",
            f"Observation?{patient}&code={_codes(knowledge, 'tsh', 'vitamin-d-25oh', 'phq9', 'creatinine-clearance', 'egfr', 'serum-calcium')}"
            "&_sort=-date",
            DataSource.LABS,
        ),
        DataKey("conditions", f"Condition?{patient}&clinical-status=active,recurrence,relapse", DataSource.CONDITIONS),
        DataKey(
            "interventionRequests",
            f"ServiceRequest?{patient}&code={_codes(knowledge, *INTERVENTION_SETS)}",
            DataSource.INTERVENTIONS,
        ),
        DataKey(
            "interventionProcedures",
            f"Procedure?{patient}&code={_codes(knowledge, *INTERVENTION_SETS)}",
            DataSource.INTERVENTIONS,
        ),
    )
    return tuple(DataKey(k.name, f"{k.template}&_count={PAGE_SIZE}", k.source) for k in keys)


def _codes(knowledge: Knowledge, *valuesets: str) -> str:
    """A token search value: ``system|code`` of every member, comma-separated (OR)."""
    members = sorted({member for vs in valuesets for member in knowledge.codes(vs)})
    return ",".join(f"{system}|{code}" for system, code in members)
