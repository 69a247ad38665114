"""Why a caller is refused: a fixed set of reasons, for the log and the metric, never the client."""

from __future__ import annotations

from typing import Literal

AuthFailure = Literal[
    "missing",  # no Authorization header
    "malformed",  # not "Bearer <JWT>", undecodable, bad typ, no kid
    "algorithm",  # alg not allowed, or not the algorithm of the selected key
    "unknown_issuer",
    "jku",  # the token's jku is not one its issuer lists (or it names none where one is needed)
    "unknown_kid",
    "jwks_unavailable",  # the issuer's JWKS URL could not be fetched and the kid is not cached
    "signature",
    "claims",  # a required claim is missing or has the wrong JSON type
    "audience",
    "expired",
    "not_yet_valid",
    "lifetime",  # exp - iat above the maximum, or negative
    "replay",
]
"""The fixed set of failure codes (`typing.get_args(AuthFailure)` lists them for metrics)."""


class AuthError(Exception):
    """The caller is not authenticated; `reason` says why, for metrics (never for the client).

    `detail` is for the log only: the token's `aud` or `iss` when those are what failed (claim
    values, never the token or its signature)."""

    def __init__(self, reason: AuthFailure, detail: str = "") -> None:
        super().__init__(reason)
        self.reason: AuthFailure = reason
        self.detail = detail
