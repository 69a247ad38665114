"""The app factory ``aimss-cds serve`` hands uvicorn, called in every worker process.

``serve`` checks the configuration before it starts the workers, but a worker reads it again
(its own environment, a database that went away since): a problem then is one logged line and
uvicorn's start-up-failure exit, which stops every worker, instead of a traceback per worker.
"""

from __future__ import annotations

import logging
import sys

from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE

from cds_service import configuration
from cds_service.configuration import ConfigurationError
from cds_service.web.app import create_app

log = logging.getLogger("aimss_cds")


def app() -> FastAPI:
    try:
        settings = configuration.load_settings()
        configuration.check_database(settings, create=True)
        return create_app(settings)
    except ConfigurationError as error:
        log.error("cannot start: %s", error)
        sys.exit(STARTUP_FAILURE)
