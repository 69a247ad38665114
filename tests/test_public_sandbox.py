"""AIMSS_TRUST_PUBLIC_SANDBOX: one setting trusts the public CDS Hooks Sandbox's key set."""

from __future__ import annotations

import json
import logging

import pytest

from cds_service.web.auth.failures import AuthError
from cds_service.web.auth.keys import KeyResolver
from cds_service.web.auth.public_sandbox import PUBLIC_SANDBOX_ISS, PUBLIC_SANDBOX_JWKS_FILE
from tests.test_auth import SANDBOX_JWKS, SANDBOX_KID


def resolver_of(client) -> KeyResolver:
    return client.app.state.runtime.verifier._resolver


async def test_with_the_setting_the_sandbox_issuer_and_its_p384_key_are_trusted(make_client, caplog):
    with caplog.at_level(logging.WARNING, logger="aimss_cds"):
        client = make_client(auth_disabled=False, trust_public_sandbox=True)
    resolver = resolver_of(client)
    assert resolver.is_trusted(PUBLIC_SANDBOX_ISS)
    key = await resolver.key_for(PUBLIC_SANDBOX_ISS, SANDBOX_KID)
    assert (key.key_type, key.key.curve.name) == ("EC", "secp384r1")
    assert "private key is PUBLIC" in caplog.text


async def test_without_the_setting_the_sandbox_is_not_trusted(make_client):
    resolver = resolver_of(make_client(auth_disabled=False))
    assert not resolver.is_trusted(PUBLIC_SANDBOX_ISS)
    with pytest.raises(AuthError) as error:
        await resolver.key_for(PUBLIC_SANDBOX_ISS, SANDBOX_KID)
    assert error.value.reason == "unknown_issuer"


def test_it_adds_to_the_configured_issuers(make_client, tmp_path):
    issuers = tmp_path / "issuers.json"
    jwks = json.loads(PUBLIC_SANDBOX_JWKS_FILE.read_text())
    other = {"iss": "https://ehr.example.org", "jwks": jwks}
    issuers.write_text(json.dumps({"issuers": [other]}))
    resolver = resolver_of(
        make_client(auth_disabled=False, trust_public_sandbox=True, trusted_issuers_file=issuers)
    )
    assert resolver.is_trusted("https://ehr.example.org") and resolver.is_trusted(PUBLIC_SANDBOX_ISS)


def test_the_shipped_key_set_is_the_published_one():
    """The sandbox's build/.well-known/jwks.json, public half only."""
    assert json.loads(PUBLIC_SANDBOX_JWKS_FILE.read_text()) == SANDBOX_JWKS
