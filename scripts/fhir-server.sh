#!/usr/bin/env bash
# Install (first run only) and start a throw-away sekmet-fhir R4 server on 127.0.0.1:$FHIR_PORT.
#   scripts/fhir-server.sh install   only install it into $FHIR_HOME/venv (used by the tests)
#   scripts/fhir-server.sh start     install if needed, start with an empty store, wait until up
#   scripts/fhir-server.sh stop      stop the server started by "start"
# Base URL: http://127.0.0.1:$FHIR_PORT/fhir   PID: $FHIR_HOME/server.pid   Log: $FHIR_HOME/server.log
set -euo pipefail
cd "$(dirname "$0")/.."
FHIR_PORT="${FHIR_PORT:-8090}"
FHIR_HOME="${FHIR_HOME:-$PWD/.fhir}"
BASE="http://127.0.0.1:${FHIR_PORT}/fhir"
SEKMET_VERSION="0.1.1"   # pinned: a young project; our tests catch behaviour changes

install() {
  if [ ! -x "$FHIR_HOME/venv/bin/sekmet" ]; then
    echo "Installing sekmet-fhir $SEKMET_VERSION into $FHIR_HOME/venv (first run only)..."
    mkdir -p "$FHIR_HOME"
    python3 -m venv "$FHIR_HOME/venv"
    "$FHIR_HOME/venv/bin/pip" install -q --disable-pip-version-check "sekmet-fhir==$SEKMET_VERSION"
  fi
}

start() {
  install
  if curl -s -o /dev/null "$BASE/metadata"; then
    echo "Port $FHIR_PORT is already in use (a FHIR server left running? try: $0 stop)" >&2
    exit 1
  fi
  cat > "$FHIR_HOME/settings.yaml" <<YAML
base_url: ${BASE}
host: 127.0.0.1
port: ${FHIR_PORT}
db_path: ${FHIR_HOME}/fhir.db
simulator: {enabled: false}
log_inbound: false
YAML
  rm -f "$FHIR_HOME"/fhir.db*
  nohup "$FHIR_HOME/venv/bin/sekmet" serve -c "$FHIR_HOME/settings.yaml" > "$FHIR_HOME/server.log" 2>&1 &
  local pid=$!
  echo "$pid" > "$FHIR_HOME/server.pid"
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    if curl -sf -o /dev/null "$BASE/metadata"; then echo "FHIR server up at $BASE (pid $pid)"; return 0; fi
    sleep 0.2
  done
  echo "FHIR server failed to start; its log:" >&2
  cat "$FHIR_HOME/server.log" >&2
  exit 1
}

stop() {
  if [ -f "$FHIR_HOME/server.pid" ]; then
    kill "$(cat "$FHIR_HOME/server.pid")" 2>/dev/null || true
    rm -f "$FHIR_HOME/server.pid"
  fi
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 [install|start|stop]" >&2; exit 2 ;;
esac
