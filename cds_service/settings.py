"""Operator configuration: environment variables prefixed ``AIMSS_`` (DESIGN §8)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_DATABASE_URL = "sqlite:///.data/aimss-cds.db"
"""Under the working directory: ``serve``, ``report`` and ``scripts/run.sh`` share it."""
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def default_profiles_dir() -> Path:
    """The knowledge artifacts: inside an installed wheel, else the repository's folder."""
    installed = PACKAGE_DIR / "fhir_profiles"
    return installed if installed.is_dir() else PACKAGE_DIR.parent / "fhir_profiles"


class Settings(BaseSettings):
    """Every knob of the service; the names are a contract with deployment scripts."""

    model_config = SettingsConfigDict(env_prefix="AIMSS_", extra="ignore", frozen=True)

    public_base_url: str | None = Field(
        default=None,
        description="Base URL clients call (JWT `aud` checks behind a proxy); "
        "default: `listen_url`. Never taken from the request's Host header.",
    )
    listen_url: str | None = Field(
        default=None,
        description="The address the service listens on, as a URL; `aimss-cds serve` sets it "
        "from --host/--port. The JWT audience when `public_base_url` is unset.",
    )
    trusted_issuers_file: Path | None = Field(
        default=None, description="JSON file of trusted JWT issuers with a JWKS or a JWKS URL."
    )
    auth_disabled: bool = Field(
        default=False, description="Development only: accept calls without a JWT."
    )
    trust_public_sandbox: bool = Field(
        default=False,
        description="Development only: trust the public CDS Hooks Sandbox's published key set "
        "(its private key is public, so anyone can sign as it).",
    )
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="`sqlite:///path` or `postgresql://...` for feedback and shared state; "
        "default: .data/aimss-cds.db under the working directory.",
    )
    patient_hash_key: SecretStr | None = Field(
        default=None,
        description="Secret of the keyed hash that stands for a patient in the database; "
        "unset: a random one kept in the database.",
    )
    allow_open_fhir: bool = Field(
        default=False,
        description="Allow FHIR fallback calls without `fhirAuthorization` and over plain http.",
    )
    rules_file: Path | None = Field(
        default=None, description="A site's rules file overriding the shipped thresholds."
    )
    profiles_dir: Path = Field(
        default_factory=default_profiles_dir,
        description="Folder of FHIR knowledge artifacts (ValueSets, PlanDefinition...).",
    )
    fhir_request_timeout: float = Field(
        default=1.0, gt=0, description="Seconds allowed for one FHIR request."
    )
    hook_deadline: float = Field(
        default=1.5, gt=0, description="Seconds allowed for all FHIR fallback calls of one hook."
    )
    fhir_max_pages: int = Field(
        default=10, ge=1, description="Most Bundle pages followed per prefetch key."
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    log_format: Literal["text", "json"] = Field(
        default="text", description="`text` for people, `json` (one object a line) for pipelines."
    )
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024, gt=0, description="Largest request body accepted (413 above)."
    )
    max_header_bytes: int = Field(
        default=32 * 1024,
        gt=0,
        description="Largest request line and headers accepted by `serve` (431 above).",
    )
    header_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a client has to send a request's headers."
    )
    body_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a client has to send a request's body (408)."
    )
    max_resources_per_key: int = Field(
        default=5000,
        gt=0,
        description="Most resources read from one prefetch key; more make the key unavailable.",
    )
    max_resources_per_call: int = Field(
        default=10000,
        gt=0,
        description="Most resources read in one hook call; above, the largest keys are unavailable.",
    )
    docs_enabled: bool = Field(
        default=False, description="Serve /docs and /openapi.json (off: they map the attack surface)."
    )
    cors_origins: str = Field(
        default="*", description="Origins browsers may call from, comma-separated; `*`: any."
    )

    @field_validator("public_base_url", "listen_url")
    @classmethod
    def _absolute_base_url(cls, value: str | None) -> str | None:
        """``aud`` is compared with this plus the path: a typo here refuses every call."""
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL such as https://cds.example.org")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or a fragment")
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.upper()
