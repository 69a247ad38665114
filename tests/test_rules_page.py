"""The generated rules page is current, complete and deterministic."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cds_service.knowledge.rules_page import format_value, render_rules_page

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "fhir_profiles"
PAGE = ROOT / "docs" / "rules.md"
STALE = "docs/rules.md is stale: run python -m cds_service.knowledge.rules_page > docs/rules.md"


@pytest.fixture(scope="module")
def page() -> str:
    return render_rules_page(PROFILES)


def _block(page: str, marker: str) -> str:
    """The part of the page from the heading section holding ``marker`` to the next heading."""
    start = page.index(marker)
    end = page.find("\n## ", start)
    return page[start : end if end >= 0 else len(page)]


def test_docs_rules_md_is_current(page: str) -> None:
    assert PAGE.is_file(), STALE
    assert PAGE.read_text(encoding="utf-8") == page, STALE


def test_render_is_deterministic(page: str) -> None:
    assert render_rules_page(PROFILES) == page


def test_every_topic_has_a_section_in_code_system_order(page: str) -> None:
    concepts = json.loads((PROFILES / "CodeSystem-aimss-card-topics.json").read_text())["concept"]
    positions = []
    for number, concept in enumerate(concepts, 1):
        heading = f"\n## {number}. `{concept['code']}`: {concept['display']}\n"
        assert heading in page, f"no section for {concept['code']}"
        positions.append(page.index(heading))
    assert positions == sorted(positions)


def test_every_rules_key_is_shown_with_its_value_in_its_section(page: str) -> None:
    rules = tomllib.loads((PROFILES / "rules.toml").read_text(encoding="utf-8"))
    for section, values in rules.items():
        block = _block(page, f"section `[{section}]`")
        for key, value in values.items():
            row = f"| `{key}` | `{format_value(value)}` |"
            assert row in block, f"[{section}] {key} = {value!r} missing from the rules page"


def test_every_citation_and_suggested_order_is_shown(page: str) -> None:
    plan = json.loads((PROFILES / "PlanDefinition-aimss-recommendations.json").read_text())
    for action in plan["action"]:
        block = _block(page, f". `{action['id']}`: ")
        for citation in action["documentation"]:
            if citation["type"] == "citation":
                assert f"[{citation['label']}]({citation['url']})" in block, action["id"]
            else:
                assert f"**{citation['label']}:** {citation['display']}" in block, action["id"]
        canonicals = [action.get("definitionCanonical")] + [
            sub.get("definitionCanonical") for sub in action.get("action", [])
        ]
        for canonical in filter(None, canonicals):
            assert f"`{canonical.rsplit('/', 1)[-1]}`, " in block, (action["id"], canonical)


def test_value_sets_and_unverified_codes_are_listed(page: str) -> None:
    block = _block(page, "## Value sets")
    for path in sorted(PROFILES.glob("ValueSet-*.json")):
        assert f"| `{json.loads(path.read_text())['id']}` |" in block, path.name
    unverified = _block(page, "### UNVERIFIED codes")
    for code in ("386637004", "302226006", "2164-2", "77080"):
        assert f"`{code}`" in unverified


def test_value_sets_count_rxnorm_term_types_per_release(page: str) -> None:
    """Issue 11: per value set, how many codes of each RxNorm term type and from which release."""
    row = next(line for line in page.splitlines() if line.startswith("| `duloxetine` |"))
    assert "BN 3" in row and "SCD 8" in row and "2025-10-06" in row
    estrogens = next(line for line in page.splitlines() if line.startswith("| `systemic-estrogens` |"))
    assert "BPCK" in estrogens and "eCQM Update 2021-05-06" in estrogens
    loinc_only = next(line for line in page.splitlines() if line.startswith("| `bpi-interference` |"))
    assert loinc_only.rstrip().endswith("|  |")


def test_site_overrides_are_shown_with_the_shipped_value(tmp_path: Path) -> None:
    site = tmp_path / "site-rules.toml"
    site.write_text("[multimodal-management]\nmin_bpi_interference = 6.5\n", encoding="utf-8")
    block = _block(render_rules_page(PROFILES, site), "section `[multimodal-management]`")
    assert "| `min_bpi_interference` | `6.5` (site; shipped `7.0`) |" in block


def test_format_value_writes_toml_literals() -> None:
    assert format_value(7.0) == "7.0"
    assert format_value(-2.0) == "-2.0"
    assert format_value(24) == "24"
    assert format_value(True) == "true"
    assert format_value(["pain", "side effect"]) == '["pain", "side effect"]'


def test_module_command_prints_the_page(page: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cds_service.knowledge.rules_page"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.decode("utf-8") == page
