"""Trust for the public CDS Hooks Sandbox (https://sandbox.cds-hooks.org), one setting away.

The sandbox signs with a P-384 key whose PRIVATE half is published in its repository, so
anyone can sign as it: trusting it is for development against the sandbox only. Its public
key set ships with the package because a service offline cannot fetch the token's ``jku``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from cds_service.web.auth.issuers import TrustedIssuer

PUBLIC_SANDBOX_ISS = "https://sandbox.cds-hooks.org"
PUBLIC_SANDBOX_JWKS_FILE = Path(__file__).resolve().parent / "public_sandbox_jwks.json"

log = logging.getLogger("aimss_cds")


def with_public_sandbox(issuers: list[TrustedIssuer]) -> list[TrustedIssuer]:
    """The issuers plus the public sandbox's static key set, with a loud warning."""
    log.warning(
        "!!! AIMSS_TRUST_PUBLIC_SANDBOX=1: tokens signed as %s are accepted. Its private key "
        "is PUBLIC, so anyone can sign as it. Development only; never in production. !!!",
        PUBLIC_SANDBOX_ISS,
    )
    jwks = json.loads(PUBLIC_SANDBOX_JWKS_FILE.read_text(encoding="utf-8"))
    others = [issuer for issuer in issuers if issuer.iss != PUBLIC_SANDBOX_ISS]
    return [*others, TrustedIssuer(PUBLIC_SANDBOX_ISS, jwks=jwks)]
