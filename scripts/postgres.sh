#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests, from Debian's packages.
#   scripts/postgres.sh install   apt-get install postgresql if it is missing (needs root)
#   scripts/postgres.sh start     initdb a fresh cluster in $PG_HOME/$PG_PORT, start it, print its URL
#   scripts/postgres.sh stop      stop the cluster of $PG_PORT and delete it
# Unix socket only (no TCP), trust auth, user and database "postgres". As root, the server runs
# as the "postgres" OS user (initdb refuses root). URL: postgresql://postgres@/postgres?host=DIR&port=P
set -euo pipefail
cd "$(dirname "$0")/.."
PG_HOME="${PG_HOME:-$PWD/.pg}"
PG_PORT="${PG_PORT:-55432}"
CLUSTER="$PG_HOME/$PG_PORT"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

install() {
  if [ -z "$(bindir)" ]; then
    echo "Installing PostgreSQL from the Debian packages (first run only)..."
    apt-get update
    # Other jobs may run apt at the same time: wait for the lock rather than fail.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y postgresql
  fi
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  install
  stop
  local bin; bin="$(bindir)"
  mkdir -p "$CLUSTER"
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_HOME" "$CLUSTER"
  as_owner "$bin/initdb" -D "$CLUSTER/data" -U postgres -A trust --no-sync >"$CLUSTER/initdb.log"
  as_owner "$bin/pg_ctl" -D "$CLUSTER/data" -l "$CLUSTER/server.log" -w -t 60 start \
    -o "-p $PG_PORT -k $CLUSTER -c listen_addresses=''" >/dev/null
  echo "postgresql://postgres@/postgres?host=$CLUSTER&port=$PG_PORT"
}

stop() {
  if [ -f "$CLUSTER/data/postmaster.pid" ]; then
    as_owner "$(bindir)/pg_ctl" -D "$CLUSTER/data" -m immediate -w stop >/dev/null || true
  fi
  rm -rf "$CLUSTER"
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 [install|start|stop]" >&2; exit 2 ;;
esac
