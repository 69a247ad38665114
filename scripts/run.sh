#!/usr/bin/env bash
# Install (first run only) and run AIMSS CDS with its embedded defaults: SQLite under .data/,
# a real local FHIR server loaded with the sandbox patients, and development settings
# (JWT checks off, open FHIR allowed). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8080}"
export FHIR_PORT="${FHIR_PORT:-8090}"
FHIR_BASE="http://127.0.0.1:${FHIR_PORT}/fhir"

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .

scripts/fhir-server.sh stop
scripts/fhir-server.sh start
trap 'scripts/fhir-server.sh stop' EXIT
.venv/bin/python -m sandbox.load "$FHIR_BASE"

mkdir -p .data
export AIMSS_AUTH_DISABLED="${AIMSS_AUTH_DISABLED:-1}"
export AIMSS_ALLOW_OPEN_FHIR="${AIMSS_ALLOW_OPEN_FHIR:-1}"
export AIMSS_DATABASE_URL="${AIMSS_DATABASE_URL:-sqlite:///$PWD/.data/aimss-cds.db}"
cat <<MSG

AIMSS CDS on http://127.0.0.1:${PORT}/cds-services   FHIR server: ${FHIR_BASE}
Try a patient-view for Alice (on anastrozole, no DXA), fetched from the FHIR server:
  curl -s -X POST http://127.0.0.1:${PORT}/cds-services/aimss-patient-view \\
    -H 'Content-Type: application/json' \\
    -d '{"hook":"patient-view","hookInstance":"try-1","fhirServer":"${FHIR_BASE}",
         "context":{"patientId":"aimss-no-dxa","userId":"Practitioner/demo"}}'

MSG
.venv/bin/aimss-cds serve --host 127.0.0.1 --port "$PORT"
