"""The traffic simulator against a real model server: each mode moves the metric it claims to move.

Every check reads the server's own /metrics (parsed with prometheus_client) before and after a short,
seeded run and looks only at the difference, so tests may share one server process.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dashboards import alerts, queries
from dashboards.alerts import prometheus_rule_files
from dashboards.settings import AlertSettings
from loadgen.simulator import (
    BATCH,
    DEMO_PHASES,
    INVALID,
    SINGLE,
    LoadConfig,
    LoadgenError,
    Phase,
    demo_phases,
    main,
    run,
    run_scenario,
)
from server import contract
from server.model import load_model
from server.settings import DEFAULT_MODEL_PATH
from tests.support import PROJECT_ROOT
from tests.support.net import free_port, wait_for
from tests.support.prometheus import (
    RunningPrometheus,
    active_alerts,
    finite_values,
    rule_groups,
    running_prometheus,
)
from tests.support.psi import reference_psi
from tests.support.server import CHAOS_ENV, CHAOS_TOKEN, RunningServer, running_server

pytestmark = pytest.mark.live

THRESHOLDS = AlertSettings()
MODEL = load_model(DEFAULT_MODEL_PATH)
FEATURES = list(MODEL.feature_names)


# ---------------------------------------------------------------------------------------------
# A real server per chaos setting


@pytest.fixture(scope="module")
def chaos_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("chaos"), env=CHAOS_ENV) as server:
        yield server


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("plain")) as server:
        yield server


# ---------------------------------------------------------------------------------------------
# Reading /metrics


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    text = httpx.get(f"{url}{contract.METRICS_PATH}", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def delta(before: Samples, after: Samples) -> Samples:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def select(samples: Samples, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    want = set(labels.items())
    return [(dict(lbl), v) for (n, lbl), v in samples.items() if n == name and want <= lbl]


def psi_by_feature(d: Samples) -> dict[str, float]:
    """PSI of each feature's bin shares against the reference share, as the recording rule defines it."""
    counts: dict[str, dict[str, float]] = defaultdict(dict)
    for labels, v in select(d, f"{contract.FEATURE_BIN_TOTAL}"):
        counts[labels["feature"]][labels["bin"]] = v
    return {
        feature: reference_psi([bins.get(b, 0.0) for b in contract.FEATURE_BINS])
        for feature, bins in counts.items()
    }


def histogram_quantile(q: float, d: Samples, name: str, **labels: str) -> float:
    """Prometheus' histogram_quantile over the bucket deltas (linear inside the bucket)."""
    buckets = sorted(
        (float(lbl["le"]), v) for lbl, v in select(d, f"{name}_bucket", **labels) if lbl["le"] != "+Inf"
    )
    total = next(v for lbl, v in select(d, f"{name}_bucket", **labels) if lbl["le"] == "+Inf")
    assert total > 0, f"no observations in {name}"
    rank, lower, below = q * total, 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank:
            return lower + (upper - lower) * (rank - below) / max(cumulative - below, 1e-12)
        lower, below = upper, cumulative
    return buckets[-1][0]


def requests_by_status(d: Samples) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for labels, v in select(d, contract.REQUESTS_TOTAL, handler=contract.PREDICT_HANDLER):
        out[labels["status"]] += v
    return out


def drive(server: RunningServer, **overrides: object) -> tuple[Samples, object]:
    """One bounded, seeded run; returns the /metrics delta and the client-side stats."""
    config = LoadConfig(
        url=server.url,
        rate=200.0,
        duration=3.0,
        max_requests=300,
        seed=7,
        progress_interval=1.0,
        chaos_token=CHAOS_TOKEN,
    )
    config = replace(config, **overrides)
    before = scrape(server.url)
    stats = asyncio.run(run(config, model=MODEL, out=io.StringIO()))
    return delta(before, scrape(server.url)), stats


# ---------------------------------------------------------------------------------------------
# Modes


def test_normal_mode_keeps_psi_low_and_serves_the_mix(chaos_server: RunningServer) -> None:
    d, stats = drive(chaos_server, mode="normal")
    psi = psi_by_feature(d)
    assert set(psi) == set(FEATURES)
    assert max(psi.values()) < 0.1, psi  # below even the "watch" level of PSI
    # The mix really contains every kind, and the server saw what the simulator sent.
    assert all(stats.sent[kind] > 0 for kind in (SINGLE, BATCH, INVALID)), stats.sent
    by_status = requests_by_status(d)
    assert (
        by_status["200"]
        == stats.count(SINGLE, 200) + stats.count(BATCH, 200)
        == stats.sent[SINGLE] + stats.sent[BATCH]
    )
    assert not any(code.startswith("5") for code, n in by_status.items() if n), by_status
    assert not stats.transport_errors


def test_invalid_traffic_lands_under_422(chaos_server: RunningServer) -> None:
    d, stats = drive(chaos_server, mode="normal", invalid_share=0.5, batch_share=0.0, max_requests=120)
    by_status = requests_by_status(d)
    assert stats.sent[INVALID] > 30
    assert stats.count(INVALID, 422) == stats.sent[INVALID]
    assert by_status["422"] == stats.sent[INVALID]
    assert not any(code.startswith("5") for code, n in by_status.items() if n), by_status


@pytest.mark.parametrize("drifted", FEATURES)
def test_feature_drift_raises_psi_of_the_drifted_feature_only(
    chaos_server: RunningServer, drifted: str
) -> None:
    d, _ = drive(chaos_server, mode="feature-drift", drift_features=(drifted,))
    psi = psi_by_feature(d)
    assert psi[drifted] > THRESHOLDS.feature_drift_psi_threshold, psi
    assert all(v < 0.1 for f, v in psi.items() if f != drifted), psi


def test_feature_drift_defaults_to_the_feature_that_moves_predictions_least(
    chaos_server: RunningServer,
) -> None:
    """So the demo's drift phase shows FeatureDrift apart from the prediction-shift alert."""
    medians = {}
    for feature in FEATURES:
        d, _ = drive(chaos_server, mode="feature-drift", drift_features=(feature,))
        medians[feature] = histogram_quantile(0.5, d, contract.PREDICTION_VALUE)
    d, _ = drive(chaos_server, mode="feature-drift")
    psi = psi_by_feature(d)
    drifted = [f for f, v in psi.items() if v > THRESHOLDS.feature_drift_psi_threshold]
    normal, _ = drive(chaos_server, mode="normal")
    base = histogram_quantile(0.5, normal, contract.PREDICTION_VALUE)
    assert drifted == [min(medians, key=lambda f: abs(medians[f] - base))], (psi, medians, base)


def test_prediction_shift_moves_the_median(chaos_server: RunningServer) -> None:
    name = contract.PREDICTION_VALUE
    normal, _ = drive(chaos_server, mode="normal")
    up, _ = drive(chaos_server, mode="prediction-shift", shift_direction="up")
    down, _ = drive(chaos_server, mode="prediction-shift", shift_direction="down")
    base = histogram_quantile(0.5, normal, name)
    assert histogram_quantile(0.5, up, name) - base > THRESHOLDS.prediction_shift_threshold
    assert base - histogram_quantile(0.5, down, name) > THRESHOLDS.prediction_shift_threshold


def test_latency_mode_pushes_predict_p95_over_the_threshold(chaos_server: RunningServer) -> None:
    labels = {"handler": contract.PREDICT_HANDLER, "method": "POST"}
    normal, _ = drive(chaos_server, mode="normal", max_requests=100)
    assert (
        histogram_quantile(0.95, normal, contract.REQUEST_DURATION, **labels) < THRESHOLDS.latency_p95_seconds
    )
    slow, stats = drive(
        chaos_server, mode="latency", rate=50.0, chaos_delay=1.0, chaos_share=0.5, max_requests=60
    )
    assert (
        histogram_quantile(0.95, slow, contract.REQUEST_DURATION, **labels) > THRESHOLDS.latency_p95_seconds
    )
    assert not stats.transport_errors


@pytest.mark.parametrize("status", [500, 503])
def test_errors_mode_raises_the_5xx_share(chaos_server: RunningServer, status: int) -> None:
    d, stats = drive(chaos_server, mode="errors", chaos_status=status, chaos_share=0.3)
    by_status = requests_by_status(d)
    share = sum(n for code, n in by_status.items() if code.startswith("5")) / sum(by_status.values())
    assert share > THRESHOLDS.error_rate_threshold
    probe = 1 if status == 503 else 0  # the one request that checks the server honours chaos asks for 503
    sent = stats.count(SINGLE, status) + stats.count(BATCH, status)
    assert sent > 0
    assert by_status[str(status)] == sent + probe


# ---------------------------------------------------------------------------------------------
# Refusals, CLI and the demo scenario


def test_several_urls_share_the_traffic_in_turn(
    chaos_server: RunningServer, plain_server: RunningServer
) -> None:
    """Replicas (the stack publishes one port each) get requests round robin."""
    before = [scrape(chaos_server.url), scrape(plain_server.url)]
    config = LoadConfig(url=f"{chaos_server.url},{plain_server.url}/", rate=200, max_requests=101, seed=5)
    stats = asyncio.run(run(config, model=MODEL, out=io.StringIO()))
    seen = [
        sum(requests_by_status(delta(b, scrape(s.url))).values())
        for b, s in zip(before, (chaos_server, plain_server), strict=True)
    ]
    assert stats.total_sent == 101
    assert seen == [51, 50]


@pytest.mark.parametrize("mode", ["latency", "errors"])
def test_chaos_modes_refuse_a_server_without_chaos(plain_server: RunningServer, mode: str) -> None:
    before = scrape(plain_server.url)
    with pytest.raises(LoadgenError, match="MODEL_CHAOS_ENABLED"):
        asyncio.run(
            run(LoadConfig(url=plain_server.url, mode=mode, duration=2), model=MODEL, out=io.StringIO())
        )
    # Only the one probe request was sent, and the server ignored its chaos header.
    assert sum(requests_by_status(delta(before, scrape(plain_server.url))).values()) == 1


@pytest.mark.parametrize("token", ["", "not-the-servers-token"])
def test_chaos_modes_refuse_a_server_that_does_not_take_the_token(
    chaos_server: RunningServer, token: str
) -> None:
    before = scrape(chaos_server.url)
    config = LoadConfig(url=chaos_server.url, mode="errors", duration=2, chaos_token=token)
    with pytest.raises(LoadgenError, match="MODEL_CHAOS_TOKEN"):
        asyncio.run(run(config, model=MODEL, out=io.StringIO()))
    # The probe asked for a 503 without the right token: served as a normal request.
    counted = requests_by_status(delta(before, scrape(chaos_server.url)))
    assert {status: n for status, n in counted.items() if n} == {"200": 1}


def test_the_cli_sends_the_token_from_the_environment(
    chaos_server: RunningServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--url", chaos_server.url, "--mode", "errors", "--chaos-status", "503", "--chaos-share", "1"]
    argv += ["--rate", "50", "--requests", "5", "--invalid-share", "0", "--batch-share", "0"]
    monkeypatch.delenv("MODEL_CHAOS_TOKEN", raising=False)
    assert main(argv) == 1
    assert "MODEL_CHAOS_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("MODEL_CHAOS_TOKEN", CHAOS_TOKEN)
    before = scrape(chaos_server.url)
    assert main(argv) == 0
    assert requests_by_status(delta(before, scrape(chaos_server.url)))["503"] == 5 + 1  # + the probe
    assert main([*argv, "--chaos-token", "not-the-servers-token"]) == 1  # the flag wins
    assert CHAOS_TOKEN not in capsys.readouterr().out  # a secret: never echoed


def test_unreachable_server_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["--url", url, "--duration", "1"]) == 1
    assert f"cannot reach the model server at {url}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "rate must be > 0"),
        (["--rate", "fast"], "invalid float value"),
        (["--duration", "-5"], "duration must be > 0"),
        (["--mode", "chaos"], "invalid choice: 'chaos'"),
        (["--invalid-share", "1.5"], "invalid-share must be between 0 and 1"),
        (["--batch-share", "0.7", "--invalid-share", "0.5"], "batch-share + invalid-share must be at most 1"),
        (["--chaos-status", "404"], "chaos-status must be 500 or 503"),
        (["--chaos-delay", "9"], "chaos-delay must be > 0 and <= 5"),
        (["--url", "localhost:8000"], "url must be http(s) URLs, comma-separated (got 'localhost:8000')"),
        (
            ["--url", "http://127.0.0.1:8000,ftp://x"],
            "url must be http(s) URLs, comma-separated (got 'ftp://x')",
        ),
        (["--drift-features", "nope"], "drift-features: unknown nope; the model has"),
        (["--time-scale", "0"], "time-scale must be > 0"),
        (["--progress-interval", "0"], "progress-interval must be > 0"),
        (["--scenario", "demo", "--phases", "errors,chaos"], "phases: unknown chaos; choose from normal,"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_reports_progress_and_stops_by_itself(chaos_server: RunningServer) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadgen",
            "--url",
            chaos_server.url,
            "--mode",
            "errors",
            "--rate",
            "40",
            "--duration",
            "2",
            "--progress-interval",
            "0.5",
            "--seed",
            "1",
            "--chaos-token",
            CHAOS_TOKEN,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    progress = [line for line in lines if line.startswith("[")]
    # Bounded output: one line per interval (at most), then the summary.
    assert 1 <= len(progress) <= 4, lines
    assert all("errors" in line and "/s)" in line and "status" in line for line in progress)
    assert lines[-1].startswith("done errors:"), lines
    assert all(f"{code}:" in lines[-1] for code in (200, 422, 500)), lines


def test_demo_phase_texts_follow_the_alert_settings() -> None:
    custom = AlertSettings(
        error_rate_threshold=0.1, error_rate_for_seconds=600, feature_drift_psi_threshold=0.4
    )
    by_mode = {phase.mode: phase for phase in demo_phases(custom)}
    assert by_mode["errors"].watch == (
        "5xx share > 10% over 5m, for 10m: ModelHighErrorRate fires after ~11 min"
    )
    assert by_mode["errors"].seconds == 900
    assert "PSI of one feature > 0.4 (1h window), for 30m" in by_mode["feature-drift"].watch
    assert demo_phases() == DEMO_PHASES


def test_demo_scenario_runs_its_phases_and_skips_chaos_when_off(plain_server: RunningServer) -> None:
    out = io.StringIO()
    phases = (Phase("normal", 1, "a"), Phase("errors", 1, "b"), Phase("feature-drift", 1, "c"))
    base = LoadConfig(url=plain_server.url, rate=50, seed=3, progress_interval=5)
    before = scrape(plain_server.url)
    results = asyncio.run(run_scenario(base, phases, time_scale=0.5, model=MODEL, out=out))
    assert [stats is None for _, stats in results] == [False, True, False]
    assert "errors skipped (chaos disabled)" in out.getvalue()
    assert "chaosEnabled" in out.getvalue()
    sent = sum(stats.total_sent for _, stats in results if stats)
    # Everything the scenario sent (plus the one chaos probe) reached the server.
    assert sum(requests_by_status(delta(before, scrape(plain_server.url))).values()) == sent + 1


# ---------------------------------------------------------------------------------------------
# Through a real Prometheus with the exported recording and alert rules


@pytest.fixture
def monitored_server(tmp_path: Path) -> Iterator[tuple[RunningServer, RunningPrometheus]]:
    """A fresh chaos-enabled server (so the 1h/5m windows hold only this test's traffic) and a
    Prometheus scraping it every second with the rule files the stack deploys."""
    with (
        running_server(tmp_path, env=CHAOS_ENV) as server,
        running_prometheus(prometheus_rule_files(THRESHOLDS), [server.target]) as prom,
    ):
        # A scrape before any traffic, so increase() sees the counters' start at 0.
        wait_for(lambda: finite_values(prom.query("up")) == [1.0], timeout=30, what="a first scrape")
        yield server, prom


def _predict_requests_seen(prom: RunningPrometheus) -> float:
    expr = f'sum({contract.REQUESTS_TOTAL}{{job="{contract.JOB_NAME}",handler="{contract.PREDICT_HANDLER}"}})'
    return sum(finite_values(prom.query(expr)))


def settle(prom: RunningPrometheus, requests: int) -> None:
    """Wait until Prometheus scraped all `requests` and then evaluated every rule group once more."""
    wait_for(
        lambda: _predict_requests_seen(prom) == requests, timeout=30, what=f"{requests} requests scraped"
    )
    scraped = time.time()

    def evaluated_since() -> bool:
        groups = rule_groups(prom.base_url)
        return bool(groups) and all(
            datetime.fromisoformat(g["lastEvaluation"]).timestamp() > scraped for g in groups
        )

    wait_for(evaluated_since, timeout=30, what="a rule evaluation after the last scrape")


def alerts_by_name(prom: RunningPrometheus) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for alert in active_alerts(prom.base_url):
        out[alert["labels"]["alertname"]].append(alert)
    return out


def psi_recorded(prom: RunningPrometheus) -> dict[str, float]:
    return {r["metric"]["feature"]: float(r["value"][1]) for r in prom.query(queries.FEATURE_DRIFT_PSI)}


def test_each_mode_makes_its_alert_pending_in_prometheus(
    monitored_server: tuple[RunningServer, RunningPrometheus],
) -> None:
    """normal -> nothing; feature-drift -> FeatureDrift for that feature only; errors -> ModelHighErrorRate;
    latency -> ModelHighLatency. Alerts stay pending: their `for:` is minutes, this test is seconds."""
    server, prom = monitored_server
    base = LoadConfig(
        url=server.url,
        rate=200.0,
        duration=5.0,
        max_requests=300,
        seed=11,
        progress_interval=5,
        chaos_token=CHAOS_TOKEN,
    )
    sent = 0

    def phase(**overrides: object) -> None:
        nonlocal sent
        config = replace(base, **overrides)
        stats = asyncio.run(run(config, model=MODEL, out=io.StringIO()))
        assert not stats.transport_errors
        sent += stats.total_sent + (1 if config.mode in ("latency", "errors") else 0)  # + the chaos probe
        settle(prom, sent)

    phase(mode="normal")
    psi = psi_recorded(prom)
    assert set(psi) == set(FEATURES)
    assert max(psi.values()) < 0.1, psi
    assert not alerts_by_name(prom), alerts_by_name(prom)

    drifted = FEATURES[1]
    phase(mode="feature-drift", drift_features=(drifted,))
    psi = psi_recorded(prom)
    assert psi[drifted] > THRESHOLDS.feature_drift_psi_threshold, psi
    assert [a["labels"]["feature"] for a in alerts_by_name(prom)[alerts.ALERT_FEATURE_DRIFT]] == [drifted]
    assert all(a["state"] == "pending" for a in alerts_by_name(prom)[alerts.ALERT_FEATURE_DRIFT])
    assert alerts.ALERT_HIGH_ERROR_RATE not in alerts_by_name(prom)

    # Slower, so the new status="500" series spans several scrapes: rate() ignores a series' first sample.
    phase(mode="errors", rate=50.0, max_requests=200)
    assert alerts.ALERT_HIGH_ERROR_RATE in alerts_by_name(prom)
    assert alerts.ALERT_HIGH_LATENCY not in alerts_by_name(prom)

    phase(mode="latency", max_requests=200, chaos_share=1.0, chaos_delay=1.0)
    assert alerts.ALERT_HIGH_LATENCY in alerts_by_name(prom)
    # The prediction-shift alert compares with 24h earlier, which a fresh Prometheus does not have.
    assert alerts.ALERT_PREDICTION_SHIFT not in alerts_by_name(prom)
