"""Every dashboard panel, recording rule and alert query against a real Prometheus scraping the real server.

`python -m server` (2 workers, metrics summed) and the Debian `prometheus` binary run on free 127.0.0.1
ports; Prometheus scrapes every second with the exported rule files loaded. Healthy traffic (valid
single rows drawn from the training deciles, batches, and invalid bodies) runs in the background while
the queries are checked.
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from dashboards import alerts, queries
from dashboards.alerts import alert_definitions, grafana_rule_groups, prometheus_rule_files, recording_rules
from dashboards.dashboard import build_dashboard
from dashboards.settings import DATASOURCE_UID, DEFAULT_SETTINGS
from loadgen.simulator import InputSampler
from server import contract
from server.model import load_model
from server.settings import DEFAULT_MODEL_PATH
from tests.support.net import wait_for
from tests.support.prometheus import (
    RunningPrometheus,
    active_alerts,
    dashboard_exprs,
    finite_values,
    grafana_expr_to_promql,
    query,
    rule_groups,
    running_prometheus,
)
from tests.support.server import RunningServer, running_server

pytestmark = pytest.mark.live

SCRAPE_INTERVAL_S = 1.0
# Enough rows per feature that sampling noise keeps PSI far below the alert threshold (PSI ~ 9 / rows).
MIN_PREDICTIONS = 2000


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("model-server"), workers=2) as server:
        yield server


@pytest.fixture(scope="module")
def prometheus(model_server: RunningServer) -> Iterator[RunningPrometheus]:
    with running_prometheus(
        prometheus_rule_files(DEFAULT_SETTINGS),
        [model_server.target],
        scrape_interval=f"{SCRAPE_INTERVAL_S:g}s",
    ) as running:
        yield running


@dataclass
class Traffic:
    """Healthy background traffic: single rows, batches and invalid bodies, until stopped."""

    url: str
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        model = load_model(DEFAULT_MODEL_PATH)
        sampler = InputSampler(model.reference_deciles, random.Random(42))
        n = len(model.feature_names)
        with httpx.Client(base_url=self.url, timeout=10) as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                try:
                    self._send(client, "single", {"features": sampler.row()})
                    if i % 3 == 0:
                        self._send(client, "batch", {"instances": [sampler.row() for _ in range(20)]})
                    if i % 5 == 0:
                        self._send(client, "invalid", {"features": [0.5] * (n + 1)})
                except httpx.HTTPError as error:
                    self.errors.append(repr(error))
                self.stop.wait(0.01)

    def _send(self, client: httpx.Client, kind: str, body: dict) -> None:
        response = client.post(contract.PREDICT_HANDLER, json=body)
        self.statuses[f"{kind}/{response.status_code}"] += 1


@pytest.fixture(scope="module")
def traffic(model_server: RunningServer, prometheus: RunningPrometheus) -> Iterator[Traffic]:
    # Start after the first scrape, so increase() over the drift window sees every request.
    wait_for(lambda: query(prometheus.base_url, f"{queries.target_up()} == 1"), 60, what="a first scrape")
    traffic = Traffic(model_server.url)
    thread = threading.Thread(target=traffic.run, daemon=True)
    thread.start()
    try:
        scraped = f"sum({contract.PREDICTION_VALUE}_count) > {MIN_PREDICTIONS}"
        wait_for(
            lambda: query(prometheus.base_url, scraped), 120, what=f"{MIN_PREDICTIONS} scraped predictions"
        )
        # rate() over Grafana's $__rate_interval needs samples across the whole window.
        rate_window = grafana_expr_to_promql("$__rate_interval", SCRAPE_INTERVAL_S)
        wait_for(
            lambda: query(
                prometheus.base_url, f"count_over_time(up{{job='{contract.JOB_NAME}'}}[{rate_window}]) >= 4"
            ),
            60,
            what="a full rate window of scrapes",
        )
        yield traffic
    finally:
        traffic.stop.set()
        thread.join(timeout=30)
    assert not traffic.errors, traffic.errors[:5]


def test_traffic_was_served_as_expected(traffic: Traffic) -> None:
    assert traffic.statuses["single/200"] > 0
    assert traffic.statuses["batch/200"] > 0
    assert traffic.statuses["invalid/422"] > 0
    assert set(traffic.statuses) == {"single/200", "batch/200", "invalid/422"}


def test_every_dashboard_query_returns_data(prometheus: RunningPrometheus, traffic: Traffic) -> None:
    empty = []
    exprs = dashboard_exprs(build_dashboard())
    for title, expr in exprs:
        promql = grafana_expr_to_promql(expr, SCRAPE_INTERVAL_S)
        result = query(prometheus.base_url, promql)
        if not finite_values(result):
            empty.append(f"{title}: {promql} -> {result}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
    assert len(exprs) >= 12


def test_dashboard_values_reflect_the_traffic(prometheus: RunningPrometheus, traffic: Traffic) -> None:
    def run(expr: str) -> list[dict]:
        return query(prometheus.base_url, grafana_expr_to_promql(expr, SCRAPE_INTERVAL_S))

    statuses = {s["metric"]["status"] for s in run(queries.request_rate_by_status())}
    assert {"200", "422"} <= statuses
    assert finite_values(run(queries.server_error_ratio())) == [0.0]  # 4xx are not server errors
    assert finite_values(run(queries.client_error_ratio()))[0] > 0
    assert finite_values(run(queries.replicas_up())) == [1.0]
    (version,) = run(queries.model_versions())
    model = load_model(DEFAULT_MODEL_PATH)
    assert version["metric"] == {"model": model.name, "version": model.version}
    assert float(version["value"][1]) == 1.0  # one replica (its two workers' gauges merged)
    predictions, requests = (
        finite_values(run(queries.prediction_rate())),
        finite_values(run(queries.predict_request_rate())),
    )
    assert predictions[0] > requests[0] > 0  # batches count once as requests, per row as predictions
    p50, p99 = (finite_values(run(queries.predict_latency_quantile(q)))[0] for q in (0.5, 0.99))
    assert 0 < p50 <= p99
    heatmap = run(queries.prediction_heatmap())
    assert {float(s["metric"]["le"]) for s in heatmap} == {*contract.PREDICTION_VALUE_BUCKETS, math.inf}


def test_every_recording_rule_returns_data(prometheus: RunningPrometheus, traffic: Traffic) -> None:
    for rule in recording_rules():
        result = wait_for(
            lambda r=rule: finite_values(query(prometheus.base_url, r.record)), 30, what=rule.record
        )
        assert result, rule.record
    psi = query(prometheus.base_url, queries.FEATURE_DRIFT_PSI)
    model = load_model(DEFAULT_MODEL_PATH)
    assert {s["metric"]["feature"] for s in psi} == set(model.feature_names)
    shares = query(prometheus.base_url, queries.FEATURE_BIN_SHARE)
    assert len(shares) == len(model.feature_names) * len(contract.FEATURE_BINS)


def test_rules_are_loaded_and_healthy(prometheus: RunningPrometheus, traffic: Traffic) -> None:
    def all_evaluated() -> list[dict] | None:
        rules = [r for g in rule_groups(prometheus.base_url) for r in g["rules"]]
        return rules if all(r["health"] != "unknown" for r in rules) else None

    rules = wait_for(all_evaluated, 30, what="every rule evaluated once")
    assert {r["name"] for r in rules} == {a.name for a in alert_definitions(DEFAULT_SETTINGS)} | {
        r.record for r in recording_rules()
    }
    unhealthy = [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not unhealthy


def test_every_alert_query_evaluates(prometheus: RunningPrometheus, traffic: Traffic) -> None:
    """The query node of each Grafana rule (the part before the threshold) runs on Prometheus; it has
    data except the prediction shift, which is gated off without 24h of history."""
    (group,) = grafana_rule_groups(DATASOURCE_UID, DEFAULT_SETTINGS)
    for rule in group["rules"]:
        expr = json.loads(rule["datas"][0]["model"])["expr"]
        result = query(prometheus.base_url, expr)  # raises on any PromQL error
        if rule["name"] == alerts.ALERT_PREDICTION_SHIFT:
            assert result == [], "no 24h history: the shift must compare nothing"
            assert finite_values(query(prometheus.base_url, queries.prediction_median()))
        elif rule["name"] in (alerts.ALERT_AVAILABILITY_BURN, alerts.ALERT_LATENCY_BURN):
            assert result == [], "healthy traffic burns no budget"
        elif rule["name"] == alerts.ALERT_FEATURE_DRIFT:
            assert result == [], "an undrifted PSI stays under the noise level of its n"
            psi = finite_values(query(prometheus.base_url, queries.feature_drift_psi()))
            assert psi
            assert max(psi) < DEFAULT_SETTINGS.feature_drift_psi_threshold / 2
            assert finite_values(query(prometheus.base_url, queries.feature_samples()))
        else:
            values = finite_values(result)
            assert values, f"{rule['name']}: {expr} -> {result}"


def test_no_alert_on_healthy_traffic(prometheus: RunningPrometheus, traffic: Traffic) -> None:
    # Once enough traffic is in, no condition holds: nothing pending, let alone firing.
    def quiet() -> bool:
        alerts = active_alerts(prometheus.base_url)
        assert not [a for a in alerts if a["state"] == "firing"], alerts
        return not alerts

    wait_for(quiet, 30, what="no pending alerts")
    assert all(math.isfinite(v) for v in finite_values(query(prometheus.base_url, queries.FEATURE_DRIFT_PSI)))
