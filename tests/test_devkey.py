"""The sandbox's development key: made once, only its public half trusted, tokens verify."""

from __future__ import annotations

import json
import stat

import jwt

from cds_service.web.auth.issuers import load_trusted_issuers
from cds_service.web.auth.jwt import JwtVerifier
from cds_service.web.auth.keys import KeyResolver
from cds_service.web.auth.replay import InMemoryReplayGuard
from sandbox.devkey import PRIVATE_KEY_FILE, ensure_dev_key

AUDIENCE = "http://127.0.0.1:8080/cds-services/aimss-patient-view"


def test_the_key_is_made_once_and_kept_private(tmp_path):
    first = ensure_dev_key(tmp_path, "http://127.0.0.1:8081/sandbox")
    again = ensure_dev_key(tmp_path, "http://127.0.0.1:8081/sandbox")
    assert first.kid == again.kid and first.private_jwk == again.private_jwk
    assert stat.S_IMODE((tmp_path / PRIVATE_KEY_FILE).stat().st_mode) == 0o600
    assert first.private_jwk["crv"] == "P-384" and "d" in first.private_jwk


def test_the_issuers_file_holds_only_the_public_key(tmp_path):
    key = ensure_dev_key(tmp_path, "http://127.0.0.1:8081/sandbox")
    document = json.loads(key.issuers_file.read_text())
    (jwk,) = document["issuers"][0]["jwks"]["keys"]
    assert "d" not in jwk and jwk["kid"] == key.kid
    (issuer,) = load_trusted_issuers(key.issuers_file)
    assert issuer.iss == "http://127.0.0.1:8081/sandbox"


async def test_a_signed_token_passes_the_service_checks(tmp_path):
    key = ensure_dev_key(tmp_path, "http://127.0.0.1:8081/sandbox")
    verifier = JwtVerifier(KeyResolver(load_trusted_issuers(key.issuers_file)), InMemoryReplayGuard())
    token = key.sign(AUDIENCE)
    claims = await verifier.verify(f"Bearer {token}", AUDIENCE)
    assert claims.iss == "http://127.0.0.1:8081/sandbox"
    header, payload = jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})
    assert (header["alg"], header["kid"]) == ("ES384", key.kid)
    assert payload["exp"] - payload["iat"] == 300 and payload["aud"] == AUDIENCE


def test_the_token_helper_has_arguments_not_an_audience_called_help(tmp_path, monkeypatch, capsys):
    import subprocess
    import sys

    from sandbox import token

    helped = subprocess.run([sys.executable, "-m", "sandbox.token", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m sandbox.token")
    assert "eyJ" not in helped.stdout
    refused = subprocess.run([sys.executable, "-m", "sandbox.token", "not-a-url"], capture_output=True, text=True)
    assert refused.returncode == 2 and "not an http(s) URL" in refused.stderr and refused.stdout == ""

    monkeypatch.setattr(token, "ensure_dev_key", lambda: ensure_dev_key(tmp_path))
    assert token.main([AUDIENCE]) == 0
    printed = capsys.readouterr().out.strip()
    assert jwt.decode(printed, options={"verify_signature": False})["aud"] == AUDIENCE
