"""Log correlation by ``hookInstance`` and a guard on libraries that log patient data.

Every log record, from any logger, carries ``record.hookInstance`` (``-`` outside a hook
call), set from a contextvar so lines logged in FHIR tasks or threads of the same call are
correlated too. httpx and httpcore log request URLs (with patient ids) and headers below
WARNING, and SQLAlchemy logs statement parameters at INFO: those records are dropped at their
loggers, whatever level an operator configures.

Two formats: ``text`` (``FORMAT``, for people) and ``json`` (``JsonFormatter``: one object a
line, for log pipelines).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s hookInstance=%(hookInstance)s %(message)s"

_hook_instance: ContextVar[str] = ContextVar("hook_instance", default="-")
_UNSAFE = re.compile(r"[^A-Za-z0-9._:\-]")

# Loggers whose records below WARNING may carry URLs, headers or SQL parameters.
GUARDED_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "sqlalchemy.engine",
    "sqlalchemy.engine.Engine",
)


def bind_hook_instance(hook_instance: str) -> None:
    """Correlate the rest of this call's log lines (the value is shortened and made log-safe)."""
    _hook_instance.set(_UNSAFE.sub("?", hook_instance[:64]))


class _BelowWarningDropped(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


class _RecordFactory:
    """Wraps the factory in place, adding ``hookInstance`` to every record."""

    def __init__(self, wrapped: Callable[..., logging.LogRecord]) -> None:
        self.wrapped = wrapped

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.wrapped(*args, **kwargs)
        record.hookInstance = _hook_instance.get()
        return record


class DefaultHookInstance(logging.Filter):
    """For handlers: a record made before ``install`` (uvicorn's first lines) gets ``-``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "hookInstance"):
            record.hookInstance = "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, hookInstance, message, and
    the stack frames when a record carries an exception. Newlines stay inside the object."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "hookInstance": getattr(record, "hookInstance", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def config(level: str, log_format: str = "text") -> dict[str, Any]:
    """``logging.config.dictConfig`` of ``aimss-cds serve``, handed to uvicorn, which applies it
    in every worker process (a configuration made in the parent alone does not reach them)."""
    formatter = {"()": JsonFormatter} if log_format == "json" else {"format": FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"hook": {"()": DefaultHookInstance}},
        "formatters": {"aimss": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "aimss",
                "filters": ["hook"],
            },
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {"uvicorn": {"propagate": True}, "uvicorn.access": {"propagate": True}},
    }


def install() -> None:
    """Idempotent: tag every record with ``hookInstance`` and guard the chatty libraries."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, _RecordFactory):
        logging.setLogRecordFactory(_RecordFactory(current))
    for name in GUARDED_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        if not any(isinstance(f, _BelowWarningDropped) for f in logger.filters):
            logger.addFilter(_BelowWarningDropped())
