#!/usr/bin/env bash
# Make sure a Docker engine answers; when none does, start dockerd in the background (as root) and wait
# for it. Prints why when it cannot. Env: DOCKERD_LOG (default /var/log/dockerd.log), DOCKERD_WAIT (s, 60).
set -euo pipefail
log=${DOCKERD_LOG:-/var/log/dockerd.log}
wait_s=${DOCKERD_WAIT:-60}

answers() { docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

answers && exit 0
command -v docker >/dev/null || { echo "error: no docker client (apt-get install docker.io)" >&2; exit 1; }
command -v dockerd >/dev/null || { echo "error: no Docker engine answers and dockerd is not installed (apt-get install docker.io)" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
  echo "error: no Docker engine answers and only root can start dockerd here" >&2
  exit 1
fi

echo "no Docker engine answers: starting dockerd in the background (log: $log)"
mkdir -p "$(dirname "$log")"
# setsid + all streams redirected: the daemon outlives this script and holds none of its caller's pipes.
setsid dockerd >>"$log" 2>&1 </dev/null &
pid=$!
for ((i = 0; i < wait_s * 2; i++)); do
  if answers; then
    echo "dockerd (pid $pid) answers after $((i / 2))s"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "error: dockerd exited; last lines of $log:" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "error: dockerd (pid $pid) did not answer within ${wait_s}s; last lines of $log:" >&2
tail -n 25 "$log" >&2
exit 1
