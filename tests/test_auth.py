"""JWT verification: one test per rejection class, the accepted shapes, and JWKS URL caching."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_service.web.auth.failures import AuthError
from cds_service.web.auth.issuers import TrustedIssuer, load_trusted_issuers
from cds_service.web.auth.jwt import Claims, JwtVerifier
from cds_service.web.auth.keys import KeyResolver
from cds_service.web.auth.replay import InMemoryReplayGuard

ISS = "https://ehr.example.org"
REMOTE_ISS = "https://remote-ehr.example.org"
JWKS_URL = "https://remote-ehr.example.org/.well-known/jwks.json"
AUDIENCE = "https://cds.example.org/cds-services/aimss-patient-view"
NOW = 1_700_000_000

# Generated once per module: RSA key generation is the slowest step of the suite.
EC_KEY = ec.generate_private_key(ec.SECP384R1())
OTHER_EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SHARED_SECRET = b"an HMAC secret that is 32 bytes!"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(private_key: Any, kid: str) -> dict[str, Any]:
    algorithm = ECAlgorithm if isinstance(private_key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
    return {**algorithm.to_jwk(private_key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


STATIC_JWKS = {
    "keys": [
        public_jwk(EC_KEY, "ec-1"),
        public_jwk(RSA_KEY, "rsa-1"),
        {"kty": "oct", "kid": "shared-secret", "k": b64url(SHARED_SECRET)},  # must be ignored
    ]
}


def make_token(
    *,
    key: Any = EC_KEY,
    alg: str = "ES384",
    kid: str | None = "ec-1",
    headers: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    payload = {
        "iss": ISS,
        "aud": AUDIENCE,
        "iat": NOW,
        "exp": NOW + 300,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    for name in drop:
        del payload[name]
    header = ({} if kid is None else {"kid": kid}) | (headers or {})
    return jwt.encode(payload, key, algorithm=alg, headers=header)


def unsigned_parts(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def verifier_for(resolver: KeyResolver, *, check_time: bool = True) -> JwtVerifier:
    return JwtVerifier(
        resolver, InMemoryReplayGuard(now=lambda: NOW), now=lambda: NOW, check_time=check_time
    )


@pytest.fixture
def verifier() -> JwtVerifier:
    return verifier_for(KeyResolver([TrustedIssuer(ISS, jwks=STATIC_JWKS)]))


async def rejection(verifier: JwtVerifier, header: str | None, audience: str = AUDIENCE) -> str:
    with pytest.raises(AuthError) as caught:
        await verifier.verify(header, audience)
    assert str(caught.value) == caught.value.reason  # the message is the code, nothing more
    return caught.value.reason


# --- rejections -------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   "])
async def test_no_header_is_missing(verifier: JwtVerifier, header: str | None) -> None:
    assert await rejection(verifier, header) == "missing"


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc.def.ghi", "Bearer a.b.c d"]
)
async def test_non_bearer_header_is_malformed(verifier: JwtVerifier, header: str) -> None:
    assert await rejection(verifier, header) == "malformed"


@pytest.mark.parametrize("token", ["abc", "a.b.c", "eyJhbGciOiJFUzM4NCJ9.e30", "...."])
async def test_undecodable_token_is_malformed(verifier: JwtVerifier, token: str) -> None:
    assert await rejection(verifier, f"Bearer {token}") == "malformed"


async def test_alg_none_is_rejected(verifier: JwtVerifier) -> None:
    token = unsigned_parts(
        {"alg": "none", "typ": "JWT", "kid": "ec-1"},
        {"iss": ISS, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 300, "jti": "j-none"},
    )
    assert await rejection(verifier, f"Bearer {token}.") == "algorithm"


async def test_hs256_signed_with_the_public_key_is_rejected(verifier: JwtVerifier) -> None:
    """The algorithm-confusion attack: HMAC keyed with the (public) PEM of a trusted key."""
    public_pem = EC_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = unsigned_parts(
        {"alg": "HS256", "typ": "JWT", "kid": "ec-1"},
        {"iss": ISS, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 300, "jti": "j-hs256"},
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url(signature)}"
    assert await rejection(verifier, f"Bearer {token}") == "algorithm"


async def test_rs_algorithm_on_an_ec_key_is_rejected(verifier: JwtVerifier) -> None:
    token = make_token(key=RSA_KEY, alg="RS384", kid="ec-1")
    assert await rejection(verifier, f"Bearer {token}") == "algorithm"


async def test_es_algorithm_of_another_curve_is_rejected(verifier: JwtVerifier) -> None:
    token = make_token(key=ec.generate_private_key(ec.SECP256R1()), alg="ES256", kid="ec-1")
    assert await rejection(verifier, f"Bearer {token}") == "algorithm"


async def test_signature_by_another_key_with_the_trusted_kid_is_rejected(
    verifier: JwtVerifier,
) -> None:
    token = make_token(key=OTHER_EC_KEY, kid="ec-1")
    assert await rejection(verifier, f"Bearer {token}") == "signature"


async def test_tampered_payload_is_rejected(verifier: JwtVerifier) -> None:
    header, _, signature = make_token().split(".")
    forged = b64url(
        json.dumps(
            {"iss": ISS, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 300, "jti": "forged"}
        ).encode()
    )
    assert await rejection(verifier, f"Bearer {header}.{forged}.{signature}") == "signature"


@pytest.mark.parametrize("headers", [{"crit": ["exp"]}, {"b64": False, "crit": ["b64"]}])
async def test_a_critical_extension_is_refused(verifier: JwtVerifier, headers: dict[str, Any]) -> None:
    """None is supported, so RFC 7515 §4.1.11 requires the token be refused."""
    assert await rejection(verifier, f"Bearer {make_token(headers=headers)}") == "malformed"


@pytest.mark.parametrize("junk", ["!!!!", "a.b", "é"])
async def test_a_segment_that_is_not_base64url_is_malformed(verifier: JwtVerifier, junk: str) -> None:
    header, payload, signature = make_token().split(".")
    assert await rejection(verifier, f"Bearer {header}.{payload}{junk}.{signature}") == "malformed"


async def test_a_padded_signature_is_read_as_an_unpadded_one(verifier: JwtVerifier) -> None:
    """Some issuers pad base64url with ``=``; PyJWT accepts it, and so does the one decode."""
    header, payload, signature = make_token(key=RSA_KEY, alg="RS384", kid="rsa-1").split(".")
    padded = signature + "=" * (-len(signature) % 4)
    assert padded != signature  # 256 bytes: 342 characters, 344 padded
    claims = await verifier.verify(f"Bearer {header}.{payload}.{padded}", AUDIENCE)
    assert claims.iss == ISS


async def test_unknown_kid_is_rejected(verifier: JwtVerifier) -> None:
    assert await rejection(verifier, f"Bearer {make_token(kid='ec-2')}") == "unknown_kid"


async def test_symmetric_key_in_the_set_is_never_used(verifier: JwtVerifier) -> None:
    token = make_token(key=SHARED_SECRET, alg="HS256", kid="shared-secret")
    assert await rejection(verifier, f"Bearer {token}") == "algorithm"
    token = make_token(kid="shared-secret")
    assert await rejection(verifier, f"Bearer {token}") == "unknown_kid"


async def test_missing_kid_is_malformed(verifier: JwtVerifier) -> None:
    assert await rejection(verifier, f"Bearer {make_token(kid=None)}") == "malformed"


async def test_unknown_issuer_is_rejected(verifier: JwtVerifier) -> None:
    token = make_token(iss="https://other-ehr.example.org")
    assert await rejection(verifier, f"Bearer {token}") == "unknown_issuer"


async def test_typ_other_than_jwt_is_malformed(verifier: JwtVerifier) -> None:
    token = make_token(headers={"typ": "at+jwt"})
    assert await rejection(verifier, f"Bearer {token}") == "malformed"


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "jti"])
async def test_missing_required_claim_is_rejected(verifier: JwtVerifier, claim: str) -> None:
    assert await rejection(verifier, f"Bearer {make_token(drop=(claim,))}") == "claims"


@pytest.mark.parametrize(
    "claims",
    [
        {"jti": 42},
        {"jti": ""},
        {"exp": "soon"},
        {"exp": float("inf")},
        {"iat": True},
        {"iat": float("nan")},
        {"nbf": "x"},
        {"tenant": ["a"]},
    ],
)
async def test_claim_of_wrong_type_is_rejected(
    verifier: JwtVerifier, claims: dict[str, Any]
) -> None:
    assert await rejection(verifier, f"Bearer {make_token(**claims)}") == "claims"


async def test_expired_token_is_rejected(verifier: JwtVerifier) -> None:
    token = make_token(iat=NOW - 400, exp=NOW - 31)  # beyond the 30 s leeway
    assert await rejection(verifier, f"Bearer {token}") == "expired"


@pytest.mark.parametrize("claims", [{"iat": NOW + 60, "exp": NOW + 360}, {"nbf": NOW + 60}])
async def test_token_from_the_future_is_rejected(
    verifier: JwtVerifier, claims: dict[str, Any]
) -> None:
    assert await rejection(verifier, f"Bearer {make_token(**claims)}") == "not_yet_valid"


@pytest.mark.parametrize("claims", [{"exp": NOW + 901}, {"iat": NOW + 20, "exp": NOW + 10}])
async def test_lifetime_too_long_or_negative_is_rejected(
    verifier: JwtVerifier, claims: dict[str, Any]
) -> None:
    assert await rejection(verifier, f"Bearer {make_token(**claims)}") == "lifetime"


@pytest.mark.parametrize(
    "aud",
    [
        "https://cds.example.org/cds-services/aimss-order-select",
        "https://cds.example.org/cds-services",
        ["https://cds.example.org/cds-services"],
        [],
        42,
    ],
)
async def test_wrong_audience_is_rejected(verifier: JwtVerifier, aud: Any) -> None:
    assert await rejection(verifier, f"Bearer {make_token(aud=aud)}") == "audience"


async def test_replayed_jti_is_rejected(verifier: JwtVerifier) -> None:
    header = f"Bearer {make_token()}"
    await verifier.verify(header, AUDIENCE)
    assert await rejection(verifier, header) == "replay"


# --- acceptance -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "alg", "kid"),
    [(EC_KEY, "ES384", "ec-1"), (RSA_KEY, "RS384", "rsa-1"), (RSA_KEY, "PS256", "rsa-1")],
)
async def test_valid_token_is_accepted(verifier: JwtVerifier, key: Any, alg: str, kid: str) -> None:
    token = make_token(key=key, alg=alg, kid=kid, jti="jti-1", tenant="org-7")
    claims = await verifier.verify(f"bearer {token}", AUDIENCE)  # scheme is case-insensitive
    assert claims == Claims(iss=ISS, jti="jti-1", tenant="org-7", exp=NOW + 300)


@pytest.mark.parametrize(
    "aud", [[AUDIENCE], ["https://cds.example.org/cds-services", AUDIENCE], AUDIENCE + "/"]
)
async def test_audience_list_or_trailing_slash_is_accepted(verifier: JwtVerifier, aud: Any) -> None:
    await verifier.verify(f"Bearer {make_token(aud=aud)}", AUDIENCE)
    await verifier.verify(f"Bearer {make_token(aud=aud)}", AUDIENCE + "/")


@pytest.mark.parametrize("typ", [None, "jwt"])
async def test_absent_or_lowercase_typ_is_accepted(verifier: JwtVerifier, typ: str | None) -> None:
    await verifier.verify(f"Bearer {make_token(headers={'typ': typ})}", AUDIENCE)


async def test_times_within_leeway_are_accepted(verifier: JwtVerifier) -> None:
    await verifier.verify(f"Bearer {make_token(iat=NOW - 300, exp=NOW - 29)}", AUDIENCE)
    await verifier.verify(f"Bearer {make_token(iat=NOW + 29, exp=NOW + 329)}", AUDIENCE)


# The public CDS Hooks Sandbox's key set (cds-hooks/sandbox build/.well-known/jwks.json), as in
# /work/shared/reference/cds-hooks-sandbox-public-jwks.json.
SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SANDBOX_JWKS = {
    "keys": [
        {
            "kty": "EC",
            "use": "sig",
            "crv": "P-384",
            "kid": SANDBOX_KID,
            "x": "dw_JGR8nB2I6XveNxUOl2qk699ZPLM2nYI5STSdiEl9avAkrm3CkfYMbrrjr8laB",
            "y": "Sm3mLE-n1zYNla_aiE3cb3nZsL51RbC7ysw3q8aJLxGm-hx79RPMYpITDjp7kgzy",
            "alg": "ES384",
        }
    ]
}


async def test_sandbox_key_set_resolves_as_ec_p384(tmp_path: Path) -> None:
    issuers_file = tmp_path / "issuers.json"
    issuers_file.write_text(json.dumps({"issuers": [{"iss": SANDBOX_ISS, "jwks": SANDBOX_JWKS}]}))
    resolver = KeyResolver(load_trusted_issuers(issuers_file))
    key = await resolver.key_for(SANDBOX_ISS, SANDBOX_KID)
    assert key.key_type == "EC"
    assert key.key.curve.name == "secp384r1"


async def test_sandbox_shaped_token_is_accepted() -> None:
    """Header with kid and jku, payload iss/aud/exp=iat+300/iat/jti: no sub, no tenant."""
    jwks = {"keys": [public_jwk(EC_KEY, SANDBOX_KID) | {"alg": "ES384"}]}
    verifier = verifier_for(KeyResolver([TrustedIssuer(SANDBOX_ISS, jwks=jwks)]))
    token = make_token(
        kid=SANDBOX_KID,
        headers={"jku": "https://sandbox.cds-hooks.org/.well-known/jwks.json"},
        iss=SANDBOX_ISS,
    )
    claims = await verifier.verify(f"Bearer {token}", AUDIENCE)
    assert (claims.iss, claims.tenant) == (SANDBOX_ISS, None)


# The worked example of CDS Hooks 2.0 §"Trusting CDS Clients" (JWKS, then the final token).
# 2.0 text: cds-hooks/docs@1ed3c4f8 input/pagecontent/security.md, also HL7/cds-hooks
# input/pagecontent/index.md; the cds-hooks.org copy (cds-hooks/docs
# docs/specification/current.md) has an older token whose payload adds "sub": "client_id".
SPEC_EXAMPLE_AUDIENCE = "https://cds.example.org/cds-services/some-service"
SPEC_EXAMPLE_JWKS = {
    "keys": [
        {
            "kty": "EC",
            "use": "sig",
            "crv": "P-384",
            "kid": "example-kid",
            "x": "46SDH7Znh821wblCBglA61sNE9ZrHYKKt3qRtRTmSXyOI_FIGBLWrWa0GPUkDCEk",
            "y": "XMcRuuoGW7CXjQdy-F5i3FeBE0x9hPLdeFdSoDd3ELmx404tLX0VRRcqzAsPhXcI",
            "alg": "ES384",
        }
    ]
}
SPEC_EXAMPLE_HEADER = (
    "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCIsImtpZCI6ImV4YW1wbGUta2lkIiwiamt1IjoiaHR0cHM6Ly9maGlyLWV"
    "oci5leGFtcGxlLmNvbS9qd2tfdXJpIn0"
)
SPEC_EXAMPLE_TOKENS = {
    "2.0": SPEC_EXAMPLE_HEADER
    + ".eyJpc3MiOiJodHRwczovL2ZoaXItZWhyLmV4YW1wbGUuY29tLyIsImF1ZCI6Imh0dHBzOi8vY2RzLmV4YW1wbGUub"
    "3JnL2Nkcy1zZXJ2aWNlcy9zb21lLXNlcnZpY2UiLCJleHAiOjE0MjI1Njg4NjAsImlhdCI6MTMxMTI4MDk3MCwianRp"
    "IjoiZWUyMmIwMjEtZTFiNy00NjExLWJhNWItOGVlYzZhMzNhYzFlIiwidGVuYW50IjoiMmRkZDZjM2EtOGU5YS00NGM2"
    "LWEzMDUtNTIxMTFhZDMwMmEyIn0"
    ".d1WfLjGRKlcWB94l9do4cM8REXeYJLL6SGUBO8VHZhfM8mwKYP70EMxJ67War4TQblEpaQrp11wx5p7oPFm2ETYgCic"
    "S84vXWEIYTdjooZdooCSDf2L8-i4awdoUwiEb",
    "cds-hooks.org, with sub": SPEC_EXAMPLE_HEADER
    + ".eyJpc3MiOiJodHRwczovL2ZoaXItZWhyLmV4YW1wbGUuY29tLyIsInN1YiI6ImNsaWVudF9pZCIsImF1ZCI6Imh0d"
    "HBzOi8vY2RzLmV4YW1wbGUub3JnL2Nkcy1zZXJ2aWNlcy9zb21lLXNlcnZpY2UiLCJleHAiOjE0MjI1Njg4NjAsImlh"
    "dCI6MTMxMTI4MDk3MCwianRpIjoiZWUyMmIwMjEtZTFiNy00NjExLWJhNWItOGVlYzZhMzNhYzFlIiwidGVuYW50Ijoi"
    "MmRkZDZjM2EtOGU5YS00NGM2LWEzMDUtNTIxMTFhZDMwMmEyIn0"
    ".CUFPkplnWd6YGIvzoHolWCQBDsCL8QtTWKGg_QFpS169WrqDGzktRi-_we6-6rVzbjerU27ZKww_SW0-b9RTz-dPJNc"
    "qsueMio8r6EqXUXhbLm_ch3XFSbDlGHDl_tqo",
}


@pytest.mark.parametrize("token", SPEC_EXAMPLE_TOKENS.values(), ids=SPEC_EXAMPLE_TOKENS.keys())
async def test_spec_worked_example_verifies(token: str) -> None:
    issuer = TrustedIssuer("https://fhir-ehr.example.com/", jwks=SPEC_EXAMPLE_JWKS)
    verifier = verifier_for(KeyResolver([issuer]), check_time=False)
    claims = await verifier.verify(f"Bearer {token}", SPEC_EXAMPLE_AUDIENCE)
    assert claims == Claims(
        iss="https://fhir-ehr.example.com/",
        jti="ee22b021-e1b7-4611-ba5b-8eec6a33ac1e",
        tenant="2ddd6c3a-8e9a-44c6-a305-52111ad302a2",
        exp=1422568860,
    )


async def test_spec_worked_example_is_expired_with_time_checks() -> None:
    issuer = TrustedIssuer("https://fhir-ehr.example.com/", jwks=SPEC_EXAMPLE_JWKS)
    verifier = verifier_for(KeyResolver([issuer]))
    header = f"Bearer {SPEC_EXAMPLE_TOKENS['2.0']}"
    assert await rejection(verifier, header, SPEC_EXAMPLE_AUDIENCE) == "expired"


# --- issuers with a JWKS URL ------------------------------------------------------------------


def remote_jwks(*kids: str) -> dict[str, Any]:
    return {"keys": [public_jwk(EC_KEY, kid) for kid in kids]}


def remote_token(kid: str, **claims: Any) -> str:
    return f"Bearer {make_token(kid=kid, iss=REMOTE_ISS, **claims)}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def remote_verifier(http: httpx.AsyncClient, clock: FakeClock) -> JwtVerifier:
    resolver = KeyResolver([TrustedIssuer(REMOTE_ISS, jwks_url=JWKS_URL)], http, now=clock)
    return verifier_for(resolver)


@respx.mock
async def test_jwks_is_cached_until_its_ttl(remote_verifier: JwtVerifier, clock: FakeClock) -> None:
    route = respx.get(JWKS_URL).mock(return_value=httpx.Response(200, json=remote_jwks("k1")))
    await remote_verifier.verify(remote_token("k1"), AUDIENCE)
    await remote_verifier.verify(remote_token("k1"), AUDIENCE)
    assert route.call_count == 1
    clock.advance(3600)
    await remote_verifier.verify(remote_token("k1"), AUDIENCE)
    assert route.call_count == 2


@respx.mock
async def test_new_kid_triggers_one_refetch(remote_verifier: JwtVerifier, clock: FakeClock) -> None:
    route = respx.get(JWKS_URL).mock(
        side_effect=[
            httpx.Response(200, json=remote_jwks("k1")),
            httpx.Response(200, json=remote_jwks("k1", "k2")),
        ]
    )
    await remote_verifier.verify(remote_token("k1"), AUDIENCE)
    clock.advance(61)
    await remote_verifier.verify(remote_token("k2"), AUDIENCE)
    await remote_verifier.verify(remote_token("k1"), AUDIENCE)
    assert route.call_count == 2


@respx.mock
async def test_random_kids_refetch_at_most_once_per_interval(
    remote_verifier: JwtVerifier, clock: FakeClock
) -> None:
    route = respx.get(JWKS_URL).mock(return_value=httpx.Response(200, json=remote_jwks("k1")))
    await remote_verifier.verify(remote_token("k1"), AUDIENCE)
    for _ in range(20):
        assert await rejection(remote_verifier, remote_token(str(uuid.uuid4()))) == "unknown_kid"
    assert route.call_count == 1
    clock.advance(60)
    for _ in range(20):
        assert await rejection(remote_verifier, remote_token(str(uuid.uuid4()))) == "unknown_kid"
    assert route.call_count == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503),
        httpx.ConnectError("connection refused"),
        httpx.Response(200, text="<html>not json</html>"),
    ],
)
@respx.mock
async def test_jwks_url_down_is_jwks_unavailable(
    remote_verifier: JwtVerifier, failure: httpx.Response | Exception
) -> None:
    route = respx.get(JWKS_URL).mock(side_effect=[failure])
    assert await rejection(remote_verifier, remote_token("k1")) == "jwks_unavailable"
    assert await rejection(remote_verifier, remote_token("k1")) == "jwks_unavailable"
    assert route.call_count == 1  # the retry waits for the refetch interval


@respx.mock
async def test_cached_keys_stay_in_use_while_jwks_url_is_down(
    remote_verifier: JwtVerifier, clock: FakeClock
) -> None:
    route = respx.get(JWKS_URL).mock(
        side_effect=[httpx.Response(200, json=remote_jwks("k1")), httpx.Response(503)]
    )
    await remote_verifier.verify(remote_token("k1"), AUDIENCE)
    clock.advance(3600)
    await remote_verifier.verify(remote_token("k1"), AUDIENCE)
    assert route.call_count == 2


@respx.mock
async def test_concurrent_first_calls_share_one_fetch(remote_verifier: JwtVerifier) -> None:
    async def slow_jwks(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return httpx.Response(200, json=remote_jwks("k1"))

    route = respx.get(JWKS_URL).mock(side_effect=slow_jwks)
    await asyncio.gather(*(remote_verifier.verify(remote_token("k1"), AUDIENCE) for _ in range(10)))
    assert route.call_count == 1


@respx.mock
async def test_jku_header_is_never_fetched(remote_verifier: JwtVerifier) -> None:
    respx.get(JWKS_URL).mock(return_value=httpx.Response(200, json=remote_jwks("k1")))
    attacker = respx.get("https://attacker.example/jwks.json").mock(
        return_value=httpx.Response(200, json={"keys": [public_jwk(OTHER_EC_KEY, "evil")]})
    )
    token = make_token(
        key=OTHER_EC_KEY,
        kid="evil",
        iss=REMOTE_ISS,
        headers={"jku": "https://attacker.example/jwks.json"},
    )
    assert await rejection(remote_verifier, f"Bearer {token}") == "unknown_kid"
    assert not attacker.called


def test_private_key_material_in_a_static_set_is_refused() -> None:
    private_jwk = {**ECAlgorithm.to_jwk(EC_KEY, as_dict=True), "kid": "ec-1"}
    with pytest.raises(ValueError, match="no usable public signing key"):
        TrustedIssuer(ISS, jwks={"keys": [private_jwk]})


def test_jwks_url_issuer_needs_an_http_client() -> None:
    with pytest.raises(ValueError, match="HTTP client"):
        KeyResolver([TrustedIssuer(REMOTE_ISS, jwks_url=JWKS_URL)])


# --- configuration file -----------------------------------------------------------------------


def test_issuers_file_with_both_kinds_loads(tmp_path: Path) -> None:
    path = tmp_path / "issuers.json"
    path.write_text(
        json.dumps(
            {
                "issuers": [
                    {"iss": ISS, "jwks": STATIC_JWKS},
                    {"iss": REMOTE_ISS, "jwks_url": JWKS_URL},
                    {"iss": "http://127.0.0.1:8080", "jwks_url": "http://127.0.0.1:8080/jwks"},
                ]
            }
        )
    )
    issuers = load_trusted_issuers(path)
    assert [issuer.iss for issuer in issuers] == [ISS, REMOTE_ISS, "http://127.0.0.1:8080"]
    assert issuers[1] == TrustedIssuer(REMOTE_ISS, jwks_url=JWKS_URL)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "cannot read JSON"),
        ("[]", '"issuers"'),
        ('{"issuers": []}', "at least one issuer"),
        ('{"issuers": ["https://ehr.example.org"]}', "JSON object"),
        ('{"issuers": [{"jwks_url": "https://a.example/jwks"}]}', "'iss'"),
        ('{"issuers": [{"iss": "a"}]}', "give 'jwks', 'jwks_url' or a 'jku' list"),
        (
            '{"issuers": [{"iss": "a", "jwks_url": "https://a.example/j", "jwks": {"keys": []}}]}',
            "not both",
        ),
        ('{"issuers": [{"iss": "a", "jku": ["http://a.example/j"]}]}', "https"),
        ('{"issuers": [{"iss": "a", "jku": "https://a.example/j"}]}', "'jku' must be a list"),
        (f'{{"issuers": [{{"iss": "{"a" * 256}", "jku": ["https://a.example/j"]}}]}}', "at most 255"),
        (
            '{"issuers": [{"iss": "a", "jku": ["https://a.example/j"], '
            '"fhir_servers": ["https://u:pw@fhir.example/r4"]}]}',
            "must not carry credentials",
        ),
        (
            '{"issuers": [{"iss": "a", "jku": ["https://a.example/j"], "max_token_lifetime": "900"}]}',
            "whole seconds",
        ),
        ('{"issuers": [{"iss": "a", "jku": ["https://a.example/j"], "mode": "shadow"}]}', "'mode'"),
        ('{"issuers": [{"iss": "a", "jku": ["https://a.example/j"], "mode": "users"}]}', "'users'"),
        (
            '{"issuers": [{"iss": "a", "jku": ["https://a.example/j"], "users": ["Practitioner/1"]}]}',
            "'users'",
        ),
        ('{"issuers": [{"iss": "a", "jwks_uri": "https://a.example/j"}]}', "jwks_uri"),
        ('{"issuers": [{"iss": "a", "jwks_url": "http://a.example/j"}]}', "https"),
        ('{"issuers": [{"iss": "a", "jwks_url": "not a url"}]}', "https"),
        ('{"issuers": [{"iss": "a", "jwks": {"kty": "EC"}}]}', "JWK Set"),
        (
            '{"issuers": [{"iss": "a", "jwks": {"keys": [{"kty": "oct", "kid": "s"}]}}]}',
            "no usable public signing key",
        ),
        (
            (
                '{"issuers": [{"iss": "a", "jwks_url": "https://a.example/j"},'
                ' {"iss": "a", "jwks_url": "https://b.example/j"}]}'
            ),
            "listed twice",
        ),
    ],
)
def test_malformed_issuers_file_is_refused(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "issuers.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(problem)) as caught:
        load_trusted_issuers(path)
    assert str(caught.value).startswith(f"trusted issuers file {path}: ")


def test_missing_issuers_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read JSON"):
        load_trusted_issuers(tmp_path / "absent.json")


# --- replay guard -----------------------------------------------------------------------------


async def test_in_memory_replay_guard_forgets_expired_ids() -> None:
    clock = FakeClock(NOW)
    guard = InMemoryReplayGuard(now=clock)
    assert await guard.first_use("a", NOW + 10)
    assert not await guard.first_use("a", NOW + 10)
    clock.advance(11)
    assert await guard.first_use("a", NOW + 30)  # storage is bounded by exp


async def test_a_jwks_alg_is_the_only_algorithm_its_key_verifies() -> None:
    """Security review: an RS384 key accepted an RS256 token."""
    jwks = {"keys": [public_jwk(RSA_KEY, "rsa-384") | {"alg": "RS384"}]}
    verifier = verifier_for(KeyResolver([TrustedIssuer(ISS, jwks=jwks)]))
    rs256 = make_token(key=RSA_KEY, alg="RS256", kid="rsa-384")
    assert await rejection(verifier, f"Bearer {rs256}") == "algorithm"
    rs384 = make_token(key=RSA_KEY, alg="RS384", kid="rsa-384")
    assert (await verifier.verify(f"Bearer {rs384}", AUDIENCE)).iss == ISS


async def test_the_default_lifetime_fits_epics_fifteen_minute_tokens(verifier: JwtVerifier) -> None:
    epic_like = make_token(iat=NOW - 10, exp=NOW + 890, nbf=NOW - 310)  # exp = iat + 900
    assert (await verifier.verify(f"Bearer {epic_like}", AUDIENCE)).iss == ISS
    assert await rejection(verifier, f"Bearer {make_token(exp=NOW + 901)}") == "lifetime"


async def test_an_issuer_may_allow_longer_tokens() -> None:
    issuer = TrustedIssuer(ISS, jwks=STATIC_JWKS, max_token_lifetime=3600)
    verifier = verifier_for(KeyResolver([issuer]))
    assert (await verifier.verify(f"Bearer {make_token(exp=NOW + 3600)}", AUDIENCE)).iss == ISS


JKU = "https://ehr.example.org/api/epic/2019/Security/Open/PublicKeys/530013/530013"


@respx.mock
async def test_a_jku_is_followed_only_when_its_issuer_lists_it(http: httpx.AsyncClient) -> None:
    """Epic names its key set in the token's jku: listed, it is fetched; anything else, 401."""
    route = respx.get(JKU).mock(return_value=httpx.Response(200, json={"keys": [public_jwk(RSA_KEY, "epic-1")]}))
    stranger = respx.get("https://attacker.example/jwks")
    verifier = verifier_for(KeyResolver([TrustedIssuer(ISS, jku=(JKU,))], http))

    def epic_token(jku: str | None) -> str:
        headers = {"jku": jku} if jku else {}
        return f"Bearer {make_token(key=RSA_KEY, alg='RS384', kid='epic-1', headers=headers)}"

    assert (await verifier.verify(epic_token(JKU), AUDIENCE)).iss == ISS
    assert route.call_count == 1
    assert await rejection(verifier, epic_token("https://attacker.example/jwks")) == "jku"
    assert await rejection(verifier, epic_token(None)) == "jku"
    assert not stranger.called


async def test_without_a_jku_list_a_tokens_jku_is_ignored(verifier: JwtVerifier) -> None:
    """An entry with only iss and jwks behaves as before: the configured keys decide."""
    token = make_token(headers={"jku": "https://attacker.example/jwks"})
    assert (await verifier.verify(f"Bearer {token}", AUDIENCE)).iss == ISS
