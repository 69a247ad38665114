"""The caller of a hook: a tenant (DESIGN §6), with what its issuers-file entry allows.

Each trusted issuer is a tenant. Everything stored is kept under its ``id``; ``fhir_servers``
(when set) are the only FHIR servers its calls may make the service contact; ``mode`` rolls the
service out: ``active`` answers with cards, ``silent`` computes and records them and answers
with none (a shadow run before go-live), ``users`` shows cards to the listed ``userId`` values
and runs silent for everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from cds_service.store.tenants import DEVELOPMENT_TENANT

Mode = Literal["active", "silent", "users"]
MODES: tuple[str, ...] = get_args(Mode)


@dataclass(frozen=True)
class Tenant:
    id: str
    fhir_servers: frozenset[str] | None = None
    """Base URLs without a trailing slash; ``None``: any FHIR server may be named."""
    mode: Mode = "active"
    users: frozenset[str] = frozenset()

    def may_contact(self, fhir_server: str) -> bool:
        return self.fhir_servers is None or fhir_server.rstrip("/") in self.fhir_servers

    def shows_cards_to(self, user_id: object) -> bool:
        """Whether this call's clinician sees the cards, or the call runs silent."""
        if self.mode == "users":
            return isinstance(user_id, str) and user_id in self.users
        return self.mode == "active"


DEVELOPMENT = Tenant(DEVELOPMENT_TENANT)
"""Every call with ``AIMSS_AUTH_DISABLED=1``: no issuer, any FHIR server, cards shown."""
