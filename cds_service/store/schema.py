"""Every table of the service's shared state: one place to see what is stored.

Nothing here holds a patient id, a token or free text: patients appear only as a keyed hash
(``patients.PatientKeys``) and token ids only as a SHA-256.

Every row about a card, its feedback or a snooze names its ``tenant`` (the issuer of the call,
``tenants``), and no query joins rows of two tenants. Columns added after a table was first made
carry a server default so that ``migrate.upgrade`` can add them to an existing
database at start-up.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from cds_service.hooks.protocol import CARD_ID_MAX_LENGTH, REASON_CODE_MAX_LENGTH

from .tenants import BEFORE_TENANTS

metadata = MetaData()

TENANT_LENGTH = 255
"""Room for an issuer URL; the issuers file is refused at start-up with a longer one."""


def tenant_column() -> Column[str]:
    """Rows stored before tenants existed read as ``BEFORE_TENANTS``."""
    return Column("tenant", String(TENANT_LENGTH), nullable=False, server_default=BEFORE_TENANTS)


feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedup_key", String(64), nullable=False, unique=True),
    Column("service_id", String(100), nullable=False),
    tenant_column(),
    Column("card_uuid", String(CARD_ID_MAX_LENGTH), nullable=False, index=True),
    Column("outcome", String(20), nullable=False),
    Column("accepted_suggestions", Text),
    Column("override_system", Text),
    Column("override_code", String(REASON_CODE_MAX_LENGTH)),
    Column("override_has_comment", Boolean, nullable=False, default=False),
    Column("outcome_timestamp", String(40), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # The service's own date when it arrived: snoozes count days from it (injected clock).
    Column("received_on", Date, nullable=False),
)

issued_cards = Table(
    "issued_cards",
    metadata,
    Column("card_uuid", String(100), primary_key=True),
    Column("service_id", String(100), nullable=False),
    tenant_column(),
    Column("topic", String(100), nullable=False),
    Column("indicator", String(20), nullable=False),
    Column("patient_key", String(64), nullable=False),  # read through patient_overrides
    Column("issued_on", Date, nullable=False, index=True),
    # Computed and recorded but not returned: the tenant's rollout mode kept it silent.
    Column("silent", Boolean, nullable=False, server_default=false()),
)

issued_recommendations = Table(
    "issued_recommendations",
    metadata,
    # What each issued card held: one row per recommendation on it (suggestion_uuid ""), and
    # one per suggestion with the recommendation it carries out. Feedback names only card and
    # suggestion uuids; this is how the report counts per recommendation on grouped cards.
    Column("card_uuid", String(100), primary_key=True),
    Column("recommendation", String(100), primary_key=True),
    Column("suggestion_uuid", String(100), primary_key=True),
)

patient_overrides = Table(
    "patient_overrides",
    metadata,
    # An override (with a reason of our CodeSystem) of a card, with the patient and topic of
    # that card: what a snooze is read from, in time proportional to the patient's overrides
    # rather than to every card ever issued for the patient. See ``issued.link_overrides``.
    Column("feedback_id", Integer, primary_key=True),
    tenant_column(),
    Column("patient_key", String(64), nullable=False),
    Column("topic", String(100), nullable=False),
    Column("override_code", String(REASON_CODE_MAX_LENGTH), nullable=False),
    Column("received_on", Date, nullable=False),
    Index("ix_patient_overrides_patient", "patient_key", "received_on"),
)
# Snoozes of patient keys made before tenants (HMAC without the tenant) match no key made since:
# they lapse at the upgrade, at most ``snooze.days`` early.

seen_jti = Table(
    "seen_jti",
    metadata,
    Column("jti_hash", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

service_secrets = Table(
    "service_secrets",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("value", String(128), nullable=False),
)

store_probe = Table(
    "store_probe",
    metadata,
    # One row rewritten by every readiness check: a committed write is the proof that the
    # store takes writes (a full disk refuses it).
    Column("name", String(50), primary_key=True),
    Column("checked_at", BigInteger, nullable=False),
)
