"""Long-term metrics: the Docker target's Prometheus remote-writes to a compatible store.

Offline: the generated config with basic auth or a bearer token passes `promtool check config`, and the
credential stays out of it (uploaded as a secret file). Live: two real Prometheus servers (Debian): the
first runs the stack's generated prometheus.yml and rule files, scraping the real model server, and
remote-writes with basic auth to the second (`--web.enable-remote-write-receiver`, basic auth demanded
by its web config); every dashboard query, recorded series included, returns data from the second.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from dashboards import queries
from dashboards.dashboard import build_dashboard
from infra.prometheus import CONFIG_DIR, REMOTE_WRITE_CREDENTIALS_FILE
from infra.remote_write import NAME
from server import contract
from tests.dashboards.test_live_prometheus import Traffic
from tests.support.net import wait_for
from tests.support.prometheus import (
    RunningPrometheus,
    dashboard_exprs,
    finite_values,
    grafana_expr_to_promql,
    prometheus_with_config,
    query,
)
from tests.support.pulumi_mocks import CONTAINER, Program, contains_secret, run_program
from tests.support.server import RunningServer, running_server
from tests.support.tools import require_binary

BASIC = {
    "prometheusRemoteWriteUrl": "https://mimir.example.com/api/v1/push",
    "prometheusRemoteWriteUsername": "tenant-1",
    "prometheusRemoteWritePassword": "remote-write-pass",
}
BEARER = {
    "prometheusRemoteWriteUrl": "https://thanos.example.com/api/v1/receive",
    "prometheusRemoteWriteBearerToken": "tok-123",
}
SCRAPE_INTERVAL_S = 1.0
USER, PASSWORD = "writer", "remote-write-secret-1"


def _uploads(program: Program) -> list[dict]:
    return program.one(CONTAINER, "prometheus-config").plain_inputs["uploads"]


def write_stack_prometheus(program: Program, root: Path, scrape_targets: list[str] | None = None) -> Path:
    """The Prometheus container's uploads written under `root` as they would land under /; absolute
    paths in prometheus.yml point there too. `scrape_targets` replaces the replicas' Docker-network names
    (found by DNS there) with static 127.0.0.1 targets, and the gateway job (none runs here) goes: the
    only changes to the generated config. Returns the config path."""
    config_path = None
    for upload in _uploads(program):
        target = root / upload["file"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        content = upload["content"]
        if upload["file"] == str(CONFIG_DIR / "prometheus.yml"):
            config = yaml.safe_load(content.replace(f"{CONFIG_DIR}/", f"{root}{CONFIG_DIR}/"))
            if scrape_targets is not None:
                (job,) = [j for j in config["scrape_configs"] if j["job_name"] == contract.JOB_NAME]
                del job["dns_sd_configs"], job["relabel_configs"]
                job["static_configs"] = [{"targets": scrape_targets}]
                config["scrape_configs"] = [job]
            content = yaml.safe_dump(config, sort_keys=False)
            config_path = target
        target.write_text(content)
    assert config_path is not None
    return config_path


def _config(program: Program) -> dict:
    (upload,) = [u for u in _uploads(program) if u["file"] == str(CONFIG_DIR / "prometheus.yml")]
    return yaml.safe_load(upload["content"])


def test_no_remote_write_by_default():
    program = run_program()
    assert "remote_write" not in _config(program)
    assert not [u for u in _uploads(program) if u["file"] == str(REMOTE_WRITE_CREDENTIALS_FILE)]


@pytest.mark.parametrize(
    ("config", "auth"),
    [
        (
            BASIC,
            {"basic_auth": {"username": "tenant-1", "password_file": str(REMOTE_WRITE_CREDENTIALS_FILE)}},
        ),
        (
            BEARER,
            {"authorization": {"type": "Bearer", "credentials_file": str(REMOTE_WRITE_CREDENTIALS_FILE)}},
        ),
        ({"prometheusRemoteWriteUrl": "http://receiver.internal:9009/api/v1/push"}, {}),
    ],
)
def test_remote_write_config_reads_its_credential_from_a_secret_file(config, auth, tmp_path):
    program = run_program(config)
    (entry,) = _config(program)["remote_write"]
    assert entry == {"url": config["prometheusRemoteWriteUrl"], "name": NAME, **auth}
    credentials = [u for u in _uploads(program) if u["file"] == str(REMOTE_WRITE_CREDENTIALS_FILE)]
    if auth:
        (upload,) = credentials
        # The credential makes the container's uploads a secret (Pulumi marks the whole property).
        assert contains_secret(program.one(CONTAINER, "prometheus-config").inputs["uploads"])
        secret = config.get("prometheusRemoteWritePassword") or config.get("prometheusRemoteWriteBearerToken")
        assert upload["content"] == secret
        assert secret not in str(_config(program))
    else:
        assert credentials == []
    promtool = require_binary("promtool", package="prometheus")
    result = subprocess.run(
        [promtool, "check", "config", str(write_stack_prometheus(program, tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- live: two real Prometheus servers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPrometheus]:
    """The long-term store: a Prometheus that only receives (no scrape configs, no rules)."""
    directory = tmp_path_factory.mktemp("receiver")
    web_config = directory / "web.yml"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web_config.write_text(yaml.safe_dump({"basic_auth_users": {USER: hashed}}))
    config_path = directory / "prometheus.yml"
    config_path.write_text(yaml.safe_dump({"global": {"evaluation_interval": "1s"}}))
    with prometheus_with_config(
        config_path,
        extra_args=["--web.enable-remote-write-receiver", f"--web.config.file={web_config}"],
        auth=(USER, PASSWORD),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("model-server"), workers=2) as server:
        yield server


@pytest.fixture(scope="module")
def stack_prometheus(
    tmp_path_factory: pytest.TempPathFactory, receiver: RunningPrometheus, model_server: RunningServer
) -> Iterator[RunningPrometheus]:
    program = run_program(
        {
            "scrapeInterval": "1s",
            "prometheusRemoteWriteUrl": f"{receiver.base_url}/api/v1/write",
            "prometheusRemoteWriteUsername": USER,
            "prometheusRemoteWritePassword": PASSWORD,
        }
    )
    root = tmp_path_factory.mktemp("stack-prometheus")
    config_path = write_stack_prometheus(program, root, scrape_targets=[model_server.target])
    with prometheus_with_config(config_path) as running:
        yield running


@pytest.fixture(scope="module")
def traffic(model_server: RunningServer, stack_prometheus: RunningPrometheus) -> Iterator[Traffic]:
    traffic = Traffic(model_server.url)
    thread = threading.Thread(target=traffic.run, daemon=True)
    thread.start()
    try:
        yield traffic
    finally:
        traffic.stop.set()
        thread.join(timeout=30)


def _own_metrics(prometheus: RunningPrometheus) -> dict[str, float]:
    """Prometheus' own remote-storage counters for the queue named NAME, from its /metrics."""
    text = httpx.get(f"{prometheus.base_url}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("remote_name") == NAME and sample.name.startswith(
                "prometheus_remote_storage_"
            ):
                out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


# Remote write sends a batch when it holds 500 samples or is 5 s old (batch_send_deadline): at about 135
# series a second the receiver lags up to ~5 s, so it is asked about a moment safely in the past.
RECEIVER_LAG_S = 10


def _on_receiver(receiver: RunningPrometheus, expr: str) -> list[float]:
    at = time.time() - RECEIVER_LAG_S
    return finite_values(query(receiver.base_url, expr, at=at, auth=(USER, PASSWORD)))


@pytest.mark.live
def test_dashboard_queries_return_data_from_the_long_term_store(
    receiver: RunningPrometheus, stack_prometheus: RunningPrometheus, traffic: Traffic
) -> None:
    rate_window = grafana_expr_to_promql("$__rate_interval", SCRAPE_INTERVAL_S)
    # Enough remote-written history for a full rate window and for the recorded drift series.
    wait_for(
        lambda: _on_receiver(
            receiver, f"count_over_time(up{{job='{contract.JOB_NAME}'}}[{rate_window}]) >= 4"
        ),
        120,
        what="a full rate window of scrapes on the receiver",
    )
    wait_for(
        lambda: _on_receiver(receiver, queries.FEATURE_DRIFT_PSI), 60, what="recorded PSI on the receiver"
    )

    def every_panel_has_data() -> list[str] | None:
        empty = [
            f"{title}: {promql}"
            for title, expr in dashboard_exprs(build_dashboard())
            if not _on_receiver(receiver, promql := grafana_expr_to_promql(expr, SCRAPE_INTERVAL_S))
        ]
        return None if empty else ["ok"]

    try:
        wait_for(every_panel_has_data, 60, interval=2, what="every dashboard query answered by the receiver")
    except TimeoutError:
        empty = [
            f"{title}: {expr}"
            for title, expr in dashboard_exprs(build_dashboard())
            if not _on_receiver(receiver, grafana_expr_to_promql(expr, SCRAPE_INTERVAL_S))
        ]
        pytest.fail("panels without data on the receiver:\n" + "\n".join(empty))
    assert not traffic.errors, traffic.errors[:5]

    # What the receiver holds was sent by the stack's Prometheus: its remote-storage queue (own /metrics,
    # not scraped by the stack) counts the samples, none failed.
    sender = _own_metrics(stack_prometheus)
    assert sender["prometheus_remote_storage_samples_total"] > 0
    assert sender.get("prometheus_remote_storage_samples_failed_total", 0.0) == 0.0
    # Nothing is scraped by the receiver itself.
    assert _on_receiver(receiver, 'count(up{job!="model-server"})') == []
