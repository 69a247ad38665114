"""The knowledge artifacts load, validate as R4, and fail start-up loudly when broken."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from cds_service.knowledge.loader import KnowledgeError, load_knowledge
from cds_service.settings import default_profiles_dir


@pytest.fixture
def profiles(tmp_path):
    copy = tmp_path / "profiles"
    shutil.copytree(default_profiles_dir(), copy)
    return copy


def test_shipped_knowledge_loads(knowledge):
    assert {"aromatase-inhibitors", "dxa-results", "dxa-procedures"} <= set(knowledge.valuesets)
    assert knowledge.recommendations["bone-density-scan"].citations[0].url.startswith("https://")
    assert knowledge.rules.bone_density_scan.dxa_interval_months == 24


def test_grouping_value_sets_expand_and_unverified_codes_are_flagged(knowledge):
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    letrozole_in = knowledge.matches([{"system": rxnorm, "code": "72965"}])
    assert {m.valueset for m in letrozole_in} >= {"letrozole", "aromatase-inhibitors"}
    assert all(m.verified for m in letrozole_in), "72965 is in the RxNorm release table"
    acupuncture = knowledge.matches([{"system": "http://snomed.info/sct", "code": "386637004"}])
    assert acupuncture and not any(m.verified for m in acupuncture), "UNVERIFIED in the table"
    assert all(m.verified for m in knowledge.matches([{"system": rxnorm, "code": "199224"}]))


def test_system_aliases_match(knowledge):
    found = knowledge.matches([{"system": "urn:oid:2.16.840.1.113883.6.88", "code": "199224"}])
    assert "aromatase-inhibitors" in {m.valueset for m in found}


def test_a_broken_artifact_stops_start_up_naming_the_file(profiles):
    (profiles / "ValueSet-tamoxifen.json").write_text('{"resourceType": "ValueSet", "status": 7}')
    with pytest.raises(KnowledgeError, match="ValueSet-tamoxifen.json"):
        load_knowledge(profiles)


def test_a_missing_activity_definition_stops_start_up(profiles):
    (profiles / "ActivityDefinition-dxa-scan.json").unlink()
    with pytest.raises(KnowledgeError, match="dxa-scan"):
        load_knowledge(profiles)


def test_an_action_without_a_citation_stops_start_up(profiles):
    path = profiles / "PlanDefinition-aimss-recommendations.json"
    plan = json.loads(path.read_text())
    del plan["action"][0]["documentation"]
    path.write_text(json.dumps(plan))
    with pytest.raises(KnowledgeError, match="cites no evidence"):
        load_knowledge(profiles)


def test_a_site_rules_file_overrides_thresholds(tmp_path, knowledge):
    site = tmp_path / "site.toml"
    site.write_text("[bone-density-scan]\ndxa_interval_months = 12\n")
    assert load_knowledge(default_profiles_dir(), site).rules.bone_density_scan.dxa_interval_months == 12


def test_a_misspelt_site_rule_is_refused(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text("[bone-density-scan]\ndxa_interval_month = 12\n")
    with pytest.raises(KnowledgeError, match="site.toml"):
        load_knowledge(default_profiles_dir(), site)


def test_cli_help_and_check(profiles):
    run = [sys.executable, "-m", "cds_service"]
    assert "serve" in subprocess.run([*run, "--help"], capture_output=True, text=True).stdout
    serve_help = subprocess.run([*run, "serve", "--help"], capture_output=True, text=True).stdout
    assert "--host" in serve_help and "--port" in serve_help and "--workers" in serve_help
    ok = subprocess.run([*run, "check"], capture_output=True, text=True)
    assert ok.returncode == 0 and "knowledge OK" in ok.stdout
    (profiles / "CodeSystem-aimss-card-topics.json").write_text("{")
    broken = subprocess.run(
        [*run, "check"], capture_output=True, text=True, env={"AIMSS_PROFILES_DIR": str(profiles), "PATH": ""}
    )
    assert broken.returncode == 1
    failed = [line for line in broken.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and "AIMSS_PROFILES_DIR" in failed[0]
    assert "CodeSystem-aimss-card-topics.json" in failed[0]


def test_readme_documents_every_setting():
    from pathlib import Path

    from cds_service.settings import Settings

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`AIMSS_{name.upper()}`" in readme, f"AIMSS_{name.upper()} is not in the README"
