"""``aimss-cds``: the operator's command line (DESIGN §8).

A configuration problem is one line naming the setting and a non-zero exit, never a traceback
(``configuration``): ``serve`` checks before it starts the workers, ``check`` prints every check.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.config
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from importlib.metadata import version

from sqlalchemy.exc import SQLAlchemyError

from cds_service import configuration, logs
from cds_service.configuration import ConfigurationError, variable
from cds_service.metrics import MULTIPROC_ENV
from cds_service.settings import Settings

log = logging.getLogger("aimss_cds")

CANNOT_START = 2
"""``serve`` and ``report`` could not begin: a setting is wrong (the line says which)."""
PROBLEMS_FOUND = 1
"""``check`` ran every check and at least one failed."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="aimss-cds",
        description="AIMSS CDS: a CDS Hooks 2.0 service for aromatase-inhibitor therapy. "
        "Configured by AIMSS_* environment variables (see the README).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('aimss-cds')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the CDS Hooks service")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")

    commands.add_parser(
        "check",
        help="check the configuration (settings, issuers file, database, base URL, knowledge "
        "and rules), one line per check; exits 1 on any problem",
    )

    report = commands.add_parser(
        "report",
        help="acceptance and override rates per card topic and per recommendation, from the feedback store",
    )
    report.add_argument(
        "--days", type=_days, metavar="N", help="only cards issued in the last N days (default all)"
    )
    report.add_argument("--tenant", metavar="ISS", help="only this tenant (a JWT issuer)")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")

    args = parser.parse_args(argv)
    if args.command == "check":
        return _check()
    try:
        settings = configuration.load_settings()
    except ConfigurationError as error:
        return _cannot_start(error)
    logging.config.dictConfig(logs.config(settings.log_level, settings.log_format))
    logs.install()
    if args.command == "report":
        return _report(settings, args.days, args.tenant, args.json)
    return _serve(settings, args.host, args.port, args.workers)


def _cannot_start(error: ConfigurationError) -> int:
    print(f"aimss-cds: cannot start: {error}", file=sys.stderr)
    return CANNOT_START


def _days(value: str) -> int:
    days = int(value)
    if days < 0:
        raise argparse.ArgumentTypeError("N must be 0 or more")
    return days


def _report(settings: Settings, days: int | None, tenant: str | None, as_json: bool) -> int:
    """Reads the database ``serve`` writes, opened read-only: a wrong path is a message, never
    a new empty database."""
    from cds_service.store import Database, StoreError, StoreFault
    from cds_service.store.report import (
        format_report,
        recommendation_report,
        tenant_label,
        tenant_report,
    )

    path = configuration.sqlite_path(settings.database_url)
    if path is not None and not path.exists():
        print(
            f"aimss-cds: no database at {path.absolute()} "
            f"({variable('database_url')}={configuration.redacted(settings.database_url)}): "
            "run the report where `aimss-cds serve` runs, with the same "
            f"{variable('database_url')}",
            file=sys.stderr,
        )
        return CANNOT_START
    since = datetime.now(UTC).date() - timedelta(days=days) if days is not None else None
    try:
        database = Database(settings.database_url, read_only=True)
        try:
            report = tenant_report(database, since, tenant)
            recommendations = recommendation_report(database, since, tenant)
        finally:
            database.close()
    # unreachable, no tables, no driver
    except (SQLAlchemyError, StoreFault, StoreError, ModuleNotFoundError) as error:
        problem = configuration.database_problem(settings.database_url, error)
        print(f"aimss-cds: cannot read the database: {problem}", file=sys.stderr)
        return CANNOT_START
    if as_json:
        window = since.isoformat() if since else None
        tenants = [
            {
                "tenant": tenant_label(name),
                "topics": [row.to_json() for row in rows],
                "recommendations": [row.to_json() for row in recommendations.get(name, [])],
            }
            for name, rows in report.items()
        ]
        print(json.dumps({"since": window, "tenants": tenants}, indent=2))
    else:
        print(format_report(report, since))
        if recommendations:
            print()
            print(format_report(recommendations, since, by="recommendation"))
    return 0


def _check() -> int:
    """Every check, one line each (``ok``, ``warn`` or ``FAIL``); 1 if any failed."""
    lines = [("warn", warning) for warning in configuration.unknown_variables()]
    lines += configuration.check_all()
    for status, text in lines:
        print(f"{status:<4}  {text}")
    return PROBLEMS_FOUND if any(status == "FAIL" for status, _ in lines) else 0


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def _bind_refusal(host: str, settings: Settings) -> ConfigurationError | None:
    """A wildcard address is no URL a client calls: with JWT checks on, the audience must then
    come from AIMSS_PUBLIC_BASE_URL (never from the request's Host header)."""
    if host in WILDCARD_HOSTS and not settings.auth_disabled and not settings.public_base_url:
        return ConfigurationError(
            variable("public_base_url"),
            f"unset, and --host {host or '(empty)'} listens on every address, so JWTs cannot be "
            "checked against it: set it to the URL clients call",
        )
    return None


def _listen_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _serve(settings: Settings, host: str, port: int, workers: int) -> int:
    import uvicorn

    from cds_service.web.server import BoundedHttpToolsProtocol

    for warning in configuration.unknown_variables():
        log.warning("%s", warning)
    if (refusal := _bind_refusal(host, settings)) is not None:
        return _cannot_start(refusal)
    # The workers read it as AIMSS_LISTEN_URL: the JWT audience without a public base URL.
    os.environ["AIMSS_LISTEN_URL"] = _listen_url(host, port)
    try:
        issuers = configuration.trusted_issuers(settings)
        configuration.knowledge(settings)
        configuration.check_database(settings, create=True)
    except ConfigurationError as error:
        return _cannot_start(error)
    log.info("%s", configuration.Effective(settings, issuers, workers).line())
    # Workers are separate processes: their metrics meet in a fresh directory that any
    # worker's /metrics reads whole (prometheus-client multiprocess mode).
    metrics_dir = tempfile.mkdtemp(prefix="aimss-metrics-") if workers > 1 else None
    if metrics_dir:
        os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        uvicorn.run(
            "cds_service.web.worker:app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level.lower(),
            log_config=logs.config(settings.log_level, settings.log_format),
            access_log=False,
            http=BoundedHttpToolsProtocol,
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
