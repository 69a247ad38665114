#!/usr/bin/env python3
"""Build the FHIR R4 ValueSets in fhir_profiles/ from the shared code table.

Usage:  python scripts/build_valuesets.py [TSV] [--out DIR]

TSV defaults to ../shared/reference/clinical-codes.tsv relative to the repo root (columns:
group, system, code, display, note, status, source). Every member code must exist in the
TSV -- the script never invents one and stops if a listed code is missing. Codes the TSV marks
UNVERIFIED are included, flagged by the code-verification extension. A set whose code list
is empty (nothing in the TSV) is not written; VALUESETS.md lists it instead.
Output is deterministic: same TSV in, same bytes out. Stdlib only.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TSV = REPO / ".." / "shared" / "reference" / "clinical-codes.tsv"
BASE = "http://aimss-cds.example.org/fhir"
VERIFICATION_EXT = f"{BASE}/StructureDefinition/code-verification"
VERSION = "0.1.0"
VSAC = "http://cts.nlm.nih.gov/fhir/ValueSet/"
COLUMNS = ["group", "system", "code", "display", "note", "status", "source"]

# S-keys of clinical-evidence.md section 0, expanded.
SOURCES = {
    "S1": "cqframework/ecqm-content-qicore-2024 @ 9ebd48ffe: VSAC value-set expansions, incl. the "
          "US Core common substances for allergy and intolerance value set (RxNorm ingredients)",
    "S2": "HL7/fhir-mCODE-ig @ 543477b5: input/fsh/EX_ExtendedExample.fsh",
    "S3": "HL7/US-Core @ 85bf4af6e: input/examples-yaml (DXA, bone-density report, PHQ-9 examples)",
    "S4": "cqframework/cds4cpm @ e73c2d2 (CDS for Chronic Pain Management): VSAC expansions and "
          "CQL code declarations",
    "S5": "AHRQ-CDS/AHRQ-CDS-Connect-PAIN-MANAGEMENT-SUMMARY @ f9f63c6: "
          "FactorsToConsiderInManagingChronicPainFHIRv401.cql",
    "S6": "synthetichealth/synthea: costs/medications.csv @ 00f3c89 and "
          "modules/breast_cancer/hormonetherapy_breast.json @ 00ec0db",
    "S7": "PyPI simple-icd-10-cm 1.5.0 (CMS ICD-10-CM tabular list)",
    "S8": "IHE/PCC.APS: input/fsh/AntepartumSummary_ValueSets.fsh",
    "S9": "canvas-medical/canvas-plugins: canvas_sdk/value_set/v2026 (VSAC sets as Python)",
    "S10": "Reference-laboratory test catalogues (ARUP 0080379, MercyOne/Mayo 419, NorDx VITDT)",
    "S11": "cqframework/opioid-cds-r4: CDC opioid CDS value sets",
}

DULOXETINE = ["72625", "596926", "596930", "616402", "596934", "2200175", "2200181", "N06AX21"]

# id -> title, purpose (markdown), codes (TSV codes, in display order) or group (member ids),
# vsac: [(name, OID)] the set mirrors or draws from (clinical-evidence.md section 2).
VALUESETS: dict[str, dict] = {
    # ---- Medications -------------------------------------------------------------------------
    "anastrozole": dict(
        title="Anastrozole",
        purpose="Anastrozole products (RxNorm ingredient, SCD, brand; ATC). Identifies current "
                "or past aromatase-inhibitor use (trigger for every patient-view rule).",
        codes=["84857", "199224", "262485", "L02BG03"],
        vsac=[("Aromatase Inhibitors (SCD subset)", "2.16.840.1.113883.3.464.1003.196.12.1265")]),
    "letrozole": dict(
        title="Letrozole",
        purpose="Letrozole products (RxNorm ingredient, SCD, letrozole/ribociclib packs, brand; "
                "ATC). Identifies current or past aromatase-inhibitor use.",
        codes=["72965", "200064", "1923053", "1923055", "1923057", "203769", "L02BG04"],
        vsac=[("Aromatase Inhibitors (SCD subset)", "2.16.840.1.113883.3.464.1003.196.12.1265")]),
    "exemestane": dict(
        title="Exemestane",
        purpose="Exemestane products (RxNorm ingredient, SCD, brand; ATC). Identifies current "
                "or past aromatase-inhibitor use.",
        codes=["258494", "310261", "262105", "L02BG06"],
        vsac=[("Aromatase Inhibitors (SCD subset)", "2.16.840.1.113883.3.464.1003.196.12.1265")]),
    "aromatase-inhibitors": dict(
        title="Aromatase inhibitors",
        purpose="All aromatase inhibitors (anastrozole, letrozole, exemestane): the context gate "
                "of the service and the 'on an AI' fact.",
        group=["anastrozole", "letrozole", "exemestane"],
        vsac=[("Aromatase Inhibitors", "2.16.840.1.113883.3.464.1003.196.12.1265")]),
    "tamoxifen": dict(
        title="Tamoxifen",
        purpose="Tamoxifen products. Switch target after AI failure, and the tamoxifen side of the "
                "`tamoxifen-cyp2d6` warning.",
        codes=["10324", "198240", "L02BA01"]),
    "serms": dict(
        title="SERMs not to combine with an aromatase inhibitor",
        purpose="Raloxifene and bazedoxifene products (not tamoxifen). A draft order from this set "
                "for a patient on an AI fires the critical `serm-with-ai` card (clinical-evidence "
                "W1). Bazedoxifene/conjugated estrogens 1441392 is also in `systemic-estrogens`.",
        codes=["72143", "1490065", "1441392"]),
    "systemic-estrogens": dict(
        title="Systemic estrogens",
        purpose="Systemic (oral, transdermal) estradiol and conjugated-estrogen products; no "
                "vaginal products (clinical-evidence W2). A draft from this set for a patient on "
                "an AI fires the critical `estrogen-with-ai` card. The ingredient codes 4083 and "
                "4099 do not carry a route: a vaginal product coded only by ingredient will match.",
        codes=["4083", "4099", "197657", "197658", "197659", "1149632", "310197", "197660",
               "403849", "1441392"],
        vsac=[("Potentially Harmful Estrogens for Older Adults (subset)",
               "2.16.840.1.113883.3.464.1003.1058")]),
    "duloxetine": dict(
        title="Duloxetine",
        purpose="Duloxetine products (RxNorm ingredient, SCDs, ATC). Evidence that duloxetine is "
                "already in place, and the drug the `duloxetine` card proposes (596930 30 mg, "
                "596934 60 mg).",
        codes=DULOXETINE,
        vsac=[("Antidepressant Medication (duloxetine subset)",
               "2.16.840.1.113883.3.464.1003.196.12.1213")]),
    "maois-linezolid": dict(
        title="MAOIs and linezolid",
        purpose="Monoamine-oxidase inhibitors (phenelzine, tranylcypromine, isocarboxazid, "
                "selegiline) and linezolid: contraindicated with duloxetine (critical "
                "`serotonergic-interaction`, clinical-evidence W4). IV methylene blue has no code "
                "in the table.",
        codes=["312347", "313447", "104837", "859186", "859193", "859190", "865206", "190376",
               "311347"],
        vsac=[("Antidepressant Medication (MAOI subset)",
               "2.16.840.1.113883.3.464.1003.196.12.1213")]),
    "serotonergic-drugs": dict(
        title="Serotonergic drugs (serotonin-syndrome warning with duloxetine)",
        purpose="Tramadol and SSRIs (fluoxetine, paroxetine): warning-level "
                "`serotonergic-interaction` with duloxetine (clinical-evidence W4). The code table "
                "has no other SNRI, SSRI, TCA, triptan, fentanyl, lithium, buspirone, tryptophan "
                "or St John's Wort code yet; MAOIs and linezolid are in `maois-linezolid`.",
        codes=["10689", "835603", "4493", "310385", "32937", "1738495"]),
    "cyp2d6-inhibitors-strong": dict(
        title="Strong CYP2D6 inhibitors",
        purpose="Strong CYP2D6 inhibitors (paroxetine, fluoxetine, bupropion, quinidine, "
                "terbinafine, per the code-table notes): with tamoxifen they cut conversion to "
                "endoxifen (`tamoxifen-cyp2d6`, clinical-evidence W3). Clinical-evidence W3 lists "
                "terbinafine with the moderate/other group; the code table calls it strong.",
        codes=["32937", "1738495", "4493", "310385", "42347", "993518", "993541", "993557",
               "9068", "37801"]),
    "cyp2d6-inhibitors-moderate": dict(
        title="Moderate CYP2D6 inhibitors",
        purpose="Moderate CYP2D6 inhibitors for the `tamoxifen-cyp2d6` warning (clinical-evidence "
                "W3): duloxetine (same codes as ValueSet `duloxetine`). Cinacalcet has no code in "
                "the table.",
        codes=DULOXETINE),
    "nsaids": dict(
        title="NSAIDs",
        purpose="Non-steroidal anti-inflammatory drugs (celecoxib, ibuprofen, naproxen): "
                "analgesics already tried (`analgesic-expectations`) and bleeding risk with "
                "duloxetine (clinical-evidence W5).",
        codes=["140587", "205322", "205323", "5640", "197805", "197806", "197807", "7258",
               "198013", "198012", "198014", "849574"],
        vsac=[("Non opioid pain medications (NSAID subset)", "2.16.840.1.113762.1.4.1021.73")]),
    "acetaminophen": dict(
        title="Acetaminophen",
        purpose="Acetaminophen products: analgesic already tried (`analgesic-expectations`).",
        codes=["161", "313782", "198440"],
        vsac=[("Non opioid pain medications (acetaminophen subset)",
               "2.16.840.1.113762.1.4.1021.73")]),
    "neuropathic-analgesics": dict(
        title="Neuropathic analgesics (gabapentinoids)",
        purpose="Gabapentin and pregabalin products: interventions already in place.",
        codes=["25480", "310430", "310431", "310432", "310433", "310434", "187832", "483442",
               "483448", "483450", "483438", "483440"],
        vsac=[("Non opioid pain medications (gabapentinoid subset)",
               "2.16.840.1.113762.1.4.1021.73")]),
    "bisphosphonates": dict(
        title="Bisphosphonates",
        purpose="Alendronate, risedronate, ibandronate and zoledronic acid products: bone "
                "protection already in place (`bone-protection`, `serm-with-ai` suggestion).",
        codes=["46041", "904419", "73056", "115264", "77655", "1114085"]),
    "denosumab": dict(
        title="Denosumab",
        purpose="Denosumab products: bone protection already in place (`bone-protection`).",
        codes=["993449", "993452"]),
    "bone-modifying-agents": dict(
        title="Bone-modifying agents",
        purpose="Bisphosphonates and denosumab: any bone-directed therapy in place.",
        group=["bisphosphonates", "denosumab"]),
    "calcium-vitamin-d": dict(
        title="Calcium and vitamin D supplements",
        purpose="Calcium and cholecalciferol ingredients: supplementation already in place "
                "(`bone-protection`, `ai-start-bone-health`).",
        codes=["1895", "1897", "2418"]),
    # ---- Observations ------------------------------------------------------------------------
    "pain-severity": dict(
        title="Pain severity 0-10",
        purpose="Pain-severity scores on a 0-10 numeric scale: the 'pain 0-10 (latest, trend)' "
                "fact. Not interference scores. The table has no BPI severity item code. Left out: "
                "38214-3 (visual analogue, often 0-100 mm) and PROMIS intensity items (own "
                "response scales).",
        codes=["72514-3", "38208-5", "75893-8"],
        vsac=[("Standardized Pain Assessment Tool (subset)", "2.16.840.1.113883.3.526.3.1028")]),
    "bpi-interference": dict(
        title="BPI pain interference score",
        purpose="Brief Pain Inventory pain-interference score (0-10; mean of 7 items, valid with "
                ">= 4 answered). BPI interference >= 7 fires `multimodal-management`. The table "
                "has no BPI interference item codes; compute the score from a "
                "QuestionnaireResponse.",
        codes=["77565-0"],
        vsac=[("Standardized Pain Assessment Tool (subset)", "2.16.840.1.113883.3.526.3.1028")]),
    "dxa-results": dict(
        title="DXA bone density results",
        purpose="Every DXA / bone-density LOINC observation code (VSAC DXA set plus US Core "
                "DXA codes). The latest effective date of any of them is the date of the last DXA "
                "(`bone-density-scan`, `ai-start-bone-health`).",
        codes=["38263-0", "38264-8", "38267-1", "38265-5", "38266-3", "24701-5", "38261-4",
               "24966-4", "46278-8", "46279-6", "46383-6", "24890-6", "38262-2", "38268-9",
               "80948-3", "80946-7", "80940-0", "80938-4", "80954-1", "83311-1"],
        vsac=[("DXA (Dual energy Xray Absorptiometry) Scan",
               "2.16.840.1.113883.3.464.1003.113.12.1051")]),
    "dxa-t-scores": dict(
        title="DXA T-scores (spine, femur, hip)",
        purpose="Central-site DXA T-scores: lumbar spine, femur, hip. The lowest one and its "
                "change drive `bone-protection`. Radius/ulna (38265-5) and calcaneus (38266-3) "
                "T-scores are peripheral sites and left out (they are in `dxa-results`).",
        codes=["38267-1", "38263-0", "38264-8", "80948-3", "80946-7"],
        vsac=[("DXA (Dual energy Xray Absorptiometry) Scan (T-score subset)",
               "2.16.840.1.113883.3.464.1003.113.12.1051")]),
    "phq9": dict(
        title="PHQ-9 total score",
        purpose="PHQ-9 total score: depression screen (`contributing-factors`); >= 10 supports "
                "`duloxetine`. The panel code 44249-1 carries no score and is left out.",
        codes=["44261-6"],
        vsac=[("PHQ 9 and PHQ 9M Tools (subset)", "2.16.840.1.113883.3.67.1.101.1.263")]),
    "phq2": dict(
        title="PHQ-2 total score",
        purpose="PHQ-2 total score: depression screen (`contributing-factors`).",
        codes=["55758-7"]),
    "tsh": dict(
        title="TSH",
        purpose="Thyrotropin (TSH) in serum or plasma: contributing-factor lab "
                "(`contributing-factors`).",
        codes=["3016-3", "11580-8"]),
    "vitamin-d-25oh": dict(
        title="25-hydroxyvitamin D",
        purpose="25-OH vitamin D (total, D3; mass and molar units): contributing-factor lab "
                "(`contributing-factors`, `bone-protection`).",
        codes=["62292-8", "1989-3", "14635-7"]),
    # ---- Conditions --------------------------------------------------------------------------
    "aimss-symptoms": dict(
        title="AIMSS symptoms (arthralgia, joint stiffness, myalgia)",
        purpose="Coded joint pain, joint stiffness, myalgia, hand pain and adverse effect of "
                "antiestrogens: 'AIMSS present' (`exercise`, `switch-therapy`, `adherence`). "
                "The ICD-10-CM codes are specific leaves; the table has no other M25.5x/M25.6x/"
                "M79.1x/M79.64x codes.",
        codes=["57676002", "M25.50", "M25.541", "M25.542", "M25.60", "M79.10", "M79.641",
               "M79.642", "T38.6X5A"]),
    "neuropathic-features": dict(
        title="Neuropathic features",
        purpose="Neuropathy, polyneuropathy, paresthesia and carpal tunnel syndrome (an "
                "entrapment neuropathy, listed as a trigger in clinical-evidence R11): supports "
                "`duloxetine`.",
        codes=["302226006", "G62.0", "G62.9", "R20.2", "57406009", "G56.00", "G56.01",
               "G56.02", "G56.03"],
        vsac=[("Peripheral Neuropathy (ICD-10-CM subset)", "2.16.840.1.113762.1.4.1248.175")]),
    "hand-wrist-syndromes": dict(
        title="Hand and wrist syndromes",
        purpose="Carpal tunnel syndrome, trigger finger/thumb and de Quervain tenosynovitis: "
                "fire `hand-wrist`. M65.31 is a non-billable category (records use "
                "M65.311/M65.312); the table has no SNOMED code for de Quervain.",
        codes=["57406009", "G56.00", "G56.01", "G56.02", "G56.03", "1539003", "M65.30",
               "M65.31", "M65.4"]),
    "hand-wrist-symptoms": dict(
        title="Focal hand and wrist symptoms",
        purpose="Pain in the hand or the joints of the hand: fire `hand-wrist` together with "
                "the hand and wrist syndromes.",
        codes=["M25.541", "M25.542", "M79.641", "M79.642"]),
    "depression": dict(
        title="Depression",
        purpose="Depressive disorder diagnoses: support `duloxetine`.",
        codes=["35489007", "370143000", "F32.A", "F32.9", "F33.9"],
        vsac=[("Major Depression (subset)", "2.16.840.1.113883.3.464.1003.105.12.1007"),
              ("Depression (ICD-10-CM subset)", "2.16.840.1.113762.1.4.1248.169")]),
    "osteoporosis": dict(
        title="Osteoporosis",
        purpose="Osteoporosis diagnoses: fire `bone-protection`.",
        codes=["64859006", "102447009", "14651005", "M81.0", "M81.8"],
        vsac=[("Osteoporosis Without Current Fracture (subset)",
               "2.16.840.1.113883.3.464.1003.113.12.1038")]),
    "osteopenia": dict(
        title="Osteopenia",
        purpose="Osteopenia diagnoses (ICD-10-CM has no osteopenia term; M85.8x as in VSAC): "
                "bone-health context for `bone-protection`.",
        codes=["312894000", "735614005", "735616007", "M85.80", "M85.89"],
        vsac=[("Osteopenia (subset)", "2.16.840.1.113883.3.464.1003.113.12.1049")]),
    "lymphedema": dict(
        title="Lymphedema",
        purpose="Lymphedema: a `red-flags` trigger.",
        codes=[]),
    "metastatic-disease": dict(
        title="Metastatic disease",
        purpose="Metastatic breast cancer: `switch-therapy` (discuss stopping) and `red-flags`.",
        codes=[]),
    "breast-cancer": dict(
        title="Breast cancer",
        purpose="Breast cancer diagnoses, including hormone-receptor-positive and personal "
                "history (Z85.3): context only.",
        codes=["254837009", "372064008", "372137005", "417181009", "353431000119107",
               "C50.911", "C50.912", "C50.919", "Z85.3"],
        vsac=[("Cancer (breast subset)", "2.16.840.1.113883.3.526.3.1010"),
              ("All Primary and Secondary Cancer (breast subset)",
               "2.16.840.1.113762.1.4.1111.161")]),
    # ---- Procedures and orders ---------------------------------------------------------------
    "dxa-procedures": dict(
        title="Bone density scan procedures",
        purpose="Bone density scan procedures and orders (SNOMED, CPT, LOINC imaging study "
                "38268-9): date of the last DXA from Procedure/ServiceRequest/DiagnosticReport, "
                "and the code the `bone-density-scan` card orders. 312681000 is a generic bone "
                "density scan, not DXA-specific.",
        codes=["312681000", "77080", "77081", "77085", "38268-9"]),
    "physical-therapy": dict(
        title="Physical therapy",
        purpose="Physical therapy referrals, evaluations and therapy: PT already in place, and "
                "the referral the `exercise` and `hand-wrist` cards suggest.",
        codes=["308447003", "306170007", "444831000124102", "183326003", "410158009",
               "97161", "97162", "97163", "97164"],
        vsac=[("Physical Therapy Evaluation (subset)", "2.16.840.1.113883.3.526.3.1022")]),
    "acupuncture": dict(
        title="Acupuncture",
        purpose="Acupuncture procedure and consult note: acupuncture already in place "
                "(`exercise` suggests it as a complement, SWOG S1200).",
        codes=["386637004", "85237-6"]),
    "exercise-program": dict(
        title="Exercise program",
        purpose="Exercise therapy, prescription, referral and counselling: exercise already in "
                "place, and what the `exercise` card orders.",
        codes=["310882002", "390864007", "386291006", "229065009", "281090004"]),
    "hand-therapy": dict(
        title="Hand therapy",
        purpose="Hand therapy / occupational therapy and splinting: `hand-wrist`.",
        codes=[]),
}

# TSV codes deliberately in no ValueSet, with the reason (shown in VALUESETS.md).
LEFT_OUT = {
    "38214-3": "visual analogue pain score: scale often 0-100 mm, not the 0-10 the rules assume",
    "75262-6": "PROMIS pain intensity item: 1-5 verbal scale, not 0-10",
    "75261-8": "PROMIS pain intensity item: 1-5 verbal scale, not 0-10",
    "75260-0": "PROMIS pain intensity item: not a 0-10 NRS",
    "77564-3": "BPI panel code, UNVERIFIED and carries no score",
    "91145-3": "PEG interference item, not BPI",
    "91146-1": "PEG interference item, not BPI",
    "91147-9": "PEG mean (severity + interference mixed)",
    "61758-9": "PROMIS interference item, not BPI", "61761-3": "PROMIS interference item, not BPI",
    "61762-1": "PROMIS interference item, not BPI", "61769-6": "PROMIS interference item, not BPI",
    "61773-8": "PROMIS interference item, not BPI", "61775-3": "PROMIS interference item, not BPI",
    "61777-9": "PROMIS interference item, not BPI", "61794-4": "PROMIS interference item, not BPI",
    "44249-1": "PHQ-9 panel: no score of its own",
    "85337-4": "ER status (HR+ gate), no ValueSet requested",
    "85339-0": "PR status (HR+ gate), no ValueSet requested",
    "LA6576-8": "answer code (Positive)", "LA6577-6": "answer code (Negative)",
    "Z17.0": "ER+ status, no ValueSet requested",
    "Z79.811": "long-term AI use: supporting evidence only, no ValueSet requested",
    "Z79.810": "long-term SERM use: a Condition code, not a medication",
    "Z79.818": "long-term use of other estrogen-receptor agents, no ValueSet requested",
    "Z79.890": "hormone replacement therapy: a Condition code, not a medication",
    "Z13.820": "screening encounter, not a DXA result or procedure",
    "Z78.0": "menopausal state, no ValueSet requested",
    "E55.9": "vitamin D deficiency diagnosis, no ValueSet requested",
    "E03.9": "hypothyroidism diagnosis, no ValueSet requested",
    "G89.29": "chronic pain, not AIMSS-specific",
    "G89.3": "neoplasm-related pain, not AIMSS-specific",
    "373621006": "chronic pain syndrome, not AIMSS-specific",
    "714252004": "post-mastectomy pain, not AIMSS",
    "788891004": "chronic pain after cancer treatment, not AIMSS-specific",
    "203082005": "fibromyalgia: a differential diagnosis, not AIMSS",
}


def pascal(identifier: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in identifier.split("-"))


def read_tsv(path: Path) -> dict[str, dict]:
    if not path.is_file():
        sys.exit(f"code table not found: {path}")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        if reader.fieldnames != COLUMNS:
            sys.exit(f"{path}: expected columns {COLUMNS}, got {reader.fieldnames}")
        rows = list(reader)
    table: dict[str, dict] = {}
    for row in rows:
        if row["code"] in table:
            sys.exit(f"code {row['code']} appears twice in {path}; refer to it by system")
        table[row["code"]] = row
    return table


def concept(row: dict) -> dict:
    return {"code": row["code"], "display": row["display"], "extension": [{
        "url": VERIFICATION_EXT,
        "extension": [{"url": "status", "valueCode": row["status"].lower()},
                      {"url": "source", "valueString": row["source"]}]}]}


def sources_markdown(rows: list[dict]) -> str:
    keys, others = [], []
    for row in rows:
        found = re.findall(r"\bS(\d+)\b", row["source"])
        for n in found:
            if f"S{n}" not in keys:
                keys.append(f"S{n}")
        if not found and row["source"] not in others:
            others.append(row["source"])
    keys.sort(key=lambda k: int(k[1:]))
    lines = [f"- {k}: {SOURCES[k]}" for k in keys]
    lines += [f"- Other (as worded in the table): {o}" for o in others]
    return "\n".join(lines)


def describe(spec: dict, rows: list[dict]) -> str:
    parts = [spec["purpose"]]
    unverified = sum(r["status"] == "UNVERIFIED" for r in rows)
    parts.append(f"{len(rows)} codes, {unverified} UNVERIFIED. Each concept's code-verification "
                 "extension gives its status (verified, verified-b, unverified) and source; "
                 "unverified codes are matched but flagged on cards. Generated by "
                 "scripts/build_valuesets.py from clinical-codes.tsv; do not edit by hand.")
    parts.append("Sources (clinical-evidence.md):\n\n" + sources_markdown(rows))
    if spec.get("vsac"):
        parts.append("Mirrors VSAC (hand-picked members, not the full expansion):\n\n" + "\n".join(
            f"- {name}: OID {oid}, canonical {VSAC}{oid}" for name, oid in spec["vsac"]))
    return "\n\n".join(parts)


def build(vs_id: str, spec: dict, rows: list[dict], member_urls: list[str] | None) -> dict:
    if member_urls is not None:
        compose = {"include": [{"valueSet": member_urls}]}
    else:
        systems: dict[str, list] = {}
        for row in rows:
            systems.setdefault(row["system"], []).append(concept(row))
        compose = {"include": [{"system": s, "concept": c} for s, c in systems.items()]}
    return {
        "resourceType": "ValueSet",
        "id": vs_id,
        "url": f"{BASE}/ValueSet/{vs_id}",
        "version": VERSION,
        "name": pascal(vs_id),
        "title": spec["title"],
        "status": "draft",
        "experimental": False,
        "publisher": "AIMSS CDS",
        "description": describe(spec, rows),
        "compose": compose,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tsv", nargs="?", type=Path, default=DEFAULT_TSV)
    ap.add_argument("--out", type=Path, default=REPO / "fhir_profiles")
    args = ap.parse_args(argv)
    table = read_tsv(args.tsv)

    missing = [(i, c) for i, s in VALUESETS.items() for c in s.get("codes", []) if c not in table]
    if missing:
        sys.exit(f"codes not in {args.tsv}: {missing}")

    members = {i: [table[c] for c in s["codes"]] for i, s in VALUESETS.items() if "codes" in s}
    for i, s in VALUESETS.items():
        if "group" in s:
            members[i] = [r for m in s["group"] for r in members[m]]
    empty = [i for i in VALUESETS if not members[i]]

    args.out.mkdir(parents=True, exist_ok=True)
    summary = []
    for vs_id, spec in VALUESETS.items():
        if vs_id in empty:
            continue
        group = spec.get("group")
        if group and any(m in empty for m in group):
            sys.exit(f"{vs_id} groups an empty ValueSet")
        urls = [f"{BASE}/ValueSet/{m}" for m in group] if group else None
        resource = build(vs_id, spec, members[vs_id], urls)
        text = json.dumps(resource, indent=2, ensure_ascii=False) + "\n"
        (args.out / f"ValueSet-{vs_id}.json").write_text(text, encoding="utf-8")
        unverified = sum(r["status"] == "UNVERIFIED" for r in members[vs_id])
        summary.append((vs_id, spec["title"], len(members[vs_id]), unverified, bool(group)))

    used = {c for s in VALUESETS.values() for c in s.get("codes", [])}
    unused = [r for c, r in table.items() if c not in used]
    (args.out / "VALUESETS.md").write_text(index_markdown(summary, empty, unused), encoding="utf-8")
    print(f"wrote {len(summary)} ValueSets to {args.out}; no codes for: {', '.join(empty) or '-'}")
    return 0


def index_markdown(summary, empty, unused) -> str:
    out = ["# ValueSets", "",
           "Generated by `scripts/build_valuesets.py` from `clinical-codes.tsv` "
           "(shared reference); "
           "do not edit by hand. Canonical URL: `" + BASE + "/ValueSet/<id>`, file "
           "`ValueSet-<id>.json`. Every concept carries the `code-verification` extension "
           "(status: verified, verified-b, unverified; source).", "",
           "| id | title | codes | UNVERIFIED |", "|---|---|---|---|"]
    for vs_id, title, n, unverified, grouping in summary:
        note = " (grouping: counts its members)" if grouping else ""
        out.append(f"| `{vs_id}` | {title}{note} | {n} | {unverified} |")
    out += ["", "## Asked for, but no code in the table (no file written)", ""]
    out += [f"- `{i}`: {VALUESETS[i]['purpose']}" for i in empty] or ["- none"]
    out += ["", "## Codes of the table in no ValueSet", "",
            "| system | code | display | status | why |", "|---|---|---|---|---|"]
    for r in unused:
        why = LEFT_OUT.get(r["code"], "not classified yet")
        out.append(f"| {r['system']} | `{r['code']}` | {r['display']} | {r['status']} | {why} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
