#!/usr/bin/env python3
"""Build the FHIR R4 ValueSets in fhir_profiles/ from the terminology tables in terminology/.

Usage:  python scripts/build_valuesets.py [--terminology DIR] [--out DIR]

Reads only the repository (terminology/PROVENANCE.md names every source):
- rxnorm-subset.tsv (RxNorm products of the ingredients the rules read) and rxnorm-added.tsv
  (rows closing its gaps; a row there replaces the subset's row of the same rxcui);
- clinical-codes.tsv and clinical-codes-added.tsv (LOINC, SNOMED CT, ICD-10-CM, CPT, ATC).
A drug ValueSet holds every RxNorm concept (IN, PIN, MIN, BN, SCDC, SCD, SBD, GPCK, BPCK) one
of whose ingredients it names: a combination product is in the set of each of its ingredients.
Estrogens are split by dose form and route (vaginal, systemic, route unknown). Every other code
must be listed by code and exist in the tables: nothing is invented. Each concept carries its
verification status and source; an RxNorm concept also its term type and release. The output
is deterministic (same tables in, same bytes out). Stdlib only.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE = "http://aimss-cds.example.org/fhir"
VERIFICATION_EXT = f"{BASE}/StructureDefinition/code-verification"
RXNORM_EXT = f"{BASE}/StructureDefinition/rxnorm-concept"
VERSION = "0.1.0"
VSAC = "http://cts.nlm.nih.gov/fhir/ValueSet/"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
RX_TABLES = ("rxnorm-subset.tsv", "rxnorm-added.tsv")
CODE_TABLES = ("clinical-codes.tsv", "clinical-codes-added.tsv")
RX_COLUMNS = ["rxcui", "tty", "name", "ingredient_rxcuis", "ingredient_names", "dose_form",
              "route", "matched_drugs", "groups", "source", "release", "status", "ndc_count"]
CODE_COLUMNS = ["group", "system", "code", "display", "note", "status", "source"]

# Term types that name no dose form: their route cannot be told from the code alone.
NO_DOSE_FORM = {"IN", "PIN", "MIN", "SCDC"}

ESTROGENS = ["estradiol", "estetrol", "estrogens, conjugated (USP)",
             "estrogens, esterified (USP)", "estropipate", "ethinyl estradiol"]
SERM_INGREDIENTS = ["raloxifene", "bazedoxifene", "ospemifene"]
# Local vaginal estrogen therapy is estradiol or conjugated estrogens by the vaginal route.
LOCAL_VAGINAL_INGREDIENTS = {"estradiol", "estrogens, conjugated (USP)"}
# Vaginal by route, systemic by dose: Femring (estradiol acetate ring, 0.05 or 0.1 mg/day) is
# labelled for moderate to severe vasomotor symptoms (DailyMed setid 61364915-3b0b-427d-9fef-
# 29cdcc427ec5); the 0.00208 and 0.00417 MG/HR SCDs are its generic equivalents.
SYSTEMIC_VAGINAL = {"848331", "848333", "848342", "848343"}

# Sources of clinical-codes.tsv (S-keys of clinical-evidence.md section 0), expanded.
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
    "S7": "PyPI simple-icd-10-cm 1.5.0 (CDC/NCHS ICD-10-CM tabular list, April 2026 release)",
    "S8": "IHE/PCC.APS: input/fsh/AntepartumSummary_ValueSets.fsh",
    "S9": "canvas-medical/canvas-plugins: canvas_sdk/value_set/v2026 (VSAC sets as Python)",
    "S10": "Reference-laboratory test catalogues (ARUP 0080379, MercyOne/Mayo 419, NorDx VITDT)",
    "S11": "cqframework/opioid-cds-r4: CDC opioid CDS value sets",
}

SSRIS = ["citalopram", "escitalopram", "fluoxetine", "fluvoxamine", "paroxetine", "sertraline"]
SNRIS = ["venlafaxine", "desvenlafaxine", "levomilnacipran", "milnacipran"]
TCAS = ["amitriptyline", "amoxapine", "clomipramine", "desipramine", "doxepin", "imipramine",
        "nortriptyline", "protriptyline", "trimipramine"]
TRIPTANS = ["eletriptan", "rizatriptan", "sumatriptan", "zolmitriptan"]
SEROTONERGIC_OPIOIDS = ["fentanyl", "meperidine", "methadone", "tapentadol", "tramadol"]
LITHIUM = ["lithium", "lithium carbonate", "lithium citrate"]
MAOIS = ["isocarboxazid", "phenelzine", "rasagiline", "safinamide", "selegiline",
         "tranylcypromine"]
NSAIDS = ["celecoxib", "diclofenac", "etodolac", "ibuprofen", "indomethacin", "ketorolac",
          "meloxicam", "nabumetone", "naproxen"]
ANTITHROMBOTICS = ["apixaban", "argatroban", "aspirin", "bivalirudin", "clopidogrel",
                   "dabigatran etexilate", "dalteparin", "desirudin", "dipyridamole", "edoxaban",
                   "enoxaparin", "fondaparinux", "heparin", "rivaroxaban", "ticagrelor",
                   "ticlopidine", "warfarin"]
CALCIUM_VITAMIN_D = ["calcium", "calcium carbonate", "calcium citrate", "cholecalciferol",
                     "ergocalciferol"]

# id -> title, purpose (markdown) and members: `ingredients` (RxNorm concepts containing one,
# optionally narrowed by `select` and `without` ingredients), `codes` (listed codes of the
# tables) and/or `include` (other ValueSets, by id); `vsac`: [(name, OID)] it draws from.
VALUESETS: dict[str, dict] = {
    # ---- Medications -------------------------------------------------------------------------
    "anastrozole": dict(
        title="Anastrozole",
        purpose="Every anastrozole product (ingredient, brand, clinical and branded drugs, packs; "
                "ATC): current or past aromatase-inhibitor use, the trigger of every "
                "patient-view rule.",
        ingredients=["anastrozole"], codes=["L02BG03"],
        vsac=[("Aromatase Inhibitors", "2.16.840.1.113883.3.464.1003.196.12.1265")]),
    "letrozole": dict(
        title="Letrozole",
        purpose="Every letrozole product, including the letrozole/ribociclib packs (ATC too): "
                "current or past aromatase-inhibitor use.",
        ingredients=["letrozole"], codes=["L02BG04"],
        vsac=[("Aromatase Inhibitors", "2.16.840.1.113883.3.464.1003.196.12.1265")]),
    "exemestane": dict(
        title="Exemestane",
        purpose="Every exemestane product (ATC too): current or past aromatase-inhibitor use.",
        ingredients=["exemestane"], codes=["L02BG06"],
        vsac=[("Aromatase Inhibitors", "2.16.840.1.113883.3.464.1003.196.12.1265")]),
    "aromatase-inhibitors": dict(
        title="Aromatase inhibitors",
        purpose="All aromatase inhibitors (anastrozole, letrozole, exemestane): the context gate "
                "of the service and the 'on an AI' fact.",
        include=["anastrozole", "letrozole", "exemestane"]),
    "tamoxifen": dict(
        title="Tamoxifen",
        purpose="Every tamoxifen product (ATC too): switch target after AI failure, and the "
                "tamoxifen side of the `tamoxifen-cyp2d6` warning. Toremifene is not included.",
        ingredients=["tamoxifen"], codes=["L02BA01"]),
    "serms": dict(
        title="SERMs not to combine with an aromatase inhibitor",
        purpose="Raloxifene, bazedoxifene (marketed only with conjugated estrogens, Duavee) and "
                "ospemifene products, which the RxNorm reference groups with the SERMs; not "
                "tamoxifen or toremifene. A draft order from this set for a patient on an AI "
                "fires the critical `serm-with-ai` card. Bazedoxifene/conjugated estrogens is "
                "here only, not in `systemic-estrogens`, so one order gives one card. The "
                "reference holds no lasofoxifene.",
        ingredients=SERM_INGREDIENTS),
    "systemic-estrogens": dict(
        title="Systemic estrogens",
        purpose="Products of estradiol, estetrol, conjugated or esterified estrogens, estropipate "
                "or ethinyl estradiol that act systemically: oral, transdermal, topical gel or "
                "spray, injection, contraceptive rings (ethinyl estradiol) and Femring (a "
                "vaginal ring at systemic dose). A draft from this set for a patient on an AI "
                "fires the critical `estrogen-with-ai` card. Local vaginal estrogen is in "
                "`vaginal-estrogens` instead; SERM combinations (Duavee) are in `serms`. The "
                "codes that do not tell the route (ingredients, components, brands sold both "
                "ways, e.g. Estrace, Premarin) are here too and in `estrogens-route-unknown`: "
                "a resource coded only by one of them is systemic unless its dose form or "
                "route (Medication.form, dosage route) says vaginal.",
        ingredients=ESTROGENS, without=SERM_INGREDIENTS, select="estrogen-systemic-or-unknown",
        vsac=[("Potentially Harmful Estrogens for Older Adults",
               "2.16.840.1.113883.3.464.1003.1058")]),
    "vaginal-estrogens": dict(
        title="Local vaginal estrogens",
        purpose="Estradiol and conjugated-estrogen creams, inserts and low-dose rings by the "
                "vaginal route (e.g. Vagifem, Imvexxy, Estring, Premarin and Estrace vaginal "
                "cream): low systemic exposure, not the systemic-estrogen contraindication. Not "
                "Femring (systemic dose) nor contraceptive rings (ethinyl estradiol).",
        ingredients=ESTROGENS, without=SERM_INGREDIENTS, select="estrogen-vaginal"),
    "estrogens-route-unknown": dict(
        title="Estrogen codes that do not tell the route",
        purpose="Estrogen ingredients, precise and multiple ingredients, components, and brands "
                "sold both as vaginal and systemic products (Estrace, Premarin). They are also "
                "in `systemic-estrogens`; a rule reads the resource's dose form or route before "
                "calling one of them systemic.",
        ingredients=ESTROGENS, without=SERM_INGREDIENTS, select="estrogen-route-unknown"),
    "duloxetine": dict(
        title="Duloxetine",
        purpose="Every duloxetine product (ATC too): duloxetine already in place, and the drug "
                "the `duloxetine` card proposes (596930 30 mg, 596934 60 mg).",
        ingredients=["duloxetine"], codes=["N06AX21"],
        vsac=[("Antidepressant Medication", "2.16.840.1.113883.3.464.1003.196.12.1213")]),
    "maois": dict(
        title="Monoamine-oxidase inhibitors",
        purpose="Every MAOI product: phenelzine, tranylcypromine, isocarboxazid, selegiline "
                "(oral and transdermal), rasagiline, safinamide. Contraindicated with duloxetine "
                "(within 14 days of stopping an MAOI; clinical-evidence W4).",
        ingredients=MAOIS),
    "linezolid": dict(
        title="Linezolid",
        purpose="Every linezolid product: contraindicated when starting duloxetine (W4).",
        ingredients=["linezolid"]),
    "methylene-blue": dict(
        title="Methylene blue (intravenous)",
        purpose="Methylene blue ingredient and injectable products (ProvayBlue): the duloxetine "
                "label contraindicates intravenous methylene blue. Oral urinary antiseptic "
                "combinations (10 mg methylene blue with methenamine) and the topical solution "
                "are left out, as are the components, which do not tell the route.",
        ingredients=["methylene blue"], select="ingredient-or-injectable"),
    "maois-linezolid": dict(
        title="MAOIs, linezolid and intravenous methylene blue",
        purpose="Everything contraindicated with duloxetine (critical `serotonergic-interaction`, "
                "W4): the union of `maois`, `linezolid` and `methylene-blue`.",
        include=["maois", "linezolid", "methylene-blue"]),
    "serotonergic-drugs": dict(
        title="Serotonergic drugs (serotonin-syndrome warning with duloxetine)",
        purpose="SSRIs, SNRIs other than duloxetine (venlafaxine, desvenlafaxine, "
                "levomilnacipran, milnacipran), tricyclics, triptans, tramadol, tapentadol, "
                "meperidine, methadone, fentanyl, lithium and buspirone: warning-level "
                "`serotonergic-interaction` with duloxetine (W4). Duloxetine itself is in "
                "`duloxetine`; MAOIs, linezolid and IV methylene blue in `maois-linezolid`. "
                "St John's wort has no RxNorm prescribable product and no code was found in a "
                "public source; tryptophan and the triptans naratriptan, almotriptan and "
                "frovatriptan are not in the tables.",
        ingredients=SSRIS + SNRIS + TCAS + TRIPTANS + SEROTONERGIC_OPIOIDS + LITHIUM
        + ["buspirone"],
        vsac=[("Antidepressants", "2.16.840.1.113762.1.4.1248.163")]),
    "cyp2d6-inhibitors-strong": dict(
        title="Strong CYP2D6 inhibitors",
        purpose="Paroxetine, fluoxetine, bupropion, quinidine (incl. dextromethorphan/quinidine) "
                "and terbinafine products: with tamoxifen they cut conversion to endoxifen "
                "(`tamoxifen-cyp2d6`, W3). clinical-evidence W3 lists terbinafine with the "
                "moderate/other group; the code table calls it strong.",
        ingredients=["paroxetine", "fluoxetine", "bupropion", "quinidine", "terbinafine"]),
    "cyp2d6-inhibitors-moderate": dict(
        title="Moderate CYP2D6 inhibitors",
        purpose="Duloxetine, cinacalcet and sertraline products for the `tamoxifen-cyp2d6` "
                "warning (W3 lists duloxetine and cinacalcet; the RxNorm reference groups "
                "sertraline with the CYP2D6 inhibitors, an effect that grows with the dose).",
        ingredients=["cinacalcet", "sertraline"], include=["duloxetine"]),
    "anticoagulants-antiplatelets": dict(
        title="Anticoagulants and antiplatelets",
        purpose="Warfarin, direct oral anticoagulants (apixaban, rivaroxaban, dabigatran, "
                "edoxaban), heparins (heparin, enoxaparin, dalteparin), fondaparinux, "
                "parenteral thrombin inhibitors and antiplatelets (aspirin, clopidogrel, "
                "ticagrelor, ticlopidine, dipyridamole): bleeding risk with duloxetine (W5, "
                "Cymbalta label 5.5). Prasugrel has no code in the tables.",
        ingredients=ANTITHROMBOTICS,
        vsac=[("Antithrombotic Therapy for Ischemic Stroke", "2.16.840.1.113762.1.4.1110.62"),
              ("Anticoagulants for All Indications", "2.16.840.1.113762.1.4.1248.22")]),
    "nsaids": dict(
        title="NSAIDs",
        purpose="Every product of the common NSAIDs (celecoxib, diclofenac, etodolac, ibuprofen, "
                "indomethacin, ketorolac, meloxicam, nabumetone, naproxen), topical ones "
                "included: analgesics already tried (`analgesic-expectations`) and bleeding "
                "risk with duloxetine (W5). Aspirin is in `anticoagulants-antiplatelets`.",
        ingredients=NSAIDS,
        vsac=[("Non opioid pain medications", "2.16.840.1.113762.1.4.1021.73")]),
    "acetaminophen": dict(
        title="Acetaminophen",
        purpose="Every acetaminophen product, combinations with opioids or cold remedies "
                "included (each is an acetaminophen exposure): analgesic already tried "
                "(`analgesic-expectations`).",
        ingredients=["acetaminophen"],
        vsac=[("Non opioid pain medications", "2.16.840.1.113762.1.4.1021.73")]),
    "neuropathic-analgesics": dict(
        title="Neuropathic analgesics (gabapentinoids)",
        purpose="Gabapentin and pregabalin: interventions already in place. The RxNorm "
                "reference has no gabapentinoid rows; these codes come from clinical-codes.tsv.",
        ingredients=["gabapentin", "pregabalin"],
        vsac=[("Non opioid pain medications", "2.16.840.1.113762.1.4.1021.73")]),
    "bisphosphonates": dict(
        title="Bisphosphonates",
        purpose="Every alendronate (incl. alendronate/cholecalciferol), risedronate, ibandronate "
                "and zoledronic-acid product: bone protection already in place "
                "(`bone-protection`, `serm-with-ai` suggestion).",
        ingredients=["alendronate", "risedronate", "ibandronate", "zoledronic acid"]),
    "denosumab": dict(
        title="Denosumab",
        purpose="Every denosumab product (Prolia, Xgeva and their biosimilars): bone protection "
                "in place, and the date of the last dose.",
        ingredients=["denosumab"]),
    "bone-modifying-agents": dict(
        title="Bone-modifying agents",
        purpose="Bisphosphonates and denosumab: any bone-directed therapy in place.",
        include=["bisphosphonates", "denosumab"]),
    "calcium-vitamin-d": dict(
        title="Calcium and vitamin D",
        purpose="Every product with calcium, calcium carbonate or citrate, cholecalciferol or "
                "ergocalciferol, antacids and multivitamins included: supplementation already "
                "in place (`bone-protection`, `ai-start-bone-health`). The dose is not judged.",
        ingredients=CALCIUM_VITAMIN_D),
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
    "egfr": dict(
        title="Estimated GFR",
        purpose="eGFR by MDRD (incl. the older sex- and race-specific codes, still in old "
                "charts) and CKD-EPI (incl. the 2021 race-free equation), in mL/min/1.73 m2: "
                "kidney function before a bisphosphonate and for duloxetine (avoid when CrCl "
                "< 30 mL/min). Not a creatinine clearance: see `creatinine-clearance`.",
        codes=["33914-3", "76633-7", "77147-7", "50044-7", "70969-1", "48642-3", "48643-1",
               "62238-1", "98979-8"]),
    "creatinine-clearance": dict(
        title="Creatinine clearance",
        purpose="Creatinine clearance in mL/min: Cockcroft-Gault estimate and measured 24-hour "
                "clearance, the measure the duloxetine and bisphosphonate labels state their "
                "renal limits in.",
        codes=["35591-7", "2164-2"]),
    "serum-calcium": dict(
        title="Serum calcium",
        purpose="Total serum calcium (mass) and albumin-corrected calcium (moles): hypocalcaemia "
                "must be corrected before a bisphosphonate or denosumab. Ionized calcium has its "
                "own range and is left out.",
        codes=["17861-6", "29265-6"]),
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
    "trigger-finger": dict(
        title="Trigger finger (every digit)",
        purpose="Trigger thumb and trigger finger of every digit and side (all billable "
                "ICD-10-CM M65.3 codes, and the M65.31 category the table lists): part of "
                "`hand-wrist-syndromes`.",
        codes=["1539003", "M65.30", "M65.31", "M65.311", "M65.312", "M65.319", "M65.321",
               "M65.322", "M65.329", "M65.331", "M65.332", "M65.339", "M65.341", "M65.342",
               "M65.349", "M65.351", "M65.352", "M65.359"]),
    "hand-wrist-syndromes": dict(
        title="Hand and wrist syndromes",
        purpose="Carpal tunnel syndrome, trigger finger/thumb (`trigger-finger`) and de "
                "Quervain tenosynovitis: fire `hand-wrist`. The table has no SNOMED code for "
                "de Quervain.",
        codes=["57406009", "G56.00", "G56.01", "G56.02", "G56.03", "M65.4"],
        include=["trigger-finger"]),
    "hand-wrist-symptoms": dict(
        title="Focal hand and wrist symptoms",
        purpose="Pain in the hand or the joints of the hand: fire `hand-wrist` together with "
                "the hand and wrist syndromes.",
        codes=["M25.541", "M25.542", "M79.641", "M79.642"]),
    "depression": dict(
        title="Depression",
        purpose="Depressive disorders as coded: every ICD-10-CM major depressive disorder code "
                "(single episode and recurrent, any severity or remission), depression "
                "unspecified, other specified depressive episodes, dysthymia; not premenstrual "
                "dysphoric disorder (F32.81). Supports `duloxetine`.",
        codes=["35489007", "370143000", "F32.0", "F32.1", "F32.2", "F32.3", "F32.4", "F32.5",
               "F32.89", "F32.9", "F32.A", "F33.0", "F33.1", "F33.2", "F33.3", "F33.40",
               "F33.41", "F33.42", "F33.8", "F33.9", "F34.1"],
        vsac=[("Major Depression (subset)", "2.16.840.1.113883.3.464.1003.105.12.1007"),
              ("Depression (ICD-10-CM subset)", "2.16.840.1.113762.1.4.1248.169")]),
    "hepatic-impairment": dict(
        title="Chronic liver disease and hepatic impairment",
        purpose="Alcoholic liver disease, hepatic failure, chronic hepatitis (incl. chronic "
                "viral and autoimmune), fibrosis and cirrhosis, portal hypertension, "
                "hepatorenal syndrome: duloxetine should be avoided (Cymbalta label 5.2). Fatty "
                "liver without these is not included.",
        codes="ICD-10-CM — hepatic impairment"),
    "alcohol-use-disorder": dict(
        title="Alcohol use disorder",
        purpose="Alcohol abuse and dependence (ICD-10-CM F10.1, F10.2), not in remission: "
                "heavy alcohol use with duloxetine risks liver injury. 'Alcohol use, "
                "unspecified' (F10.9) is left out.",
        codes="ICD-10-CM — alcohol use disorder"),
    "narrow-angle-glaucoma": dict(
        title="Narrow-angle glaucoma",
        purpose="Anatomical narrow angle, primary angle closure and primary angle-closure "
                "glaucoma: duloxetine can cause mydriasis (label: avoid in uncontrolled "
                "narrow-angle glaucoma).",
        codes="ICD-10-CM — narrow-angle glaucoma"),
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
    "fragility-fracture": dict(
        title="Fragility fracture",
        purpose="Osteoporosis with current pathological (fragility) fracture, every site, side "
                "and encounter (ICD-10-CM M80), and personal history of a healed osteoporosis "
                "fracture (Z87.310): raises fracture risk in the bone card.",
        codes="ICD-10-CM — fragility fracture",
        vsac=[("Osteoporosis With Current Fracture", "2.16.840.1.113883.3.464.1003.113.12.1050")]),
    "lymphedema": dict(
        title="Lymphedema",
        purpose="Lymphedema and postmastectomy lymphedema syndrome: a `red-flags` trigger. "
                "Hereditary lymphedema (Q82.0) is left out.",
        codes="ICD-10-CM — lymphedema"),
    "metastatic-disease": dict(
        title="Metastatic disease",
        purpose="Secondary malignant neoplasm of an organ or site (ICD-10-CM C78, C79): "
                "`switch-therapy` (discuss stopping) and `red-flags`. Secondary neoplasm of "
                "lymph nodes (C77) is left out: axillary and other regional nodes are not "
                "distant disease in breast cancer. C79.2 (skin) and C79.81 (breast) can "
                "describe locoregional recurrence; a clinician should confirm.",
        codes="ICD-10-CM — metastatic disease"),
    "chest-wall-axillary": dict(
        title="Chest-wall or axillary findings",
        purpose="A lump of the trunk, enlarged lymph nodes, chest(-wall) pain: a `red-flags` "
                "trigger (consider locoregional recurrence).",
        codes="ICD-10-CM — chest-wall or axillary findings"),
    "focal-neurological": dict(
        title="Focal neurological findings",
        purpose="Brachial plexus disorder, monoplegia of a limb, spinal cord compression: a "
                "`red-flags` trigger (plexus or spinal metastasis, or another cause).",
        codes="ICD-10-CM — focal neurological findings"),
    "entrapment-neuropathies": dict(
        title="Entrapment neuropathies",
        purpose="Carpal tunnel syndrome: an entrapment is not itself a neuropathic feature for "
                "`duloxetine`, and while one is coded, numbness or tingling alone "
                "(`neuropathic-symptoms`) is taken as its symptom.",
        codes=["57406009", "G56.00", "G56.01", "G56.02", "G56.03"]),
    "neuropathic-symptoms": dict(
        title="Sensory symptoms",
        purpose="Numbness, tingling and other disturbances of skin sensation (ICD-10-CM R20): "
                "explained by a coded entrapment (`entrapment-neuropathies`) for `duloxetine`.",
        codes=["R20.0", "R20.1", "R20.2", "R20.3", "R20.8", "R20.9"]),
    "osteonecrosis-of-jaw": dict(
        title="Osteonecrosis of the jaw",
        purpose="Drug-related osteonecrosis of the jaw: no bisphosphonate is suggested "
                "(`bone-protection`); a specialist decides.",
        codes="ICD-10-CM — osteonecrosis of the jaw"),
    "infertility": dict(
        title="Infertility and fertility care",
        purpose="Female infertility (N97), fertility testing, fertility-preservation "
                "counselling and procedures, assisted reproduction cycles: an aromatase "
                "inhibitor given for ovulation induction or fertility preservation is not "
                "adjuvant breast-cancer therapy.",
        codes="ICD-10-CM — infertility"),
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

# Codes of the non-RxNorm tables deliberately in no ValueSet, with the reason (VALUESETS.md).
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


@dataclass(frozen=True)
class Concept:
    """One code of a table; RxNorm concepts also carry term type, release and product facts."""

    system: str
    code: str
    display: str
    status: str  # verified | verified-b | unverified
    source: str
    group: str = ""
    tty: str = ""
    inferred: bool = False
    release: str = ""
    ingredients: frozenset[str] = field(default_factory=frozenset)
    route: str = ""


def read_table(path: Path, columns: list[str]) -> list[dict[str, str]]:
    if not path.is_file():
        sys.exit(f"terminology table not found: {path}")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        if reader.fieldnames != columns:
            sys.exit(f"{path}: expected columns {columns}, got {reader.fieldnames}")
        return list(reader)


def rx_status(text: str) -> str:
    """The reference's status column, as a code-verification status."""
    if text.startswith(("active;prescribable", "absent from", "verified")):
        return "verified"
    return "unverified"


def read_rxnorm(folder: Path) -> dict[str, Concept]:
    """RxNorm concepts by rxcui; a row of a later table replaces an earlier row."""
    drugs: dict[str, Concept] = {}
    for name in RX_TABLES:
        seen: set[str] = set()
        for row in read_table(folder / name, RX_COLUMNS):
            if row["rxcui"] in seen:
                sys.exit(f"rxcui {row['rxcui']} appears twice in {name}")
            seen.add(row["rxcui"])
            tty = row["tty"].removesuffix("(inferred)")
            drugs[row["rxcui"]] = Concept(
                RXNORM, row["rxcui"], row["name"], rx_status(row["status"]), row["source"],
                tty=tty, inferred=tty != row["tty"], release=row["release"],
                ingredients=frozenset(filter(None, row["ingredient_names"].split("|"))),
                route=row["route"])
    return drugs


def read_codes(folder: Path) -> dict[str, Concept]:
    """Non-RxNorm codes by code (a code must be unique across systems)."""
    codes: dict[str, Concept] = {}
    for name in CODE_TABLES:
        for row in read_table(folder / name, CODE_COLUMNS):
            if row["system"] == RXNORM:
                continue
            if row["code"] in codes:
                sys.exit(f"code {row['code']} appears twice in the code tables")
            codes[row["code"]] = Concept(row["system"], row["code"], row["display"],
                                         row["status"].lower(), row["source"], group=row["group"])
    return codes


def rxnorm_codes_of_code_tables(folder: Path) -> list[str]:
    return [row["code"] for name in CODE_TABLES
            for row in read_table(folder / name, CODE_COLUMNS) if row["system"] == RXNORM]


class Routes:
    """Where a concept acts: its own dose form and route; a brand, those of its products."""

    def __init__(self, drugs: Iterable[Concept]) -> None:
        drugs = list(drugs)
        brands = {d.display for d in drugs if d.tty == "BN"}
        self.products: dict[str, list[Concept]] = {}
        for d in drugs:
            if d.tty != "BN" and d.display.endswith("]") and "[" in d.display:
                brand = d.display.rsplit("[", 1)[1][:-1]
                if brand in brands:
                    self.products.setdefault(brand, []).append(d)

    @staticmethod
    def _estrogen(d: Concept) -> str:
        if d.tty in NO_DOSE_FORM:
            return "unknown"
        local = d.ingredients <= LOCAL_VAGINAL_INGREDIENTS and d.code not in SYSTEMIC_VAGINAL
        return "vaginal" if d.route == "vaginal" and local else "systemic"

    def estrogen(self, d: Concept) -> str:
        """vaginal (local), systemic, or unknown (the code alone cannot tell)."""
        if d.tty == "BN":
            kinds = {self._estrogen(p) for p in self.products.get(d.display, [])}
            return kinds.pop() if len(kinds) == 1 else "unknown"
        return self._estrogen(d)

    def injectable(self, d: Concept) -> bool:
        if d.tty == "BN":
            products = self.products.get(d.display, [])
            return bool(products) and all(p.route == "injectable" for p in products)
        return d.route == "injectable"


def selectors(drugs: dict[str, Concept]) -> dict[str, Callable[[Concept], bool]]:
    routes = Routes(drugs.values())
    return {
        "estrogen-systemic-or-unknown": lambda d: routes.estrogen(d) in {"systemic", "unknown"},
        "estrogen-vaginal": lambda d: routes.estrogen(d) == "vaginal",
        "estrogen-route-unknown": lambda d: routes.estrogen(d) == "unknown",
        "ingredient-or-injectable": lambda d: d.tty in {"IN", "PIN"} or routes.injectable(d),
    }


def members_of(spec: dict, drugs: dict[str, Concept], codes: dict[str, Concept],
               select: dict[str, Callable[[Concept], bool]]) -> list[Concept]:
    """The enumerated members of one ValueSet, RxNorm first (sorted), then listed codes."""
    found: list[Concept] = []
    if spec.get("ingredients"):
        wanted, without = set(spec["ingredients"]), set(spec.get("without", []))
        keep = select[spec["select"]] if "select" in spec else (lambda d: True)
        found += sorted((d for d in drugs.values()
                         if d.ingredients & wanted and not d.ingredients & without and keep(d)),
                        key=lambda d: (d.tty, d.display, d.code))
    listed = spec.get("codes", [])
    if isinstance(listed, str):  # a group of the code tables
        listed = [c for c, concept in codes.items() if concept.group == listed]
    missing = [c for c in listed if c not in codes]
    if missing:
        sys.exit(f"codes not in the terminology tables: {missing}")
    return found + [codes[c] for c in listed]


def verification(status: str, source: str) -> dict:
    return {"url": VERIFICATION_EXT, "extension": [
        {"url": "status", "valueCode": status}, {"url": "source", "valueString": source}]}


def concept_json(c: Concept, grouped: bool) -> dict:
    """A concept; in an RxNorm include only an unverified one repeats its status (the loader
    flags unverified codes from the concept's own extension)."""
    out: dict = {"code": c.code, "display": c.display}
    if not grouped or c.status == "unverified":
        out["extension"] = [verification(c.status, c.source)]
    return out


def rxnorm_includes(concepts: list[Concept]) -> list[dict]:
    """One include per release, term type and source: version is the release, the include's
    extensions give the term type and the verification of all its concepts."""
    groups: dict[tuple[str, str, bool, str, str], list[Concept]] = {}
    for c in concepts:
        groups.setdefault((c.release or "not stated", c.tty, c.inferred, c.status, c.source),
                          []).append(c)
    includes = []
    for (release, tty, inferred, status, source), members in sorted(groups.items()):
        term = [{"url": "termType", "valueCode": tty}]
        if inferred:
            term.append({"url": "termTypeInferred", "valueBoolean": True})
        includes.append({
            "extension": [verification(status, source), {"url": RXNORM_EXT, "extension": term}],
            "system": RXNORM, "version": release,
            "concept": [concept_json(c, grouped=True) for c in members]})
    return includes


def counts(items: Iterable[str]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(Counter(items).items()))


def describe(spec: dict, members: list[Concept], grouping: bool) -> str:
    parts = [spec["purpose"]]
    unverified = sum(c.status == "unverified" for c in members)
    what = "members of the included sets" if grouping else "codes"
    parts.append(f"{len(members)} {what}, {unverified} UNVERIFIED. The code-verification "
                 "extension of each concept (of each include for RxNorm; an unverified RxNorm "
                 "concept repeats it) gives the status (verified, verified-b, unverified) and "
                 "source; unverified codes are matched but flagged on cards. "
                 "Generated by scripts/build_valuesets.py from terminology/ (see "
                 "terminology/PROVENANCE.md); do not edit by hand.")
    rx = [c for c in members if c.system == RXNORM]
    if rx and not grouping:
        parts.append("RxNorm term types (each include: version = release, rxnorm-concept extension = term "
                     "type): "
                     f"{counts(c.tty for c in rx)}. Releases: "
                     f"{counts(c.release or 'not stated' for c in rx)}.")
    if spec.get("vsac"):
        parts.append("Draws on VSAC (members chosen here, not the full expansion):\n\n"
                     + "\n".join(f"- {name}: OID {oid}, canonical {VSAC}{oid}"
                                 for name, oid in spec["vsac"]))
    return "\n\n".join(parts)


def build(vs_id: str, spec: dict, own: list[Concept], members: list[Concept]) -> dict:
    includes = rxnorm_includes([c for c in own if c.system == RXNORM])
    for system in dict.fromkeys(c.system for c in own if c.system != RXNORM):
        includes.append({"system": system, "concept": [
            concept_json(c, grouped=False) for c in own if c.system == system]})
    if spec.get("include"):
        includes.append({"valueSet": [f"{BASE}/ValueSet/{m}" for m in spec["include"]]})
    return {
        "resourceType": "ValueSet",
        "id": vs_id,
        "url": f"{BASE}/ValueSet/{vs_id}",
        "version": VERSION,
        "name": "".join(p[:1].upper() + p[1:] for p in vs_id.split("-")),
        "title": spec["title"],
        "status": "draft",
        "experimental": False,
        "publisher": "AIMSS CDS",
        "description": describe(spec, members, grouping=not own),
        "compose": {"include": includes},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--terminology", type=Path, default=REPO / "terminology")
    ap.add_argument("--out", type=Path, default=REPO / "fhir_profiles")
    args = ap.parse_args(argv)
    drugs, codes = read_rxnorm(args.terminology), read_codes(args.terminology)
    lost = [c for c in rxnorm_codes_of_code_tables(args.terminology) if c not in drugs]
    if lost:
        sys.exit(f"RxNorm codes of the code tables missing from the RxNorm tables: {lost}")
    select = selectors(drugs)

    own = {i: members_of(s, drugs, codes, select) for i, s in VALUESETS.items()}
    members: dict[str, list[Concept]] = {}

    def expand(vs_id: str) -> list[Concept]:
        if vs_id not in members:
            merged = {(c.system, c.code): c for c in own[vs_id]}
            for m in VALUESETS[vs_id].get("include", []):
                merged.update({(c.system, c.code): c for c in expand(m)})
            members[vs_id] = list(merged.values())
        return members[vs_id]

    empty = [i for i in VALUESETS if not expand(i)]
    args.out.mkdir(parents=True, exist_ok=True)
    summary = []
    for vs_id, spec in VALUESETS.items():
        if vs_id in empty:
            continue
        if any(m in empty for m in spec.get("include", [])):
            sys.exit(f"{vs_id} includes an empty ValueSet")
        resource = build(vs_id, spec, own[vs_id], members[vs_id])
        text = json.dumps(resource, indent=2, ensure_ascii=False) + "\n"
        (args.out / f"ValueSet-{vs_id}.json").write_text(text, encoding="utf-8")
        summary.append((vs_id, spec, members[vs_id]))

    used = {c.code for ms in own.values() for c in ms if c.system != RXNORM}
    unused = [c for code, c in codes.items() if code not in used]
    in_sets = {c.code for ms in own.values() for c in ms if c.system == RXNORM}
    outside = [d for code, d in drugs.items() if code not in in_sets]
    (args.out / "VALUESETS.md").write_text(index_markdown(summary, empty, unused, outside),
                                           encoding="utf-8")
    print(f"wrote {len(summary)} ValueSets to {args.out}; no codes for: {', '.join(empty) or '-'}")
    return 0


def index_markdown(summary, empty, unused, outside) -> str:
    out = ["# ValueSets", "",
           "Generated by `scripts/build_valuesets.py` from the tables in `terminology/` "
           "(sources and licences: `terminology/PROVENANCE.md`); do not edit by hand. Canonical "
           "URL: `" + BASE + "/ValueSet/<id>`, file `ValueSet-<id>.json`. Every concept carries "
           "the `code-verification` extension (status: verified, verified-b, unverified; "
           "source); every RxNorm concept also the `rxnorm-concept` extension (term type, "
           "release).", "",
           "| id | title | codes | UNVERIFIED | RxNorm term types |", "|---|---|---|---|---|"]
    for vs_id, spec, members in summary:
        note = " (grouping: counts its members)" if spec.get("include") else ""
        rx = counts(c.tty for c in members if c.system == RXNORM) or "-"
        unverified = sum(c.status == "unverified" for c in members)
        out.append(f"| `{vs_id}` | {spec['title']}{note} | {len(members)} | {unverified} | {rx} |")
    out += ["", "## Asked for, but no code in the tables (no file written)", ""]
    out += [f"- `{i}`: {VALUESETS[i]['purpose']}" for i in empty] or ["- none"]
    out += ["", "## Codes of the code tables in no ValueSet", "",
            "| system | code | display | status | why |", "|---|---|---|---|---|"]
    for c in unused:
        why = LEFT_OUT.get(c.code, "not classified yet")
        out.append(f"| {c.system} | `{c.code}` | {c.display} | {c.status.upper()} | {why} |")
    out += ["", "## RxNorm rows in no ValueSet", "",
            f"{len(outside)} rows of the RxNorm tables are in no ValueSet: products of none of "
            "the ingredients above (they came into the reference with a rule ingredient's "
            "brand or combination), or left out on purpose (toremifene, oral and topical "
            "methylene blue, methylene-blue components). By ingredient:", ""]
    tally = Counter(i for d in outside for i in (d.ingredients or {"(no ingredient listed)"}))
    out += [f"- {name}: {n}" for name, n in sorted(tally.items())]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
