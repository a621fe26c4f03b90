#!/usr/bin/env bash
# Local images for the Docker e2e test (no image registry is reachable here), each built once from Debian
# packages with debootstrap + `docker import` and kept until this recipe changes:
#   model-monitoring/debian-python:bookworm  python3 + venv + CA certificates (the Dockerfile's BASE_IMAGE)
#   model-monitoring/prometheus:bookworm     Debian's prometheus + wget; ENTRYPOINT prometheus, USER nobody
#   model-monitoring/alertmanager:bookworm   Debian's prometheus-alertmanager + wget; ENTRYPOINT alertmanager,
#                                            USER nobody
#   model-monitoring/haproxy:bookworm        Debian's haproxy (2.6, its Prometheus exporter built in);
#                                            ENTRYPOINT haproxy, USER haproxy (like the official image)
# Usage: scripts/e2e-images.sh [--force]. Needs root, debootstrap and a Docker engine.
# Env: DEBIAN_MIRROR (default: the host's apt mirror for Debian, else deb.debian.org).
set -euo pipefail

PYTHON_IMAGE=${E2E_PYTHON_IMAGE:-model-monitoring/debian-python:bookworm}
PROMETHEUS_IMAGE=${E2E_PROMETHEUS_IMAGE:-model-monitoring/prometheus:bookworm}
ALERTMANAGER_IMAGE=${E2E_ALERTMANAGER_IMAGE:-model-monitoring/alertmanager:bookworm}
GATEWAY_IMAGE=${E2E_GATEWAY_IMAGE:-model-monitoring/haproxy:bookworm}
SUITE=bookworm
LABEL=org.model-monitoring.recipe
force=${1:-}

builder() {  # the build function of image $1
  case $1 in
    "$PYTHON_IMAGE") echo build_python ;;
    "$PROMETHEUS_IMAGE") echo build_prometheus ;;
    "$ALERTMANAGER_IMAGE") echo build_alertmanager ;;
    "$GATEWAY_IMAGE") echo build_gateway ;;
  esac
}

recipe() {  # the recipe of image $1: its build function and the shared steps, so a new image rebuilds no other
  { echo "$SUITE"; declare -f rootfs import_rootfs "$(builder "$1")"; } | sha256sum | cut -c1-16
}

current() {  # true when image $1 exists and was built by this version of its recipe
  [ "$(docker image inspect --format "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null)" = "$(recipe "$1")" ]
}

mirror() {  # the first Debian (not -security) mirror of the host's apt sources
  {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '/^deb / { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|ftp):\/\//) { print $i; break } }'
  } | grep -E '/debian/?$' | head -n 1 || true
}

# rootfs DIR PACKAGES LOG: a minimal Debian with PACKAGES, trimmed of what an image never needs.
rootfs() {
  debootstrap --variant=minbase --include="$2" "$SUITE" "$1" "$MIRROR" >"$3" 2>&1 ||
    { echo "error: debootstrap $2 failed; last lines of $3:" >&2; tail -n 20 "$3" >&2; return 1; }
  rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/* \
    "$1"/usr/share/doc "$1"/usr/share/man "$1"/usr/share/info "$1"/usr/share/locale "$1"/var/log/*
}

# import_rootfs DIR IMAGE [--change ...]: DIR as IMAGE, labelled with this recipe; the image it replaces
# is removed (unless a container still uses it).
import_rootfs() {
  local dir=$1 image=$2 old
  shift 2
  old=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  tar -C "$dir" -c . | docker import --change "LABEL $LABEL=$(recipe "$image")" "$@" - "$image" >/dev/null
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect --format '{{.Id}}' "$image")" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
}

build_python() {
  rootfs "$work/python" python3,python3-venv,ca-certificates "$work/python.log"
  import_rootfs "$work/python" "$PYTHON_IMAGE" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]'
}

build_prometheus() {
  rootfs "$work/prometheus" prometheus,wget "$work/prometheus.log"
  # Like prom/prometheus: runs as nobody, TSDB in /prometheus (a named volume copies this ownership).
  install -d -o 65534 -g 65534 "$work/prometheus/prometheus"
  import_rootfs "$work/prometheus" "$PROMETHEUS_IMAGE" \
    --change 'USER 65534:65534' \
    --change 'WORKDIR /prometheus' \
    --change 'EXPOSE 9090' \
    --change 'ENTRYPOINT ["/usr/bin/prometheus"]' \
    --change 'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
}

build_alertmanager() {
  rootfs "$work/alertmanager" prometheus-alertmanager,wget "$work/alertmanager.log"
  # Like prom/alertmanager: runs as nobody, silences and notification log in /alertmanager.
  install -d -o 65534 -g 65534 "$work/alertmanager/alertmanager"
  import_rootfs "$work/alertmanager" "$ALERTMANAGER_IMAGE" \
    --change 'USER 65534:65534' \
    --change 'WORKDIR /alertmanager' \
    --change 'EXPOSE 9093' \
    --change 'ENTRYPOINT ["/usr/bin/prometheus-alertmanager"]' \
    --change 'CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]'
}

build_gateway() {
  rootfs "$work/haproxy" haproxy "$work/haproxy.log"
  # Like the official haproxy image: its config at /usr/local/etc/haproxy/haproxy.cfg, run as haproxy.
  install -d "$work/haproxy/usr/local/etc/haproxy"
  import_rootfs "$work/haproxy" "$GATEWAY_IMAGE" \
    --change 'USER haproxy' \
    --change 'ENTRYPOINT ["/usr/sbin/haproxy"]' \
    --change 'CMD ["-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'
}

todo=()
for image in "$PYTHON_IMAGE" "$PROMETHEUS_IMAGE" "$ALERTMANAGER_IMAGE" "$GATEWAY_IMAGE"; do
  if [ "$force" = --force ] || ! current "$image"; then todo+=("$image"); fi
done
[ ${#todo[@]} -eq 0 ] && { echo "e2e images up to date: $PYTHON_IMAGE $PROMETHEUS_IMAGE $ALERTMANAGER_IMAGE $GATEWAY_IMAGE"; exit 0; }

[ "$(id -u)" -eq 0 ] || { echo "error: building ${todo[*]} needs root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "error: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
MIRROR=${DEBIAN_MIRROR:-$(mirror)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

work=$(mktemp -d /var/tmp/e2e-images.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$SECONDS
echo "building ${todo[*]} from $SUITE at $MIRROR ..."
# Every debootstrap at once: they mostly wait on the mirror.
pids=()
for image in "${todo[@]}"; do
  "$(builder "$image")" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ $status -eq 0 ] || exit 1
echo "built ${todo[*]} in $((SECONDS - start))s"
