"""Drug and condition codes however a chart carries them: every product of an ingredient is in its
group, vaginal estrogen is told from systemic, the ValueSets say each code's term type and
release, and the committed ValueSets are exactly what the generator makes of terminology/."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cds_service.knowledge.loader import Knowledge

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "fhir_profiles"
TERMINOLOGY = ROOT / "terminology"
GENERATOR = ROOT / "scripts" / "build_valuesets.py"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RXNORM_EXT = "http://aimss-cds.example.org/fhir/StructureDefinition/rxnorm-concept"
TERM_TYPES = {"IN", "PIN", "MIN", "BN", "SCDC", "SCD", "SBD", "GPCK", "BPCK"}
PACKS = {"GPCK", "BPCK"}

# Per drug ValueSet, real rxcuis of terminology/: a branded product (SBD, else the brand name),
# another strength or form, and a pack; None where the tables hold no brand or no pack.
EXAMPLES: dict[str, tuple[str | None, str, str | None]] = {
    "anastrozole": ("262485", "199224", None),  # Arimidex (BN), 1 mg tablet
    "letrozole": ("153124", "200064", "1923053"),  # Femara 2.5 mg; letrozole/ribociclib pack
    "exemestane": ("261317", "310261", None),  # Aromasin 25 mg
    "aromatase-inhibitors": ("153124", "199224", "1923055"),
    "tamoxifen": ("644304", "313195", None),  # Soltamox solution; tamoxifen 20 mg tablet
    "serms": ("1490067", "1370976", None),  # Evista 60 mg; ospemifene 60 mg
    "systemic-estrogens": ("150840", "476545", "750267"),  # Premarin 0.625 mg; weekly patch; OC
    "vaginal-estrogens": ("884709", "310169", "2054317"),  # Vagifem; estradiol cream; inserts
    "estrogens-route-unknown": ("202896", "4083", None),  # Premarin (BN); estradiol (IN)
    "duloxetine": ("615186", "596926", None),  # Cymbalta 60 mg; duloxetine 20 mg
    "maois": ("865208", "312347", None),  # Emsam patch; phenelzine 15 mg
    "linezolid": ("262091", "311345", None),  # Zyvox 600 mg; linezolid suspension
    "methylene-blue": ("1788989", "1737850", None),  # ProvayBlue; methylene blue 10 mg/mL
    "maois-linezolid": ("104836", "311347", None),  # Nardil 15 mg; linezolid 600 mg
    "serotonergic-drugs": ("208161", "1738495", "1433249"),  # Zoloft 50 mg; levomilnacipran pack
    "cyp2d6-inhibitors-strong": ("211700", "1738503", None),  # Paxil 40 mg; paroxetine 30 mg
    "cyp2d6-inhibitors-moderate": ("656137", "432401", None),  # Sensipar 30 mg; 60 mg
    "anticoagulants-antiplatelets": ("855336", "1364445", "1992427"),  # Jantoven 5 mg; Eliquis
    "nsaids": ("849728", "198014", None),  # Aleve 220 mg; naproxen 500 mg
    "acetaminophen": ("209468", "313782", "2636659"),  # Excedrin; acetaminophen 325 mg
    "neuropathic-analgesics": (None, "483450", None),  # pregabalin 75 mg
    "bisphosphonates": ("904495", "904419", "905092"),  # Fosamax Plus D; alendronate 10 mg
    "denosumab": ("993456", "1046402", None),  # Prolia; Xgeva
    "bone-modifying-agents": ("1046402", "904492", "1020066"),  # Xgeva; Atelvia pack
    "calcium-vitamin-d": ("1243415", "808596", "1102202"),  # Os-Cal 500 with D; 24 HR 1500 mg
}


def groups(knowledge: Knowledge, code: str, system: str = RXNORM) -> set[str]:
    return {m.valueset for m in knowledge.matches([{"system": system, "code": code}])}


def _valuesets() -> dict[str, dict]:
    return {
        (resource := json.loads(path.read_text(encoding="utf-8")))["id"]: resource
        for path in sorted(PROFILES.glob("ValueSet-*.json"))
    }


def _term_types(valueset: dict, everything: dict[str, dict]) -> dict[str, str]:
    """rxcui -> term type, from the include-level rxnorm-concept extension, through groupings."""
    found: dict[str, str] = {}
    for include in valueset["compose"]["include"]:
        for url in include.get("valueSet", []):
            found |= _term_types(everything[url.rsplit("/", 1)[1]], everything)
        if include.get("system") == RXNORM:
            (ext,) = [e for e in include["extension"] if e["url"] == RXNORM_EXT]
            tty = {p["url"]: p for p in ext["extension"]}["termType"]["valueCode"]
            found |= {c["code"]: tty for c in include["concept"]}
    return found


def test_every_drug_valueset_has_examples(knowledge: Knowledge) -> None:
    drug_sets = {vs for vs, codes in knowledge.valuesets.items() if any(s == RXNORM for s, _ in codes)}
    assert drug_sets == set(EXAMPLES)


@pytest.mark.parametrize(
    ("valueset", "code"),
    [(vs, code) for vs, example in EXAMPLES.items() for code in example if code],
)
def test_brands_strengths_and_packs_are_members(knowledge: Knowledge, valueset: str, code: str) -> None:
    assert valueset in groups(knowledge, code)


def test_examples_are_a_brand_another_product_and_a_pack() -> None:
    everything = _valuesets()
    for valueset, (brand, other, pack) in EXAMPLES.items():
        types = _term_types(everything[valueset], everything)
        if brand:
            assert types[brand] in {"SBD", "BN"}, valueset
        else:
            assert not {"SBD", "BN"} & set(types.values()), f"{valueset} has a brand: add it"
        assert other != brand and other in types, valueset
        if pack:
            assert types[pack] in PACKS, valueset
        else:
            assert not PACKS & set(types.values()), f"{valueset} has a pack: add it to EXAMPLES"


def test_the_orders_issue_11_names_are_recognised(knowledge: Knowledge) -> None:
    assert "serms" in groups(knowledge, "1490067")  # raloxifene 60 mg [Evista]
    assert "systemic-estrogens" in groups(knowledge, "150840")  # conjugated estrogens [Premarin]
    for cymbalta in ("482574", "615186"):  # brand name, 60 mg capsule
        assert {"duloxetine", "cyp2d6-inhibitors-moderate"} <= groups(knowledge, cymbalta)
    assert "tamoxifen" in groups(knowledge, "313195")  # tamoxifen 20 mg
    for paroxetine in ("1738483", "1738503", "1738511"):  # 10, 30, 40 mg
        assert {"cyp2d6-inhibitors-strong", "serotonergic-drugs"} <= groups(knowledge, paroxetine)
    # Alendronate 70 mg weekly with cholecalciferol; the tables hold no plain 70 mg tablet.
    assert {"bisphosphonates", "bone-modifying-agents"} <= groups(knowledge, "904492")
    for alendronate in ("46041", "904419", "904421", "114265"):  # IN, 10 mg, [Fosamax], Fosamax
        assert "bisphosphonates" in groups(knowledge, alendronate)


@pytest.mark.parametrize(
    "code",
    ["310169", "890918", "688242", "884709", "152483", "848330", "2054317"],
    ids=["estradiol cream", "Estrace cream", "Premarin cream", "Vagifem", "Vagifem BN",
         "Estring", "insert pack"],
)
def test_vaginal_estrogen_is_not_systemic(knowledge: Knowledge, code: str) -> None:
    found = groups(knowledge, code)
    assert "vaginal-estrogens" in found
    assert not found & {"systemic-estrogens", "estrogens-route-unknown"}


@pytest.mark.parametrize(
    "code",
    ["476545", "2619684", "150840", "848333", "1367439"],
    ids=["patch", "topical gel", "oral", "Femring (systemic dose)", "contraceptive ring"],
)
def test_transdermal_topical_and_systemic_rings_are_systemic(knowledge: Knowledge, code: str) -> None:
    found = groups(knowledge, code)
    assert "systemic-estrogens" in found
    assert not found & {"vaginal-estrogens", "estrogens-route-unknown"}


@pytest.mark.parametrize("code", ["4083", "4099", "202619", "202896"])
def test_codes_without_a_route_are_systemic_and_flagged(knowledge: Knowledge, code: str) -> None:
    """Estradiol, conjugated estrogens (IN), Estrace and Premarin (sold both ways)."""
    found = groups(knowledge, code)
    assert {"systemic-estrogens", "estrogens-route-unknown"} <= found
    assert "vaginal-estrogens" not in found


@pytest.mark.parametrize("code", ["1441392", "1441740", "1441735"])
def test_bazedoxifene_with_conjugated_estrogens_is_a_serm_only(knowledge: Knowledge, code: str) -> None:
    found = groups(knowledge, code)
    assert "serms" in found
    assert not found & {"systemic-estrogens", "vaginal-estrogens", "estrogens-route-unknown"}


def test_combination_products_count_for_each_ingredient(knowledge: Knowledge) -> None:
    assert "acetaminophen" in groups(knowledge, "856999")  # acetaminophen / hydrocodone
    assert {"nsaids", "serotonergic-drugs"} <= groups(knowledge, "2588478")  # celecoxib/tramadol
    assert {"acetaminophen", "anticoagulants-antiplatelets"} <= groups(knowledge, "209468")
    assert {"bisphosphonates", "calcium-vitamin-d"} <= groups(knowledge, "607553")  # Fosamax Plus D


def test_contraindicated_with_duloxetine_is_the_union(knowledge: Knowledge) -> None:
    union = knowledge.codes("maois") | knowledge.codes("linezolid") | knowledge.codes("methylene-blue")
    assert knowledge.codes("maois-linezolid") == union
    for maoi in ("8123", "10734", "6011", "9639", "134748", "1922448", "865206"):
        assert "maois-linezolid" in groups(knowledge, maoi)
    # Oral urinary methylene-blue combinations are not the IV exposure the label names.
    assert "maois-linezolid" not in groups(knowledge, "1048307")


def test_duloxetine_is_not_a_serotonergic_co_medication_of_itself(knowledge: Knowledge) -> None:
    assert "serotonergic-drugs" not in groups(knowledge, "596930")
    for drug in ("36437", "39786", "704", "37418", "10689", "42351", "1827", "4337"):
        assert "serotonergic-drugs" in groups(knowledge, drug)  # sertraline ... fentanyl


def test_every_rxnorm_concept_records_its_term_type_and_release() -> None:
    rows = 0
    for valueset in _valuesets().values():
        for include in valueset["compose"]["include"]:
            if include.get("system") != RXNORM:
                continue
            assert include["version"], valueset["id"]
            (ext,) = [e for e in include["extension"] if e["url"] == RXNORM_EXT]
            parts = {p["url"]: p for p in ext["extension"]}
            assert parts["termType"]["valueCode"] in TERM_TYPES, valueset["id"]
            rows += len(include["concept"])
    assert rows > 3000


def test_trigger_finger_of_every_digit(knowledge: Knowledge) -> None:
    digits = {f"M65.3{d}{s}" for d in "12345" for s in "129"} | {"M65.30"}
    listed = {code for system, code in knowledge.codes("trigger-finger") if system == ICD10CM}
    assert digits <= listed
    for code in digits:
        assert "hand-wrist-syndromes" in groups(knowledge, code, ICD10CM)


@pytest.mark.parametrize(
    ("code", "valueset", "expected"),
    [
        ("C79.51", "metastatic-disease", True),  # bone
        ("C78.7", "metastatic-disease", True),  # liver
        ("C77.3", "metastatic-disease", False),  # axillary nodes: regional, not distant
        ("M80.08XA", "fragility-fracture", True),  # vertebra, initial encounter
        ("Z87.310", "fragility-fracture", True),
        ("I97.2", "lymphedema", True),
        ("F33.1", "depression", True),
        ("F32.81", "depression", False),  # premenstrual dysphoric disorder
        ("K74.60", "hepatic-impairment", True),
        ("F10.20", "alcohol-use-disorder", True),
        ("F10.21", "alcohol-use-disorder", False),  # in remission
        ("H40.2211", "narrow-angle-glaucoma", True),
        ("N97.0", "infertility", True),
        ("Z31.84", "infertility", True),
    ],
)
def test_condition_codes(knowledge: Knowledge, code: str, valueset: str, expected: bool) -> None:
    assert (valueset in groups(knowledge, code, ICD10CM)) is expected


def test_kidney_function_and_calcium_labs(knowledge: Knowledge) -> None:
    for egfr in ("33914-3", "62238-1", "98979-8", "48642-3", "48643-1"):
        assert "egfr" in groups(knowledge, egfr, LOINC)
    assert "creatinine-clearance" in groups(knowledge, "35591-7", LOINC)
    assert "serum-calcium" in groups(knowledge, "17861-6", LOINC)
    assert not any(m.verified for m in knowledge.matches([{"system": LOINC, "code": "2164-2"}]))


@pytest.mark.parametrize("table", ["rxnorm-added.tsv", "clinical-codes-added.tsv"])
def test_every_added_row_names_its_source(table: str) -> None:
    with (TERMINOLOGY / table).open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert rows
    assert all(row["source"].strip() for row in rows)


def _generate(terminology: Path, out: Path) -> dict[str, bytes]:
    subprocess.run(
        [sys.executable, str(GENERATOR), "--terminology", str(terminology), "--out", str(out)],
        check=True, capture_output=True, cwd=out,
    )
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_committed_valuesets_are_the_generator_output_of_the_repository(tmp_path: Path) -> None:
    """Stale if it fails: run python scripts/build_valuesets.py (reads terminology/ only)."""
    tables = shutil.copytree(TERMINOLOGY, tmp_path / "terminology")
    (first := tmp_path / "a").mkdir()
    (second := tmp_path / "b").mkdir()
    generated = _generate(tables, first)
    assert _generate(tables, second) == generated, "the generator is not deterministic"
    committed = {
        p.name: p.read_bytes()
        for p in sorted(PROFILES.iterdir())
        if p.name.startswith("ValueSet-") or p.name == "VALUESETS.md"
    }
    assert committed == generated
