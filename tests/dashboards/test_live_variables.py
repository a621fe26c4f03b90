"""The dashboard's `instance` and `version` variables against a real Prometheus scraping two real replicas.

Replica A serves the packaged model (version 1.0.0) healthy traffic drawn from the training deciles,
batches included. Replica B serves the same model relabelled 2.0.0 with chaos on: one fixed row, a
quarter of the requests slower than the latency SLO bound, a quarter injected 500s, a quarter invalid.
So every panel shows something different for A, for B and for both, and each query can be checked for
what the selection does, as Grafana substitutes it (`.*` for "All", escaped values joined as `(a|b)`
otherwise), all at one evaluation time so the results compare exactly.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import httpx
import pytest

from dashboards import queries
from dashboards.alerts import prometheus_rule_files
from dashboards.dashboard import build_dashboard
from dashboards.queries import DASHBOARD, FLEET, Scope
from dashboards.settings import DEFAULT_SETTINGS
from loadgen.simulator import InputSampler
from server import contract
from server.model import load_model
from server.settings import DEFAULT_MODEL_PATH
from tests.dashboards.test_dashboard import model_server_exprs
from tests.support.net import wait_for
from tests.support.prometheus import (
    ALL_SELECTED,
    RunningPrometheus,
    finite_values,
    grafana_expr_to_promql,
    grafana_selection,
    query,
    running_prometheus,
)
from tests.support.server import CHAOS_ENV, CHAOS_TOKEN, RunningServer, running_server

pytestmark = pytest.mark.live

SCRAPE_INTERVAL_S = 1.0
VERSION_A, VERSION_B = "1.0.0", "2.0.0"
BOUND = DEFAULT_SETTINGS.latency_p95_seconds  # the latency SLO's bound
SLOW_S = BOUND + 0.1


@dataclass(frozen=True)
class Replicas:
    a: RunningServer
    b: RunningServer


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    directory = tmp_path_factory.mktemp("replicas")
    artifact = json.loads(DEFAULT_MODEL_PATH.read_text())
    assert artifact["version"] == VERSION_A
    model_b = directory / "model-b.json"
    model_b.write_text(json.dumps({**artifact, "version": VERSION_B}))
    env_b = {"MODEL_PATH": str(model_b), **CHAOS_ENV}
    with running_server(directory) as a, running_server(directory, env=env_b) as b:
        yield Replicas(a, b)


@pytest.fixture(scope="module")
def prometheus(replicas: Replicas) -> Iterator[RunningPrometheus]:
    with running_prometheus(
        prometheus_rule_files(DEFAULT_SETTINGS),
        [replicas.a.target, replicas.b.target],
        scrape_interval=f"{SCRAPE_INTERVAL_S:g}s",
    ) as running:
        yield running


@dataclass
class Traffic:
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def loop(self, url: str, send: Callable[[httpx.Client, int], None]) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                try:
                    send(client, i)
                except httpx.HTTPError as error:
                    self.errors.append(repr(error))
                self.stop.wait(0.01)


def healthy(client: httpx.Client, i: int, sampler: InputSampler) -> None:
    """Replica A: single rows and batches from the training deciles, all answered 200."""
    body = {"instances": [sampler.row() for _ in range(20)]} if i % 3 == 0 else {"features": sampler.row()}
    assert client.post(contract.PREDICT_HANDLER, json=body).status_code == 200


def troubled(client: httpx.Client, i: int, row: list[float]) -> None:
    """Replica B, in a cycle of four: one fixed row answered 200 after sleeping past the SLO bound, then 200
    at once, an injected 500, an invalid body (422). Every kind recurs within a second."""
    kind = i % 4
    headers = {contract.CHAOS_TOKEN_HEADER: CHAOS_TOKEN}
    if kind == 0:
        headers[contract.CHAOS_DELAY_HEADER] = f"{SLOW_S:g}"
    if kind == 2:
        headers[contract.CHAOS_STATUS_HEADER] = "500"
    body = {"features": [*row, 0.0]} if kind == 3 else {"features": row}
    client.post(contract.PREDICT_HANDLER, json=body, headers=headers)


@pytest.fixture(scope="module")
def at(replicas: Replicas, prometheus: RunningPrometheus) -> Iterator[float]:
    """The evaluation time of every query: once both replicas have traffic in a full rate window."""
    wait_for(
        lambda: len(query(prometheus.base_url, f"{queries.target_up()} == 1")) == 2, 60, what="both scraped"
    )
    model = load_model(DEFAULT_MODEL_PATH)
    sampler = InputSampler(model.reference_deciles, random.Random(7))
    high = [deciles[-1] for deciles in model.reference_deciles]  # every feature at its top decile
    traffic = Traffic()
    threads = [
        threading.Thread(target=traffic.loop, args=(replicas.a.url, lambda c, i: healthy(c, i, sampler))),
        threading.Thread(target=traffic.loop, args=(replicas.b.url, lambda c, i: troubled(c, i, high))),
    ]
    for thread in threads:
        thread.start()
    try:
        rate_window = grafana_expr_to_promql("$__rate_interval", SCRAPE_INTERVAL_S)
        per_request = f"{contract.REQUESTS_TOTAL}{{handler='{contract.PREDICT_HANDLER}'}}[{rate_window}]"
        rates = f"sum by (instance, status) (rate({per_request}))"
        scrapes = f"count_over_time({queries.target_up()}[{rate_window}]) >= 4"
        wanted = {(replicas.a.target, "200")} | {(replicas.b.target, s) for s in ("200", "422", "500")}

        def ready() -> float | None:
            """A time at which every kind of request has a rate on its replica, over a full window."""
            candidate = time.time() - SCRAPE_INTERVAL_S
            positive = {
                (s["metric"]["instance"], s["metric"]["status"])
                for s in query(prometheus.base_url, rates, at=candidate)
                if float(s["value"][1]) > 0
            }
            scraped = len(query(prometheus.base_url, scrapes, at=candidate)) == 2
            return candidate if scraped and wanted <= positive else None

        # Enough that the 1h median and the 30d ratios have data on both replicas.
        total = f"sum({contract.PREDICTION_VALUE}_count) > 300"
        wait_for(lambda: query(prometheus.base_url, total), 120, what="traffic")
        yield wait_for(ready, 60, what="every kind of request in one rate window")
    finally:
        traffic.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not traffic.errors, traffic.errors[:5]


def selections(replicas: Replicas) -> dict[str, Mapping[str, str]]:
    instance, version = queries.INSTANCE_VARIABLE, queries.VERSION_VARIABLE
    everything = queries.ALL_VALUE
    return {
        "all": ALL_SELECTED,
        "A": {instance: grafana_selection(replicas.a.target), version: everything},
        "B": {instance: grafana_selection(replicas.b.target), version: everything},
        VERSION_A: {instance: everything, version: grafana_selection(VERSION_A)},
        VERSION_B: {instance: everything, version: grafana_selection(VERSION_B)},
        "A and B": {
            instance: grafana_selection(replicas.a.target, replicas.b.target),
            version: grafana_selection(VERSION_A, VERSION_B),
        },
    }


def scoped_exprs() -> list[tuple[str, str]]:
    return model_server_exprs(build_dashboard())


def run(prometheus: RunningPrometheus, expr: str, at: float, variables: Mapping[str, str] = ALL_SELECTED):
    """The result as comparable data: sorted (labels, value text) pairs."""
    promql = grafana_expr_to_promql(expr, SCRAPE_INTERVAL_S, variables=variables)
    result = query(prometheus.base_url, promql, at=at)
    return sorted((tuple(sorted(s["metric"].items())), s["value"][1]) for s in result)


def test_every_panel_query_has_data_for_every_selection(
    prometheus: RunningPrometheus, replicas: Replicas, at: float
) -> None:
    exprs = scoped_exprs()
    assert len(exprs) >= 25
    empty = []
    for name, variables in selections(replicas).items():
        for title, expr in exprs:
            result = query(
                prometheus.base_url,
                grafana_expr_to_promql(expr, SCRAPE_INTERVAL_S, variables=variables),
                at=at,
            )
            if not finite_values(result):
                empty.append(f"{name} / {title}: {expr} -> {result}")
    assert not empty, "\n".join(empty)


def test_one_replica_restricts_every_panel_query(
    prometheus: RunningPrometheus, replicas: Replicas, at: float
) -> None:
    chosen = selections(replicas)
    same = []
    for title, expr in scoped_exprs():
        everything = run(prometheus, expr, at)
        for name in ("A", "B"):
            if run(prometheus, expr, at, chosen[name]) == everything:
                same.append(f"{title} ({name}): {expr}")
    assert not same, "selecting one replica changed nothing:\n" + "\n".join(same)


def test_a_version_selects_the_replicas_serving_it(
    prometheus: RunningPrometheus, replicas: Replicas, at: float
) -> None:
    """Every panel query with a version selected equals the query with its replica selected (the join on
    model_info is exact); both selected equals "All"."""
    chosen = selections(replicas)
    for title, expr in scoped_exprs():
        assert run(prometheus, expr, at, chosen[VERSION_A]) == run(prometheus, expr, at, chosen["A"]), title
        assert run(prometheus, expr, at, chosen[VERSION_B]) == run(prometheus, expr, at, chosen["B"]), title
        assert run(prometheus, expr, at, chosen["A and B"]) == run(prometheus, expr, at), title


def test_model_version_panel_names_each_replicas_version(
    prometheus: RunningPrometheus, replicas: Replicas, at: float
) -> None:
    chosen = selections(replicas)
    expr = queries.model_versions(DASHBOARD)
    model = load_model(DEFAULT_MODEL_PATH).name

    def versions(name: str) -> dict[str, float]:
        return {dict(labels)["version"]: float(v) for labels, v in run(prometheus, expr, at, chosen[name])}

    assert versions("all") == {VERSION_A: 1.0, VERSION_B: 1.0}
    assert versions("B") == versions(VERSION_B) == {VERSION_B: 1.0}
    assert {dict(labels)["model"] for labels, _ in run(prometheus, expr, at)} == {model}


# Each query function a panel uses, with the arguments the dashboard gives it, in any scope.
QUERIES: dict[str, Callable[[Scope], str]] = {
    "request rate by status": lambda s: queries.request_rate_by_status(scope=s),
    "predict request rate": lambda s: queries.predict_request_rate(scope=s),
    "prediction rate": lambda s: queries.prediction_rate(scope=s),
    "5xx ratio": lambda s: queries.server_error_ratio(scope=s),
    "4xx ratio": lambda s: queries.client_error_ratio(scope=s),
    "p95": lambda s: queries.predict_latency_quantile(0.95, scope=s),
    "heatmap": lambda s: queries.prediction_heatmap(scope=s),
    "median": queries.prediction_median_expr,
    "replicas up": queries.replicas_up,
    "versions": queries.model_versions,
    "feature samples": queries.feature_samples_expr,
    "availability error ratio 5m": lambda s: queries.slo_error_ratio_expr(
        queries.AVAILABILITY, "5m", BOUND, s
    ),
    "latency error ratio 5m": lambda s: queries.slo_error_ratio_expr(queries.LATENCY, "5m", BOUND, s),
}
# Those whose value is a sum over replicas.
ADDITIVE = (
    "request rate by status",
    "predict request rate",
    "prediction rate",
    "heatmap",
    "feature samples",
    "replicas up",
    "versions",
)


def test_all_reads_exactly_what_the_alert_rules_read(prometheus: RunningPrometheus, at: float) -> None:
    """With "All" selected a panel query gives the very numbers of its unrestricted render (the one alert
    and recording rules use): the version join drops nothing and doubles nothing."""
    for name, build in QUERIES.items():
        dashboard, fleet = build(DASHBOARD), build(FLEET)
        assert "$instance" in dashboard, name
        assert "$instance" not in fleet, name
        assert run(prometheus, dashboard, at) == run(prometheus, fleet, at), name


def test_replicas_add_up_to_all(prometheus: RunningPrometheus, replicas: Replicas, at: float) -> None:
    chosen = selections(replicas)
    for name in ADDITIVE:
        expr = QUERIES[name](DASHBOARD)
        per_replica = [dict(run(prometheus, expr, at, chosen[r])) for r in ("A", "B")]
        everything = dict(run(prometheus, expr, at))
        assert everything, name
        for labels, value in everything.items():
            parts = sum(float(part.get(labels, 0)) for part in per_replica)
            assert math.isclose(parts, float(value), rel_tol=1e-9, abs_tol=1e-12), (name, labels)
        assert all(set(part) <= set(everything) for part in per_replica), name


def test_the_selected_replica_shows_its_own_trouble(
    prometheus: RunningPrometheus, replicas: Replicas, at: float
) -> None:
    chosen = selections(replicas)

    def value(name: str, selection: str) -> float:
        (only,) = finite_values(
            query(
                prometheus.base_url,
                grafana_expr_to_promql(
                    QUERIES[name](DASHBOARD), SCRAPE_INTERVAL_S, variables=chosen[selection]
                ),
                at=at,
            )
        )
        return only

    assert value("5xx ratio", "A") == 0 < value("5xx ratio", "all") < value("5xx ratio", "B")
    assert value("4xx ratio", "A") == 0 < value("4xx ratio", "B")
    assert value("p95", "A") < BOUND < value("p95", "B")
    assert value("latency error ratio 5m", "A") == 0 < value("latency error ratio 5m", "B")
    assert value("replicas up", "A") == value("replicas up", "B") == 1
    assert value("replicas up", "all") == 2


def test_the_drift_of_one_replica_shows_when_it_is_selected(
    prometheus: RunningPrometheus, replicas: Replicas, at: float
) -> None:
    """B sends one fixed row, so every feature is far past the PSI threshold there, while A's rows drawn
    from the training deciles stay well under it. On All the panel shows the PSI FeatureDrift reads (the
    recorded series, up to the traffic of one rule evaluation: within a tenth of the threshold)."""
    chosen = selections(replicas)
    threshold = DEFAULT_SETTINGS.feature_drift_psi_threshold
    features = set(load_model(DEFAULT_MODEL_PATH).feature_names)

    def psi(variables: Mapping[str, str], expr: str = queries.feature_drift_psi(DASHBOARD)) -> dict:
        return {dict(labels)["feature"]: float(v) for labels, v in run(prometheus, expr, at, variables)}

    a, b, everything = psi(chosen["A"]), psi(chosen["B"]), psi(ALL_SELECTED)
    assert set(a) == set(b) == set(everything) == features
    assert max(a.values()) < threshold / 2
    assert min(b.values()) > threshold
    recorded = psi(ALL_SELECTED, queries.FEATURE_DRIFT_PSI)
    for feature in features:
        assert math.isclose(everything[feature], recorded[feature], abs_tol=threshold / 10), feature


def test_logs_are_clean(replicas: Replicas, at: float) -> None:
    for server in (replicas.a, replicas.b):
        assert "Traceback" not in server.log(), server.log_tail()
