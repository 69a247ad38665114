"""Every table of the service's shared state: one place to see what is stored.

Nothing here holds a patient id, a token or free text: patients appear only as a keyed hash
(``patients.PatientKeys``) and token ids only as a SHA-256.
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
)

metadata = MetaData()

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedup_key", String(64), nullable=False, unique=True),
    Column("service_id", String(100), nullable=False),
    Column("card_uuid", String(100), nullable=False, index=True),
    Column("outcome", String(20), nullable=False),
    Column("accepted_suggestions", Text),
    Column("override_system", Text),
    Column("override_code", String(100)),
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
    Column("topic", String(100), nullable=False),
    Column("indicator", String(20), nullable=False),
    Column("patient_key", String(64), nullable=False),  # read through patient_overrides
    Column("issued_on", Date, nullable=False, index=True),
)

order_card_drafts = Table(
    "order_card_drafts",
    metadata,
    # The draft an order-time card was about (a SHA-256 of its reference and drug codes), on
    # which hook, and when: what lets order-sign leave out a safety card already overridden at
    # order-select for the same patient, draft and topic (``issued.overridden_at_selection``).
    Column("card_uuid", String(100), primary_key=True),
    Column("hook", String(40), nullable=False),
    Column("patient_key", String(64), nullable=False),
    Column("topic", String(100), nullable=False),
    Column("draft_key", String(64), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Index("ix_order_card_drafts_patient", "patient_key", "hook", "issued_at"),
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
    Column("patient_key", String(64), nullable=False),
    Column("topic", String(100), nullable=False),
    Column("override_code", String(100), nullable=False),
    Column("received_on", Date, nullable=False),
    Index("ix_patient_overrides_patient", "patient_key", "received_on"),
)

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
