"""AlertSettings validation and the `python -m dashboards export` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dashboards.export import export
from dashboards.settings import DASHBOARD_UID, DATASOURCE_UID, AlertSettings, promql_duration
from tests.support import HASH_SEEDS, PROJECT_ROOT


def test_documented_defaults() -> None:
    s = AlertSettings()
    assert (s.error_rate_threshold, s.latency_p95_seconds) == (0.05, 0.5)
    assert (s.prediction_shift_threshold, s.feature_drift_psi_threshold) == (0.15, 0.25)
    assert DATASOURCE_UID == "model-monitoring-prometheus"
    assert DASHBOARD_UID == "model-monitoring"


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("error_rate_threshold", 0.0, "0.0 < x < 1.0"),
        ("error_rate_threshold", 1.0, "0.0 < x < 1.0"),
        ("error_rate_threshold", "5%", "0.0 < x < 1.0"),
        ("latency_p95_seconds", -0.1, "x > 0.0"),
        ("latency_p95_seconds", True, "x > 0.0"),
        ("prediction_shift_threshold", 1.5, "0.0 < x < 1.0"),
        ("feature_drift_psi_threshold", 0, "x > 0.0"),
        ("feature_drift_psi_threshold", float("nan"), "x > 0.0"),
        ("rate_window_seconds", 1, "at least 2"),
        ("feature_drift_for_seconds", 90.5, "whole number of seconds"),
        ("server_down_for_seconds", 60.0, "whole number of seconds"),
        ("latency_p95_seconds", 0.3, "bucket bound"),
        ("availability_slo", 0.3, "0 (off) or"),
        ("latency_slo", 1.0, "0.5 <= x < 1"),
        ("slo_window_divisor", 7, "divisor of 300"),
        ("grafana_url", "example.com", "http"),
    ],
)
def test_invalid_values_name_the_field_and_the_range(field: str, value: object, allowed: str) -> None:
    with pytest.raises(ValueError, match=field) as error:
        AlertSettings(**{field: value})
    assert allowed in str(error.value)


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        AlertSettings().error_rate_threshold = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("seconds", "text"), [(60, "1m"), (300, "5m"), (3600, "1h"), (86400, "24h"), (90000, "25h"), (90, "90s")]
)
def test_promql_duration(seconds: int, text: str) -> None:
    assert promql_duration(seconds) == text


def run_cli(*args: str, seed: str = "0") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.run(
        [sys.executable, "-m", "dashboards", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_cli_export_writes_rules_and_dashboard(tmp_path: Path) -> None:
    result = run_cli("export", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    files = tree(tmp_path / "out")
    assert set(files) == {
        "prometheus/recording-rules.yml",
        "prometheus/alert-rules.yml",
        f"grafana/{DASHBOARD_UID}.json",
        "grafana/model-monitoring-runbooks.json",
        "alertmanager/alertmanager.yml",
    }
    for name, content in files.items():
        if name.startswith("alertmanager/"):
            assert yaml.safe_load(content)["route"]["receiver"]  # checked by amtool in test_notifications
        elif name.endswith(".yml"):
            assert yaml.safe_load(content)["groups"]
        else:
            assert json.loads(content)["uid"] == Path(name).stem
    assert sorted(result.stdout.split()) == sorted(str(tmp_path / "out" / n) for n in files)


def test_exports_are_byte_identical(tmp_path: Path) -> None:
    """Two exports (different hash seeds, in-process and CLI) produce the same bytes."""
    export(tmp_path / "in-process")
    expected = tree(tmp_path / "in-process")
    for seed in HASH_SEEDS:
        assert run_cli("export", "--out", str(tmp_path / seed), seed=seed).returncode == 0
        assert tree(tmp_path / seed) == expected, f"PYTHONHASHSEED={seed}"


def test_cli_overrides_thresholds_and_datasource(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "export", "--out", str(out), "--error-rate-threshold", "0.1", "--datasource-uid", "my-prometheus"
    )
    assert result.returncode == 0, result.stderr
    assert "> 0.1\n" in (out / "prometheus" / "alert-rules.yml").read_text()
    assert '"uid": "my-prometheus"' in (out / "grafana" / f"{DASHBOARD_UID}.json").read_text()


def test_cli_rejects_an_invalid_threshold(tmp_path: Path) -> None:
    result = run_cli("export", "--out", str(tmp_path / "out"), "--latency-p95-seconds", "0")
    assert result.returncode == 2
    assert "latency_p95_seconds" in result.stderr
    assert not (tmp_path / "out").exists()  # validated before anything is written
