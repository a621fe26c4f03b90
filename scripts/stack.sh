#!/usr/bin/env bash
# Run `pulumi up|preview|destroy` on this project's stack with a local state backend.
#   scripts/stack.sh up|preview|destroy [extra pulumi arguments]
# Environment: STACK (default dev); PULUMI_BACKEND_URL (default file://<repo>/.pulumi, state stays in
# the project); PULUMI_CONFIG_PASSPHRASE (default below; it encrypts this stack's secrets, so set your own
# before the first `make up` if the state leaves your machine). PULUMI_CONFIG_PASSPHRASE_FILE also works.
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:-}
case "$action" in
  up | preview | destroy) shift ;;
  *) echo "usage: $0 up|preview|destroy [pulumi arguments]" >&2; exit 2 ;;
esac

DEFAULT_PASSPHRASE="model-monitoring-local"
missing=0
if ! command -v pulumi >/dev/null 2>&1; then
  cat >&2 <<'EOF'
error: the Pulumi CLI (`pulumi`) is not installed or not on PATH.
  Install it (Linux/macOS):  curl -fsSL https://get.pulumi.com | sh
  then open a new shell (or: export PATH="$HOME/.pulumi/bin:$PATH"); `pulumi version` should print 3.x.
  Other ways (Homebrew, Windows, manual download): https://www.pulumi.com/docs/iac/download-install/
  No Pulumi account is needed: state is kept in .pulumi/ inside this project.
EOF
  missing=1
fi
if ! command -v docker >/dev/null 2>&1; then
  cat >&2 <<'EOF'
error: Docker (`docker`) is not installed or not on PATH; the stack runs as containers on this host.
  Install Docker Engine: https://docs.docker.com/engine/install/ (Debian/Ubuntu: sudo apt-get install docker.io)
EOF
  missing=1
elif ! docker info >/dev/null 2>&1; then
  cat >&2 <<'EOF'
error: Docker is installed but its daemon is not reachable (`docker info` failed).
  Start it (e.g. sudo systemctl start docker) and make sure your user may use it
  (sudo usermod -aG docker "$USER", then log in again), or set DOCKER_HOST.
EOF
  missing=1
fi
[ "$missing" -eq 0 ] || exit 1

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$PWD/.pulumi}"
if [ -z "${PULUMI_CONFIG_PASSPHRASE+x}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE="$DEFAULT_PASSPHRASE"
  echo "note: PULUMI_CONFIG_PASSPHRASE not set; using the project default \"$DEFAULT_PASSPHRASE\"." >&2
fi
STACK="${STACK:-dev}"
case "$PULUMI_BACKEND_URL" in file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;; esac

pulumi stack select --create "$STACK" --non-interactive
case "$action" in
  up)
    pulumi up --stack "$STACK" --yes "$@"
    env_prefix="PULUMI_BACKEND_URL=$PULUMI_BACKEND_URL"
    if [ "${PULUMI_CONFIG_PASSPHRASE:-}" = "$DEFAULT_PASSPHRASE" ]; then
      env_prefix="$env_prefix PULUMI_CONFIG_PASSPHRASE=$DEFAULT_PASSPHRASE"
    fi
    out() { pulumi stack output --stack "$STACK" "$1"; }
    cat <<EOF

Stack "$STACK" is up.
  Dashboard:  $(out dashboardUrl)
  Grafana:    $(out grafanaUrl)  (user: $(out grafanaAdminUser))
  Prometheus: $(out prometheusUrl)
  Model API:  $(out modelServerUrl)/predict
Grafana admin password:
  $env_prefix pulumi stack output --stack $STACK grafanaAdminPassword --show-secrets
EOF
    ;;
  preview) pulumi preview --stack "$STACK" --diff "$@" ;;
  destroy) pulumi destroy --stack "$STACK" --yes "$@" ;;
esac
