#!/usr/bin/env bash
# The AIMSS CDS container image, made and started with buildah (no container engine, no image
# registry needed). Run as root.
#   scripts/image.sh install           apt-get install buildah and debootstrap (first run only)
#   scripts/image.sh base [--refresh]  the Debian bookworm base image $BASE_IMAGE, made once with
#                                      debootstrap from Debian's packages, security updates applied
#   scripts/image.sh build             the base if missing, then deploy/Containerfile -> $IMAGE
#   scripts/image.sh run [-v HOST_PATH:PATH[:ro]]... [COMMAND...]
#                                      start $IMAGE (its own command unless one is given) with
#                                      `buildah run --isolation chroot`: the host's network, so it
#                                      listens on $HOST:$PORT of this machine; passes AIMSS_*,
#                                      HOST, PORT and WORKERS from the environment and mounts
#                                      each -v; TERM/INT stop it
#   scripts/image.sh health            run the image's HEALTHCHECK once against a running one
# Logs of the slow steps go to .data/image/. Timings on a 2-core build machine: base 1-2 min
# (once), build about 30 s (seconds when only the source changed: layers are cached).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${IMAGE:-localhost/aimss-cds:latest}"
BASE_IMAGE="${BASE_IMAGE:-localhost/aimss-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# pip in the build trusts what this host trusts (a TLS-intercepting proxy's CA included).
CA_BUNDLE="${CA_BUNDLE:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}"
WORK=.data/image
SUITE=bookworm
PACKAGES=python3.11,python3.11-venv,python3-distutils,ca-certificates
# A changed recipe makes a new base; the label records which recipe made the one in store.
RECIPE="$(printf '%s\n' "$SUITE" minbase "$PACKAGES" "$MIRROR" "$SECURITY_MIRROR" | sha256sum | cut -c1-16)"

log_tail() { echo "--- last lines of $1:" >&2; tail -n 30 "$1" >&2; }

install() {
  command -v buildah >/dev/null && command -v debootstrap >/dev/null && return
  scripts/debian-packages.sh buildah debootstrap
}

base() {
  install
  local recipe
  recipe="$(buildah inspect --type image --format '{{index .ImageAnnotations "org.aimss.base-recipe"}}' \
    "$BASE_IMAGE" 2>/dev/null || true)"
  if [ "$recipe" = "$RECIPE" ] && [ "${1:-}" != "--refresh" ]; then return; fi
  echo "Making the Debian $SUITE base image $BASE_IMAGE with debootstrap (about 1-2 minutes)..."
  local started=$SECONDS rootfs="$WORK/rootfs" ctr mnt
  mkdir -p "$WORK"
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || { log_tail "$WORK/debootstrap.log"; exit 1; }
  cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES
  ctr="$(buildah from scratch)"
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  mnt="$(buildah mount "$ctr")"
  tar -C "$rootfs" --exclude='./dev/*' --exclude='./var/cache/apt/archives/*.deb' -cf - . | tar -C "$mnt" -xf -
  buildah umount "$ctr" >/dev/null
  buildah run --isolation chroot "$ctr" -- sh -c 'export DEBIAN_FRONTEND=noninteractive
    apt-get -q update && apt-get -q -y upgrade && apt-get clean && rm -rf /var/lib/apt/lists/*' \
    >"$WORK/upgrade.log" 2>&1 || { log_tail "$WORK/upgrade.log"; exit 1; }
  buildah config --env LANG=C.UTF-8 --cmd /bin/bash --annotation "org.aimss.base-recipe=$RECIPE" \
    --label "org.opencontainers.image.description=Debian $SUITE (debootstrap, minbase) + $PACKAGES" \
    "$ctr"
  buildah commit --quiet --rm "$ctr" "$BASE_IMAGE" >/dev/null
  trap - EXIT
  rm -rf "$rootfs"
  echo "Base image $BASE_IMAGE made in $((SECONDS - started)) s."
}

build() {
  base
  local started=$SECONDS secret=()
  [ -s "$CA_BUNDLE" ] && secret=(--secret "id=ca-bundle,src=$CA_BUNDLE")
  mkdir -p "$WORK"
  echo "Building $IMAGE from deploy/Containerfile..."
  buildah bud --layers --format docker --isolation chroot --build-arg "BASE=$BASE_IMAGE" \
    "${secret[@]}" --ignorefile deploy/Containerfile.dockerignore -f deploy/Containerfile \
    -t "$IMAGE" . >"$WORK/build.log" 2>&1 || { log_tail "$WORK/build.log"; exit 1; }
  echo "Image $IMAGE built in $((SECONDS - started)) s."
}

# One entry of the image's configuration, one argument a line ("Cmd", "Healthcheck"; a health
# check's CMD-SHELL becomes /bin/sh -c): buildah run needs the command spelled out.
image_config() {
  buildah inspect --type image "$IMAGE" | python3 -c 'import json, sys
value = json.load(sys.stdin)["Docker"]["config"][sys.argv[1]]
if isinstance(value, dict):
    value = value["Test"]
    value = value[1:] if value[0] == "CMD" else ["/bin/sh", "-c", value[1]]
print("\n".join(value))' "$1"
}

# The container's own top process below buildah ($1): the child of buildah-chroot-exec.
container_processes() {
  local pid
  for pid in $(pgrep -P "$1"); do
    if [ "$(argv0 "$1")" = buildah-chroot-exec ]; then echo "$pid"; else container_processes "$pid"; fi
  done
}
argv0() { tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | head -n 1; }

run() {
  local ctr name runner
  local -a command env_args=() volumes=()
  while [ "${1:-}" = -v ]; do volumes+=(--volume "$2"); shift 2; done
  if [ $# -gt 0 ]; then command=("$@"); else mapfile -t command < <(image_config Cmd); fi
  [ ${#command[@]} -gt 0 ] || { echo "$IMAGE has no command" >&2; exit 1; }
  ctr="$(buildah from --pull=never --name "aimss-cds-run-$$" "$IMAGE")"
  # Settings go into the working container's configuration, not onto buildah's command line
  # where every user of the machine could read them (a database password, the hash key).
  for name in $(compgen -e); do
    case "$name" in AIMSS_*|HOST|PORT|WORKERS) env_args+=(--env "$name=${!name}") ;; esac
  done
  [ ${#env_args[@]} -gt 0 ] && buildah config "${env_args[@]}" "$ctr"
  # A session of its own: a terminal's Ctrl-C reaches this script only, which stops the
  # service gracefully (buildah, signalled itself, would kill it outright).
  setsid -w buildah run --isolation chroot "${volumes[@]}" "$ctr" -- "${command[@]}" &
  runner=$!
  stop() {
    # buildah answers TERM by killing the command outright: signal the command itself, so the
    # service shuts down as it would under any supervisor, then wait for buildah to return.
    local pids; pids="$(container_processes "$runner")"
    [ -n "$pids" ] && kill -TERM $pids 2>/dev/null
    for _ in $(seq 1 200); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$runner" 2>/dev/null || true
  }
  local status=0 stopping=0
  trap 'stopping=1; stop' TERM INT
  wait "$runner" || status=$?
  # A trap ends the first wait early; the second gives buildah's own exit status.
  if [ "$stopping" = 1 ]; then status=0; wait "$runner" || status=$?; fi
  buildah rm "$ctr" >/dev/null
  return "$status"
}

health() {
  local ctr status=0
  local -a command
  mapfile -t command < <(image_config Healthcheck)
  [ ${#command[@]} -gt 0 ] || { echo "$IMAGE has no HEALTHCHECK" >&2; exit 1; }
  ctr="$(buildah from --pull=never "$IMAGE")"
  [ -n "${PORT:-}" ] && buildah config --env "PORT=$PORT" "$ctr"
  buildah run --isolation chroot "$ctr" -- "${command[@]}" || status=$?
  buildah rm "$ctr" >/dev/null
  return "$status"
}

case "${1:-build}" in
  install) install ;;
  base) shift; base "$@" ;;
  build) build ;;
  run) shift; run "$@" ;;
  health) health ;;
  *) echo "usage: $0 [install|base [--refresh]|build|run [COMMAND...]|health]" >&2; exit 2 ;;
esac
