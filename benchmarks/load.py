"""Load: wrk (C, from Debian's packages) drives the servers so the client costs little of the
two cores; the JWTs it sends are signed beforehand, RS384 as EHRs such as Epic sign."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

LUA = Path(__file__).with_name("wrk.lua")
ISSUER = "https://ehr.benchmark.example"


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

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def clean(self) -> bool:
        return self.requests > 0 and self.non_2xx == 0 and self.socket_errors == 0


class Signer:
    """An EHR's RS384 key; its public half goes in the service's trusted-issuers file."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def write_issuers_file(self, path: Path) -> Path:
        jwk = {**RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True), "kid": "bench", "use": "sig"}
        path.write_text(json.dumps({"issuers": [{"iss": ISSUER, "jwks": {"keys": [jwk]}}]}))
        return path

    def token(self, audience: str) -> str:
        """A JWT for one URL with its own ``jti``, valid for ten minutes."""
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 600, "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self.key, algorithm="RS384", headers={"kid": "bench"})

    def write_tokens(self, path: Path, audience: str, count: int) -> Path:
        """``count`` tokens for one URL, one a line, for wrk."""
        path.write_text("".join(self.token(audience) + "\n" for _ in range(count)))
        return path


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is missing: run benchmarks/run.sh (it installs Debian's wrk)")
    return found


def drive(url: str, clients: int, seconds: float, bodies: list[Path], tokens: Path | None) -> LoadResult:
    """``clients`` connections, each sending its next request as soon as the last is answered."""
    command = [
        wrk_path(), "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(LUA), url, "--", str(tokens) if tokens else "-", *map(str, bodies),
    ]
    finished = subprocess.run(command, capture_output=True, text=True)
    lines = [text for text in finished.stdout.splitlines() if text.startswith("{")]
    if finished.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stdout[-1000:]} {finished.stderr[-1000:]}")
    line = lines[-1]
    raw = json.loads(line)
    return LoadResult(
        clients=clients,
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        non_2xx=raw["non_2xx"],
        socket_errors=raw["socket_errors"],
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
    )
