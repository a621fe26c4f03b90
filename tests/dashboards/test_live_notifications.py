"""A notification proven to arrive: the real server (chaos on), the Debian `prometheus` with the exported
rules and the Debian `prometheus-alertmanager` with the exported alertmanager.yml, driven by the load
generator (`python -m loadgen`). A local HTTP receiver stands in for the pager and the ticket system.

Healthy traffic delivers nothing; the error mode delivers exactly the critical `ModelHighErrorRate` and
`ModelAvailabilityBudgetBurn` on the pager route, with their runbook_url, and nothing on the ticket route
(the burn-rate warning tier also holds, and is inhibited). The windows are shortened through the export
flags, so the whole run takes well under 90 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from dashboards import __main__ as dashboards_cli
from dashboards.alerts import ALERT_AVAILABILITY_BURN, ALERT_HIGH_ERROR_RATE
from infra.prometheus import scrape_config
from tests.support import PROJECT_ROOT
from tests.support.net import free_port, wait_for
from tests.support.prometheus import active_alerts, prometheus_with_config, query, rule_groups
from tests.support.server import CHAOS_ENV, CHAOS_TOKEN, running_server
from tests.support.tools import require_binary

pytestmark = pytest.mark.live

GROUP_WAIT_SECONDS = 2
# Export flags: 5 s rate window and 3 s `for`; every SLO window / 60 (5m -> 5s, 1h -> 60s).
EXPORT_FLAGS = [
    *("--rate-window-seconds", "5", "--error-rate-for-seconds", "3", "--slo-window-divisor", "60"),
    *("--group-wait-seconds", str(GROUP_WAIT_SECONDS)),
]
PAGED = {ALERT_HIGH_ERROR_RATE, ALERT_AVAILABILITY_BURN}


class Receiver:
    """Webhook receiver on 127.0.0.1: every POSTed notification, by path."""

    def __init__(self) -> None:
        received: list[tuple[str, dict]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, path: str) -> list[dict]:
        return [body for p, body in self.received if p == path]


@contextmanager
def running_alertmanager(config_path: Path) -> Iterator[str]:
    binary = require_binary("prometheus-alertmanager", package="prometheus-alertmanager")
    port = free_port()
    log_path = config_path.parent / "alertmanager.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.path={config_path.parent / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"alertmanager exited: {log_path.read_text()}")
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200

        wait_for(ready, 30, what="alertmanager ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _loadgen(url: str, mode: str, seconds: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "loadgen", "--url", url, "--mode", mode, "--rate", "25"]
    command += ["--duration", str(seconds), "--seed", "11"]
    env = {**os.environ, "MODEL_CHAOS_TOKEN": CHAOS_TOKEN}  # the chaos headers count only with it
    return subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_critical_alerts_page_and_nothing_else_arrives(tmp_path: Path) -> None:
    start = time.monotonic()
    receiver = Receiver()
    out = tmp_path / "export"
    assert (
        dashboards_cli.main(
            [
                *("export", "--out", str(out), *EXPORT_FLAGS),
                *(
                    "--pager-webhook-url",
                    f"{receiver.url}/pager",
                    "--ticket-webhook-url",
                    f"{receiver.url}/ticket",
                ),
            ]
        )
        == 0
    )
    rule_files = {p.name: p.read_text() for p in sorted((out / "prometheus").glob("*.yml"))}
    exported = {
        r["alert"]: r for g in yaml.safe_load(rule_files["alert-rules.yml"])["groups"] for r in g["rules"]
    }

    with (
        running_server(tmp_path, env=CHAOS_ENV) as server,
        running_alertmanager(out / "alertmanager" / "alertmanager.yml") as alertmanager,
        tempfile.TemporaryDirectory(prefix="prometheus-notify-") as prom_dir,
    ):
        directory = Path(prom_dir)
        (directory / "rules").mkdir()
        for name, text in rule_files.items():
            (directory / "rules" / name).write_text(text)
        config = directory / "prometheus.yml"
        am_target = alertmanager.removeprefix("http://")
        config.write_text(scrape_config([server.target], "1s", list(rule_files), alertmanagers=[am_target]))
        with prometheus_with_config(config) as prometheus:
            # Healthy traffic: every rule evaluates on data, nothing is pending, nothing is delivered.
            healthy = _loadgen(server.url, "normal", 12)
            wait_for(lambda: query(prometheus.base_url, "up == 1"), 30, what="a first scrape")
            healthy.wait(timeout=40)
            rules = [r for g in rule_groups(prometheus.base_url) for r in g["rules"]]
            assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
            assert active_alerts(prometheus.base_url) == []
            time.sleep(GROUP_WAIT_SECONDS + 1)
            assert receiver.received == []
            assert httpx.get(f"{alertmanager}/api/v2/alerts", timeout=10).json() == []

            # The error mode: half the valid requests answered 500.
            errors = _loadgen(server.url, "errors", 40)
            try:

                def paged() -> set[str] | None:
                    names = {a["labels"]["alertname"] for n in receiver.on("/pager") for a in n["alerts"]}
                    return names if names >= PAGED else None

                wait_for(paged, 45, what=f"{sorted(PAGED)} on the pager route")
                # Anything else would have had its group_wait by now.
                time.sleep(GROUP_WAIT_SECONDS + 2)
            finally:
                errors.terminate()
                errors.wait(timeout=10)
            firing = {
                (a["labels"]["alertname"], a["labels"]["severity"])
                for a in active_alerts(prometheus.base_url)
            }

    assert receiver.on("/ticket") == []
    assert {p for p, _ in receiver.received} == {"/pager"}
    alerts = [a for n in receiver.on("/pager") for a in n["alerts"]]
    assert {a["labels"]["alertname"] for a in alerts} == PAGED
    for alert in alerts:
        assert alert["status"] == "firing"
        assert alert["labels"]["severity"] == "critical"
        name = alert["labels"]["alertname"]
        assert alert["annotations"]["runbook_url"] == exported[name]["annotations"]["runbook_url"]
        assert "model-monitoring-runbooks?viewPanel=" in alert["annotations"]["runbook_url"]
    # The ticket tier did hold in Prometheus: Alertmanager's inhibition kept it off the ticket route.
    assert (ALERT_AVAILABILITY_BURN, "warning") in firing
    assert time.monotonic() - start < 90
