"""CDS Hooks 2.0 wire models: requests we accept and the responses we send.

Responses never carry ``null`` or empty members (spec "Use of JSON"): optional lists are
``None`` rather than ``[]`` and everything is dumped with ``exclude_none``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

NonEmpty = Annotated[str, StringConstraints(min_length=1)]
TypedReference = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")]
FhirId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]

CARD_ID_MAX_LENGTH = 100
"""Feedback's ``card`` and a reason's ``code`` are stored in columns this long (``store.schema``):
a longer one is refused with a 400 before anything of the request is stored."""
REASON_CODE_MAX_LENGTH = 100
_NO_NUL = r"^[^\x00]*$"  # PostgreSQL stores no NUL character in text
StoredId = Annotated[
    str, StringConstraints(min_length=1, max_length=CARD_ID_MAX_LENGTH, pattern=_NO_NUL)
]
StoredCode = Annotated[
    str, StringConstraints(min_length=1, max_length=REASON_CODE_MAX_LENGTH, pattern=_NO_NUL)
]
StoredText = Annotated[str, StringConstraints(pattern=_NO_NUL)]


class _Lenient(BaseModel):
    """Unknown members (``extension`` and future fields) are accepted and kept."""

    model_config = ConfigDict(extra="allow")


class FhirAuthorization(_Lenient):
    access_token: NonEmpty
    token_type: NonEmpty
    expires_in: int
    scope: NonEmpty
    subject: NonEmpty
    patient: str | None = None


class PatientViewContext(_Lenient):
    userId: TypedReference
    patientId: FhirId
    encounterId: FhirId | None = None


class DraftOrders(_Lenient):
    """The order-select ``draftOrders`` Bundle; ``Bundle.type`` is not required (the sandbox omits it)."""

    resourceType: Literal["Bundle"]
    entry: list[dict[str, Any]] = Field(default_factory=list)


class OrderSelectContext(PatientViewContext):
    selections: Annotated[list[TypedReference], Field(min_length=1)]
    draftOrders: DraftOrders


class HookRequest(_Lenient):
    hook: NonEmpty
    hookInstance: NonEmpty
    fhirServer: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")] | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, dict[str, Any] | None] | None = None

    @field_validator("fhirServer")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        """``user:pw@`` would make the client send them instead of the Bearer token."""
        if value is not None and "@" in urlsplit(value).netloc:
            raise ValueError("fhirServer must not carry credentials (user:password@)")
        return value

    @model_validator(mode="after")
    def _authorization_needs_server(self) -> HookRequest:
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirAuthorization is present but fhirServer is missing (cds-r-1)")
        return self


class Coding(BaseModel):
    system: str
    code: str
    display: str | None = None


class Source(BaseModel):
    label: str
    url: str | None = None
    topic: Coding | None = None


class Action(BaseModel):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None


class Suggestion(BaseModel):
    label: str
    uuid: str
    isRecommended: bool | None = None
    actions: Annotated[list[Action], Field(min_length=1)] | None = None
    extension: dict[str, Any] | None = None
    """The recommendation this suggestion carries out (``clinical.cards``)."""


class Link(BaseModel):
    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"


RECOMMENDATIONS_EXTENSION = "org.example.aimss-cds.recommendations"
"""Card extension: the recommendations (topic Codings) a grouped card holds (DESIGN §2)."""
SUGGESTION_EXTENSION = "org.example.aimss-cds.recommendation"
"""Suggestion extension: the recommendation (a topic Coding) the suggestion carries out."""

SUMMARY_MAX = 139
"""CDS Hooks: a card's summary is under 140 characters."""


class Card(BaseModel):
    uuid: str
    summary: Annotated[str, StringConstraints(min_length=1, max_length=SUMMARY_MAX)]
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: Annotated[list[Suggestion], Field(min_length=1)] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: Annotated[list[Coding], Field(min_length=1)] | None = None
    links: Annotated[list[Link], Field(min_length=1)] | None = None
    extension: dict[str, Any] | None = None
    """A grouped card's recommendations (``clinical.cards``)."""

    @model_validator(mode="after")
    def _suggestions_need_selection_behavior(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("cards with suggestions need a selectionBehavior")
        return self


class HookResponse(BaseModel):
    cards: list[Card]

    def to_json_bytes(self) -> bytes:
        """The response body, serialized by pydantic-core in one pass (no dict in between)."""
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)


class ServiceDescription(BaseModel):
    hook: str
    id: str
    title: str
    description: str
    usageRequirements: str
    prefetch: dict[str, str]


class Discovery(BaseModel):
    services: list[ServiceDescription]


class AcceptedSuggestion(_Lenient):
    id: Annotated[str, StringConstraints(min_length=1, pattern=_NO_NUL)]


class ReasonCoding(_Lenient):
    """An override reason as feedback sends it; its system and code are stored."""

    system: StoredText
    code: StoredCode
    display: str | None = None


class OverrideReason(_Lenient):
    reason: ReasonCoding | None = None
    userComment: str | None = None


class FeedbackItem(_Lenient):
    card: StoredId
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: Annotated[
        str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
    ]

    @model_validator(mode="after")
    def _accepted_needs_suggestions(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an accepted outcome needs acceptedSuggestions (cds-fb-2)")
        return self


class FeedbackRequest(_Lenient):
    feedback: Annotated[list[FeedbackItem], Field(min_length=1)]


def operation_outcome(diagnostics: str, code: str = "invalid") -> dict[str, Any]:
    """The FHIR OperationOutcome body of every non-2xx answer except 401."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }


_UNSAFE = re.compile(r"[^\x20-\x7e]")


def describe_validation_errors(errors: list[dict[str, Any]], limit: int = 5) -> str:
    """A short, patient-data-free summary of pydantic errors: locations and messages, no values."""
    parts = []
    for error in errors[:limit]:
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{location or 'body'}: {_UNSAFE.sub('?', str(error.get('msg', 'invalid')))}")
    more = len(errors) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
