"""Patients are stored only as a keyed hash, never as an id.

The key is HMAC-SHA256 over the tenant, the ``fhirServer`` and the patient id (as a JSON array,
so no value can run into the next): the same id on two FHIR servers is two patients, and the
same patient seen by two tenants is two keys, so one tenant's feedback never touches another's
cards. The secret is ``AIMSS_PATIENT_HASH_KEY`` when set. When it is not, one random
secret is generated and kept in the database so that every worker and replica computes the
same keys; production should set the variable, so that a copy of the database alone cannot be
used to test guessed patient ids.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from sqlalchemy import select

from .database import Database
from .schema import service_secrets

_SECRET_NAME = "patient-hash-key"


class PatientKeys:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def for_database(cls, database: Database, configured: str | None) -> PatientKeys:
        """The configured secret, else the database's (created once, first writer wins)."""
        if configured:
            return cls(configured.encode())
        create = database.insert_ignoring_conflicts(service_secrets, "name").values(
            name=_SECRET_NAME, value=secrets.token_hex(32)
        )
        with database.writing(database.durable) as connection:
            connection.execute(create)
            stored: str = connection.execute(
                select(service_secrets.c.value).where(service_secrets.c.name == _SECRET_NAME)
            ).scalar_one()
        return cls(stored.encode())

    def key(self, fhir_server: str | None, patient_id: str, *, tenant: str) -> str:
        """The patient's stored identity; a trailing slash of the server URL does not matter."""
        message = json.dumps([tenant, (fhir_server or "").rstrip("/"), patient_id]).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
