"""Is this deployment's configuration usable? Each problem is one line naming its setting.

``aimss-cds serve`` stops on the first problem with that line and no traceback; ``aimss-cds
check`` runs every check and prints a line for each. A problem is a ``ConfigurationError``:
its text never holds a secret (a database password, the patient-hash key) or a token.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cds_service.knowledge.loader import Knowledge, KnowledgeError, load_knowledge
from cds_service.settings import DEFAULT_DATABASE_URL, Settings
from cds_service.store.database import Database, engine_url
from cds_service.store.faults import StoreFault
from cds_service.store.schema import seen_jti
from cds_service.web.auth.issuers import TrustedIssuer, load_trusted_issuers
from cds_service.web.auth.public_sandbox import with_public_sandbox

PREFIX = "AIMSS_"


class ConfigurationError(ValueError):
    """One setting is unusable; ``str()`` is the one line an operator reads."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {_one_line(problem)}")
        self.setting = setting


def _one_line(text: str) -> str:
    """A multi-line message (pydantic's, a driver's) joined; links to pydantic's docs dropped."""
    lines = [line.strip() for line in text.strip().splitlines()]
    return "; ".join(line for line in lines if line and not line.startswith("For further info"))


def variable(field: str) -> str:
    """The environment variable of a ``Settings`` field."""
    return PREFIX + field.upper()


def load_settings() -> Settings:
    """``Settings`` from the environment; the first invalid value is a ``ConfigurationError``."""
    try:
        return Settings()
    except ValidationError as error:
        raise settings_problems(error)[0] from None


def settings_problems(error: ValidationError) -> list[ConfigurationError]:
    """One error per invalid value, without the value (it may be a secret)."""
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "settings"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(ConfigurationError(variable(field), message))
    return problems


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """Warnings for ``AIMSS_*`` variables no setting reads (pydantic-settings ignores them)."""
    known = [variable(field) for field in Settings.model_fields]
    warnings = []
    for name in sorted(environ if environ is not None else os.environ):
        if not name.startswith(PREFIX) or name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{name} is not a setting of AIMSS CDS and is ignored{hint}")
    return warnings


def trusted_issuers(settings: Settings) -> list[TrustedIssuer]:
    """The issuers file read and checked, plus the public sandbox when trusted."""
    issuers: list[TrustedIssuer] = []
    if settings.trusted_issuers_file is not None:
        try:
            issuers = load_trusted_issuers(settings.trusted_issuers_file)
        except ValueError as error:
            raise ConfigurationError(variable("trusted_issuers_file"), str(error)) from None
    return with_public_sandbox(issuers) if settings.trust_public_sandbox else issuers


def knowledge(settings: Settings) -> Knowledge:
    try:
        return load_knowledge(settings.profiles_dir, settings.rules_file)
    except KnowledgeError as error:
        rules = settings.rules_file is not None and str(settings.rules_file) in str(error)
        raise ConfigurationError(
            variable("rules_file" if rules else "profiles_dir"), str(error)
        ) from None


def redacted(database_url: str) -> str:
    """The database URL as it may be logged: without its password."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


def sqlite_path(database_url: str) -> Path | None:
    """The file of an SQLite URL; ``None`` for other databases and in-memory SQLite."""
    try:
        url = make_url(engine_url(database_url))
    except ArgumentError:
        return None
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database)


DatabaseState = Literal["ready", "not created yet"]
Status = Literal["ok", "warn", "FAIL"]
Line = tuple[Status, str]
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def check_database(settings: Settings, *, create: bool) -> DatabaseState:
    """The database answers and takes a write (rolled back). ``create=False`` (``check``) leaves
    a missing SQLite file uncreated and only checks its folder; ``serve`` creates it, and the
    default folder ``.data/`` with it."""
    setting, shown = variable("database_url"), redacted(settings.database_url)
    path = sqlite_path(settings.database_url)
    if path is not None and not path.exists():
        folder = path.parent.absolute()
        if settings.database_url == DEFAULT_DATABASE_URL and not folder.is_dir():
            if create:
                folder.mkdir(parents=True, exist_ok=True)
            else:
                folder = folder.parent  # where serve would make it
        if not folder.is_dir():
            raise ConfigurationError(setting, f"{shown}: the folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigurationError(setting, f"{shown}: the folder {folder} is not writable")
        if not create:
            return "not created yet"
    try:
        database = Database(settings.database_url)
    except ModuleNotFoundError as error:
        raise ConfigurationError(
            setting, f"{shown}: the driver {error.name} is not installed "
            "(PostgreSQL: pip install 'aimss-cds[postgres]')"
        ) from None
    except (ArgumentError, SQLAlchemyError, StoreFault) as error:
        raise database_problem(settings.database_url, error) from None
    try:
        _probe_write(database)
    except SQLAlchemyError as error:
        raise database_problem(settings.database_url, error) from None
    finally:
        database.close()
    return "ready"


def database_problem(database_url: str, error: Exception) -> ConfigurationError:
    """The driver's own words ("connection refused", "unable to open database file"), first line
    only: the rest is SQLAlchemy's statement and parameters, or a hint for a developer."""
    cause = getattr(error, "orig", None) or getattr(error, "condition", None) or error
    lines = str(cause).strip().splitlines()
    words = lines[0][:300] if lines else type(error).__name__
    return ConfigurationError(variable("database_url"), f"{redacted(database_url)}: {words}")


def _probe_write(database: Database) -> None:
    """A write on each engine, rolled back: a read-only file or role fails here, not at the
    first feedback."""
    probe = insert(seen_jti).values(jti_hash="aimss-cds check: rolled back", expires_at=0)
    for engine in (database.durable, database.fast):
        with engine.connect() as connection:
            transaction = connection.begin()
            connection.execute(probe)
            transaction.rollback()


@dataclass(frozen=True)
class Effective:
    """What ``serve`` runs with, for the one start-up line (no secrets)."""

    settings: Settings
    issuers: list[TrustedIssuer]
    workers: int

    def line(self) -> str:
        settings = self.settings
        auth = "off (AIMSS_AUTH_DISABLED=1)" if settings.auth_disabled else "jwt"
        issuers = ",".join(issuer.iss for issuer in self.issuers) or "none"
        return (
            f"configuration: database={redacted(settings.database_url)} "
            f"issuers={issuers} public_base_url={settings.public_base_url or '(listen address)'} "
            f"auth={auth} open_fhir={'yes' if settings.allow_open_fhir else 'no'} "
            f"workers={self.workers} rules_file={settings.rules_file or '-'} "
            f"patient_hash_key={'set' if settings.patient_hash_key else 'in database'} "
            f"log={settings.log_level}/{settings.log_format}"
        )


def check_all() -> list[Line]:
    """``aimss-cds check``: every check of the configuration read from the environment."""
    try:
        settings = Settings()
    except ValidationError as error:
        return [("FAIL", str(problem)) for problem in settings_problems(error)]
    lines: list[Line] = [("ok", "settings: every AIMSS_* value is valid")]
    checks = (_knowledge_line, _issuers_line, _database_line, _base_url_line, _development_lines)
    for check in checks:
        try:
            lines += check(settings)
        except ConfigurationError as error:
            lines.append(("FAIL", str(error)))
    return lines


def _knowledge_line(settings: Settings) -> list[Line]:
    loaded = knowledge(settings)
    rules = f", site rules {settings.rules_file}" if settings.rules_file else ""
    return [("ok", f"{variable('profiles_dir')}: knowledge OK: {len(loaded.valuesets)} value "
             f"sets, {len(loaded.recommendations)} recommendations, {len(loaded.activities)} "
             f"activity definitions{rules}")]


def _issuers_line(settings: Settings) -> list[Line]:
    setting = variable("trusted_issuers_file")
    issuers = trusted_issuers(settings)
    if issuers:
        names = ", ".join(issuer.iss for issuer in issuers)
        return [("ok", f"{setting}: {len(issuers)} trusted issuer(s): {names}")]
    if settings.auth_disabled:
        return []
    return [("warn", f"{setting}: unset: no issuer is trusted, every call will get 401")]


def _database_line(settings: Settings) -> list[Line]:
    shown = redacted(settings.database_url)
    if check_database(settings, create=False) == "not created yet":
        return [("ok", f"{variable('database_url')}: {shown} does not exist yet; its folder is "
                 "writable (serve creates it)")]
    return [("ok", f"{variable('database_url')}: {shown} reachable and writable")]


def _base_url_line(settings: Settings) -> list[Line]:
    setting, base = variable("public_base_url"), settings.public_base_url
    if base is None:
        return [("warn", f"{setting}: unset: a JWT's aud must be the address serve listens on "
                 "(--host/--port) plus the path; behind a proxy set it to the external URL")]
    parts = urlsplit(base)
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        return [("warn", f"{setting}: {base} is plain http: EHRs call over https")]
    return [("ok", f"{setting}: {base} (a JWT's aud is it plus the path called)")]


def _development_lines(settings: Settings) -> list[Line]:
    lines: list[Line] = []
    if settings.auth_disabled:
        lines.append(("warn", f"{variable('auth_disabled')}=1: JWT checks are off (development only)"))
    if settings.trust_public_sandbox:
        lines.append(("warn", f"{variable('trust_public_sandbox')}=1: anyone can sign as the "
                      "public sandbox (development only)"))
    if settings.allow_open_fhir:
        lines.append(("warn", f"{variable('allow_open_fhir')}=1: FHIR calls without a token and "
                      "over plain http are allowed (development only)"))
    return lines
