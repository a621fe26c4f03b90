"""The Prometheus config and rule files the program uploads, checked by the real promtool and Prometheus."""

import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from dashboards import alerts, queries
from dashboards.alerts import prometheus_rule_files
from dashboards.settings import DEFAULT_SETTINGS
from infra.prometheus import checked_rule_files, scrape_config
from server import contract
from tests.support.net import wait_for
from tests.support.prometheus import prometheus_with_config, rule_groups, targets
from tests.support.pulumi_mocks import CONTAINER, run_program
from tests.support.tools import require_binary


def _write_uploads(program, root: Path) -> Path:
    """Write the Prometheus container's uploads under `root` as they would land under /."""
    config_path = None
    for upload in program.one(CONTAINER, "prometheus-config").plain_inputs["uploads"]:
        target = root / upload["file"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(upload["content"])
        if upload["file"] == "/etc/prometheus/prometheus.yml":
            config_path = target
    assert config_path is not None
    return config_path


@pytest.mark.parametrize("engine", ["grafana", "prometheus", "both"])
def test_uploaded_config_and_rules_pass_promtool(tmp_path, engine):
    promtool = require_binary("promtool", package="prometheus")
    config_path = _write_uploads(run_program({"alertEngine": engine}), tmp_path)
    result = subprocess.run(
        [promtool, "check", "config", str(config_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # promtool checked each referenced rule file too (and found them where the config says).
    assert result.stdout.count("SUCCESS") >= 2, result.stdout


def test_short_scrape_interval_gets_a_timeout_within_it():
    config = yaml.safe_load(scrape_config(["a:1"], "5s", []))
    assert config["global"]["scrape_timeout"] == "5s"
    config = yaml.safe_load(scrape_config(["a:1"], "1m", []))
    assert config["global"]["scrape_timeout"] == "10s"


def _rules(rule_files: dict[str, str]) -> list[dict]:
    return [r for text in rule_files.values() for g in yaml.safe_load(text)["groups"] for r in g["rules"]]


def test_rule_files_without_alerts_keep_every_recording_rule_and_no_alert():
    original = _rules(prometheus_rule_files(DEFAULT_SETTINGS))
    remaining = _rules(prometheus_rule_files(DEFAULT_SETTINGS, alert_rules=False))
    assert remaining == [r for r in original if "record" in r]


def test_rule_file_names_cannot_escape_the_rules_directory():
    with pytest.raises(ValueError, match="plain"):
        checked_rule_files({"../prometheus.yml": "groups: []\n"})


@pytest.mark.live
def test_real_prometheus_loads_the_config_and_looks_the_replicas_up(tmp_path):
    program = run_program({"alertEngine": "both", "modelServerReplicas": "3"})
    config_path = _write_uploads(program, tmp_path)
    with prometheus_with_config(config_path) as prometheus:
        # Target discovery runs asynchronously after start-up. The replicas' names resolve on the Docker
        # network only (tests/e2e scrapes them there), so here the gateway is the one target...
        found = wait_for(lambda: targets(prometheus.base_url), 60, what="scrape targets")
        assert [(t["labels"]["job"], t["labels"]["instance"]) for t in found] == [
            (contract.GATEWAY_JOB_NAME, f"gateway:{contract.GATEWAY_METRICS_PORT}")
        ]

        # ... and DNS discovery of the three replica names is running (Prometheus' own /metrics).
        def lookups() -> float:
            text = httpx.get(f"{prometheus.base_url}/metrics", timeout=10).text
            (line,) = [x for x in text.splitlines() if x.startswith("prometheus_sd_dns_lookups_total ")]
            return float(line.split()[1])

        wait_for(lambda: lookups() >= 3, 60, what="the three replica names looked up")
        rules = {r["name"] for g in rule_groups(prometheus.base_url) for r in g["rules"]}
        assert queries.FEATURE_DRIFT_PSI in rules
        assert alerts.ALERT_FEATURE_DRIFT in rules
