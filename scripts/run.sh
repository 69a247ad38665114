#!/usr/bin/env bash
# Install (first run only) and run the sandbox: a real local FHIR server loaded with the synthetic
# patients, AIMSS CDS with development settings (JWT checks ON, trusting the sandbox's development
# key; open FHIR allowed; the default SQLite database .data/aimss-cds.db), and the EHR-like page
# that calls it.
# Ports: PORT (service, 8080), PAGE_PORT (page, 8081), FHIR_PORT (FHIR server, 8090). Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8080}"
PAGE_PORT="${PAGE_PORT:-8081}"
export FHIR_PORT="${FHIR_PORT:-8090}"
FHIR_BASE="http://127.0.0.1:${FHIR_PORT}/fhir"
CDS_BASE="http://127.0.0.1:${PORT}"

scripts/install.sh  # .venv from requirements.lock (hashes checked); nothing to do when unchanged

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/fhir-server.sh stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

scripts/fhir-server.sh stop
scripts/fhir-server.sh start
.venv/bin/python -m sandbox.load "$FHIR_BASE"

mkdir -p .data
export AIMSS_TRUSTED_ISSUERS_FILE="${AIMSS_TRUSTED_ISSUERS_FILE:-$(.venv/bin/python -m sandbox.devkey)}"
export AIMSS_ALLOW_OPEN_FHIR="${AIMSS_ALLOW_OPEN_FHIR:-1}"

.venv/bin/python -m sandbox.web --port "$PAGE_PORT" --cds "$CDS_BASE" --fhir "$FHIR_BASE" &
pids+=($!)
.venv/bin/aimss-cds serve --host 127.0.0.1 --port "$PORT" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "$CDS_BASE/health" && break
  sleep 0.1
done

cat <<MSG

  Sandbox EHR page:  http://127.0.0.1:${PAGE_PORT}/      <- open this
  AIMSS CDS:         ${CDS_BASE}/cds-services   (JWT checks on; trusts the sandbox dev key)
  FHIR server:       ${FHIR_BASE}
  Database:          .data/aimss-cds.db (the default; .venv/bin/aimss-cds report reads it)

  curl needs a JWT for the exact URL it calls (development key, valid 5 minutes, once):
    URL=${CDS_BASE}/cds-services/aimss-patient-view
    curl -s -X POST "\$URL" -H "Authorization: Bearer \$(.venv/bin/python -m sandbox.token "\$URL")" \\
      -H 'Content-Type: application/json' \\
      -d '{"hook":"patient-view","hookInstance":"try-1","fhirServer":"${FHIR_BASE}",
           "context":{"patientId":"aimss-no-dxa","userId":"Practitioner/demo"}}'

  Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
