"""Load: wrk (C, from Debian's packages) drives the servers so the client costs little of the
two cores; the JWTs it sends are signed beforehand, RS384 as Epic signs and ES384 as the CDS
Hooks sandbox does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

LUA = Path(__file__).with_name("wrk.lua")
ISSUER = "https://ehr.benchmark.example"
ALGORITHMS = ("RS384", "ES384")
TOKEN_LIFETIME = 600
TOKEN_MAX_AGE = 300  # a token older than this is not handed out: it might expire mid-run


@dataclass(frozen=True)
class LoadResult:
    clients: int
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    load_before: float
    """The machine's 1-minute load average when the run began, and when it ended."""
    load_after: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def clean(self) -> bool:
        return self.requests > 0 and self.non_2xx == 0 and self.socket_errors == 0


class Signer:
    """An EHR with one RS384 and one ES384 key; their public halves are the trusted key set."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {
            "RS384": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ES384": ec.generate_private_key(ec.SECP384R1()),
        }

    def jwks(self) -> dict[str, Any]:
        def jwk(alg: str) -> dict[str, Any]:
            tool = RSAAlgorithm if alg.startswith("RS") else ECAlgorithm
            public = tool.to_jwk(self.keys[alg].public_key(), as_dict=True)
            return {**public, "kid": kid(alg), "alg": alg, "use": "sig"}

        return {"keys": [jwk(alg) for alg in ALGORITHMS]}

    def write_issuers_file(self, path: Path) -> Path:
        path.write_text(json.dumps({"issuers": [{"iss": ISSUER, "jwks": self.jwks()}]}))
        return path

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()))
        return path

    def token(self, alg: str, audience: str) -> str:
        """A JWT for one URL with its own ``jti``, valid for ten minutes."""
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + TOKEN_LIFETIME,
                  "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self.keys[alg], algorithm=alg, headers={"kid": kid(alg)})


def kid(alg: str) -> str:
    return f"bench-{alg.lower()}"


class Tokens:
    """JWTs of one algorithm for one URL, signed ahead. ``single_use``: a token the server may
    have seen is never handed out again (the service refuses a replayed ``jti``); otherwise a
    small set is sent over and over (the floor keeps no replay guard)."""

    REUSED = 200

    def __init__(self, signer: Signer, alg: str, audience: str, folder: Path, *, single_use: bool) -> None:
        self.signer, self.alg, self.audience, self.folder = signer, alg, audience, folder
        self.single_use = single_use
        self._pool: list[tuple[float, str]] = []

    def file(self, needed: int) -> Path:
        """A file of at least ``needed`` tokens (``REUSED`` when they may be sent again)."""
        fresh_after = time.time() - TOKEN_MAX_AGE
        self._pool = [(signed, token) for signed, token in self._pool if signed > fresh_after]
        count = needed if self.single_use else self.REUSED
        while len(self._pool) < count:
            self._pool.append((time.time(), self.signer.token(self.alg, self.audience)))
        path = self.folder / f"tokens-{uuid.uuid4()}.txt"
        path.write_text("".join(token + "\n" for _, token in self._pool[:count]))
        return path

    def spent(self, count: int) -> None:
        """The first ``count`` tokens of the last file may have reached the server."""
        if self.single_use:
            del self._pool[:count]


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is missing: run benchmarks/run.sh (it installs Debian's wrk)")
    return found


def load_average() -> float:
    return os.getloadavg()[0]


def drive(url: str, clients: int, seconds: float, bodies: list[Path], tokens: Path | None) -> LoadResult:
    """``clients`` connections, each sending its next request as soon as the last is answered:
    POSTs of ``bodies`` in turn, or GETs when there are none."""
    command = [
        wrk_path(), "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(LUA), url, "--", str(tokens) if tokens else "-", *map(str, bodies),
    ]
    load_before = load_average()
    finished = subprocess.run(command, capture_output=True, text=True)
    load_after = load_average()
    lines = [text for text in finished.stdout.splitlines() if text.startswith("{")]
    if finished.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stdout[-1000:]} {finished.stderr[-1000:]}")
    raw = json.loads(lines[-1])
    return LoadResult(
        clients=clients,
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        non_2xx=raw["non_2xx"],
        socket_errors=raw["socket_errors"],
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        load_before=load_before,
        load_after=load_after,
    )
