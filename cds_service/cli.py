"""``aimss-cds``: the operator's command line (DESIGN §8)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from cds_service import logs
from cds_service.knowledge.loader import KnowledgeError, load_knowledge
from cds_service.metrics import MULTIPROC_ENV
from cds_service.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="aimss-cds",
        description="AIMSS CDS: a CDS Hooks 2.0 service for aromatase-inhibitor therapy. "
        "Configured by AIMSS_* environment variables (see the README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the CDS Hooks service")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")

    commands.add_parser("check", help="load and validate the knowledge artifacts and rules, then exit")

    report = commands.add_parser(
        "report", help="acceptance and override rates per card topic, from the feedback store"
    )
    report.add_argument(
        "--days", type=_days, metavar="N", help="only cards issued in the last N days (default all)"
    )
    report.add_argument("--tenant", metavar="ISS", help="only this tenant (a JWT issuer)")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")

    args = parser.parse_args(argv)
    try:
        settings = Settings()
        logs.install()
        logging.basicConfig(level=settings.log_level.upper(), format=logs.FORMAT)
        knowledge = load_knowledge(settings.profiles_dir, settings.rules_file)
    except (KnowledgeError, ValidationError, ValueError) as error:
        print(f"aimss-cds: cannot start: {error}", file=sys.stderr)
        return 2
    if args.command == "check":
        print(
            f"knowledge OK: {len(knowledge.valuesets)} value sets, "
            f"{len(knowledge.recommendations)} recommendations, "
            f"{len(knowledge.activities)} activity definitions"
        )
        return 0
    from cds_service.store import Database, StoreFault

    try:
        if args.command == "report":
            return _report(settings, args.days, args.tenant, args.json)
        refusal = _bind_refusal(args.host, settings)
        if refusal:
            print(f"aimss-cds: cannot start: {refusal}", file=sys.stderr)
            return 2
        Database(settings.database_url).close()  # an unusable store stops here, in one line
    except StoreFault as fault:
        print(f"aimss-cds: cannot start: {fault}", file=sys.stderr)
        return 2
    return _serve(args.host, args.port, args.workers, settings.log_level)


def _days(value: str) -> int:
    days = int(value)
    if days < 0:
        raise argparse.ArgumentTypeError("N must be 0 or more")
    return days


def _report(settings: Settings, days: int | None, tenant: str | None, as_json: bool) -> int:
    from cds_service.store import Database
    from cds_service.store.report import format_report, tenant_label, tenant_report

    since = datetime.now(UTC).date() - timedelta(days=days) if days is not None else None
    database = Database(settings.database_url)
    try:
        report = tenant_report(database, since, tenant)
    finally:
        database.close()
    if as_json:
        window = since.isoformat() if since else None
        tenants = [
            {"tenant": tenant_label(name), "topics": [row.to_json() for row in rows]}
            for name, rows in report.items()
        ]
        print(json.dumps({"since": window, "tenants": tenants}, indent=2))
    else:
        print(format_report(report, since))
    return 0


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def _bind_refusal(host: str, settings: Settings) -> str | None:
    """A wildcard address is no URL a client calls: with JWT checks on, the audience must then
    come from AIMSS_PUBLIC_BASE_URL (never from the request's Host header)."""
    if host in WILDCARD_HOSTS and not settings.auth_disabled and not settings.public_base_url:
        return (
            f"--host {host or '(empty)'} listens on every address, so JWTs cannot be checked "
            "against it: set AIMSS_PUBLIC_BASE_URL to the URL clients call"
        )
    return None


def _listen_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _serve(host: str, port: int, workers: int, log_level: str) -> int:
    import uvicorn

    from cds_service.web.server import BoundedHttpToolsProtocol

    # The workers read it as AIMSS_LISTEN_URL: the JWT audience without a public base URL.
    os.environ["AIMSS_LISTEN_URL"] = _listen_url(host, port)

    # Workers are separate processes: their metrics meet in a fresh directory that any
    # worker's /metrics reads whole (prometheus-client multiprocess mode).
    metrics_dir = tempfile.mkdtemp(prefix="aimss-metrics-") if workers > 1 else None
    if metrics_dir:
        os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        uvicorn.run(
            "cds_service.web.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level.lower(),
            log_config=logs.config(log_level),
            access_log=False,
            http=BoundedHttpToolsProtocol,
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
