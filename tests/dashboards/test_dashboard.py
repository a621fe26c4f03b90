"""The Grafana dashboard JSON model: data source, queries, heatmap, thresholds, determinism."""

from __future__ import annotations

import json
import re

import pytest

from dashboards import queries
from dashboards.alerts import grafana_rule_groups, prometheus_rule_documents
from dashboards.dashboard import build_dashboard, dashboard_json
from dashboards.settings import DASHBOARD_UID, DATASOURCE_UID, SLO_WINDOWS_SECONDS, AlertSettings
from server import contract
from tests.support.prometheus import dashboard_exprs, grafana_expr_to_promql

SCOPE = queries.DASHBOARD


def model_server_exprs(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, expr) of every panel query that reads the model servers (job model-server); the
    gateway's own series (job model-gateway, in front of every replica) know no replica or version."""
    return [(t, e) for t, e in dashboard_exprs(dashboard) if f'job="{contract.JOB_NAME}"' in e]


def all_query_strings() -> set[str]:
    """Every expression queries.py can produce for a panel (its functions with Grafana's window, in the
    dashboard's scope)."""
    made = {
        queries.request_rate_by_status(scope=SCOPE),
        queries.predict_request_rate(scope=SCOPE),
        queries.prediction_rate(scope=SCOPE),
        queries.server_error_ratio(scope=SCOPE),
        queries.client_error_ratio(scope=SCOPE),
        queries.prediction_heatmap(scope=SCOPE),
        queries.prediction_median_expr(SCOPE),
        queries.feature_drift_psi(SCOPE),
        queries.replicas_up(SCOPE),
        queries.model_versions(SCOPE),
        queries.feature_samples(SCOPE),
    }
    made |= {queries.predict_latency_quantile(q, scope=SCOPE) for q in (0.5, 0.9, 0.95, 0.99)}
    for sli, budget in ((queries.AVAILABILITY, 0.001), (queries.LATENCY, 0.01)):
        made.add(queries.error_budget_remaining(sli, budget, 0.5, SCOPE))
        made.add(queries.sli(sli, 3600, SCOPE, 0.5))
        made |= {queries.burn_rate(sli, w, budget, SCOPE, 0.5) for w in SLO_WINDOWS_SECONDS}
    return made


def panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return build_dashboard()


def test_fixed_uid_title_and_rows(dashboard: dict) -> None:
    assert dashboard["uid"] == DASHBOARD_UID
    assert dashboard["title"]
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Overview", "Traffic and errors", "Latency", "Predictions", "Input drift", "SLOs"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(set(ids)) == len(ids)


def test_every_panel_and_target_uses_the_datasource_uid(dashboard: dict) -> None:
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]


def test_datasource_uid_is_a_parameter() -> None:
    text = dashboard_json("another-prometheus")
    assert DATASOURCE_UID not in text
    for panel in panels(json.loads(text)):
        assert panel["datasource"]["uid"] == "another-prometheus"
        assert {t["datasource"]["uid"] for t in panel["targets"]} == {"another-prometheus"}


def test_every_expr_comes_from_queries(dashboard: dict) -> None:
    known = all_query_strings()
    exprs = dashboard_exprs(dashboard)
    assert len(exprs) >= 12
    for title, expr in exprs:
        assert expr in known, f"{title}: {expr!r} is not built by dashboards/queries.py"
    # ...and each one is plain PromQL once Grafana's variables are substituted.
    for _, expr in exprs:
        assert "$" not in grafana_expr_to_promql(expr, scrape_interval_s=15)


def test_variables_instance_and_version(dashboard: dict) -> None:
    """Two query variables over the data source, multi-value, "All" (any value) selected by default."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert list(variables) == [queries.VERSION_VARIABLE, queries.INSTANCE_VARIABLE]
    assert variables["version"]["query"] == f'label_values(model_info{{job="{contract.JOB_NAME}"}}, version)'
    assert variables["instance"]["query"] == f'label_values(up{{job="{contract.JOB_NAME}"}}, instance)'
    for variable in variables.values():
        assert variable["type"] == "query"
        assert variable["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
        assert variable["multi"] is True
        assert variable["includeAll"] is True
        assert variable["allValue"] == ".*"
        assert variable["current"]["value"] == ["$__all"]
        assert variable["refresh"] == 2  # on time range change: replicas come and go
        assert variable["label"]
        assert variable["description"]


def test_every_panel_query_is_filtered_by_both_variables(dashboard: dict) -> None:
    """Every series selector of every panel query is restricted to `$instance`, and the query to `$version`
    (on model_info itself, or by dropping the replicas that serve another version); alert rules and
    recording rules use no dashboard variable."""
    job = f'job="{contract.JOB_NAME}"'
    gate = f'{contract.MODEL_INFO}{{{job},version!~"$version"}}'

    def selectors(expr: str) -> list[str]:
        return [f"{metric}{{{matchers}}}" for metric, matchers in re.findall(r"(\w+)\{([^}]*)\}", expr)]

    scoped = model_server_exprs(dashboard)
    for title, expr in dashboard_exprs(dashboard):
        if (title, expr) not in scoped:  # only the gateway's series, never a recorded model-server series
            assert selectors(expr), (title, expr)
            assert all(f'job="{contract.GATEWAY_JOB_NAME}"' in s for s in selectors(expr)), (title, expr)
    checked = set()
    for title, expr in scoped:
        checked.add(title)
        found = selectors(expr)
        series = [s for s in found if s != gate]
        assert series, (title, expr)
        for selector in series:
            assert job in selector, (title, selector)
            assert 'instance=~"$instance"' in selector, (title, selector)
        gates = len(found) - len(series)
        if gates:  # per-replica series: each one (numerator and denominator alike) loses the other versions
            assert gates == len(series) == expr.count(f"unless on (instance) {gate}"), (title, expr)
        else:  # model_info itself carries the version
            assert all(s.startswith(f"{contract.MODEL_INFO}{{") for s in series), (title, expr)
            assert all('version=~"$version"' in s for s in series), (title, expr)
    assert len(checked) >= 13


def test_alert_and_recording_rules_use_no_dashboard_variable() -> None:
    documents = prometheus_rule_documents(AlertSettings())
    exprs = [rule["expr"] for doc in documents.values() for group in doc["groups"] for rule in group["rules"]]
    assert len(exprs) >= 20
    for expr in exprs:
        assert "$" not in expr, expr
    (group,) = grafana_rule_groups(DATASOURCE_UID, AlertSettings())
    for rule in group["rules"]:
        assert "$" not in json.loads(rule["datas"][0]["model"])["expr"], rule["name"]


def test_the_required_panels_exist(dashboard: dict) -> None:
    by_title = {p["title"]: p for p in panels(dashboard)}
    exprs = {p["title"]: [t["expr"] for t in p["targets"]] for p in panels(dashboard)}
    assert by_title["Request rate by status"]["type"] == "timeseries"
    assert exprs["Request rate by status"] == [queries.request_rate_by_status(scope=SCOPE)]
    latency = by_title[f"Latency {contract.PREDICT_HANDLER}"]
    assert latency["fieldConfig"]["defaults"]["unit"] == "s"
    assert exprs[latency["title"]] == [
        queries.predict_latency_quantile(q, scope=SCOPE) for q in (0.5, 0.95, 0.99)
    ]
    assert [t["legendFormat"] for t in latency["targets"]] == ["p50", "p95", "p99"]
    assert queries.server_error_ratio(scope=SCOPE) in exprs["Error rate"]
    assert exprs["Feature drift (PSI, 1h)"] == [queries.feature_drift_psi(SCOPE)]
    assert exprs["Model version"] == [queries.model_versions(SCOPE)]
    assert queries.prediction_rate(scope=SCOPE) in exprs["Throughput"]
    for panel in panels(dashboard):
        assert panel.get("description"), panel["title"]
        if panel["type"] != "heatmap":
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]


def test_heatmap_uses_the_server_buckets(dashboard: dict) -> None:
    (heatmap,) = [p for p in panels(dashboard) if p["type"] == "heatmap"]
    (target,) = heatmap["targets"]
    assert target["expr"] == queries.prediction_heatmap(scope=SCOPE)
    assert target["format"] == "heatmap"
    assert target["legendFormat"] == "{{le}}"
    assert heatmap["options"]["calculate"] is False  # no re-bucketing in Grafana


def steps(panel: dict) -> list[float | None]:
    return [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


@pytest.mark.parametrize(
    ("title", "field", "value"),
    [
        ("Feature drift (PSI, 1h)", "feature_drift_psi_threshold", 0.4),
        ("Error rate", "error_rate_threshold", 0.1),
        (f"Latency {contract.PREDICT_HANDLER}", "latency_p95_seconds", 2.5),
    ],
)
def test_alert_thresholds_are_drawn(title: str, field: str, value: float) -> None:
    """The alert threshold is a visible line on the panel, and it follows the settings."""
    for settings in (AlertSettings(), AlertSettings(**{field: value})):
        (panel,) = [p for p in panels(build_dashboard(settings=settings)) if p["title"] == title]
        assert steps(panel) == [None, getattr(settings, field)]
        assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] in {"line", "dashed"}


@pytest.mark.parametrize("threshold", [0.25, 0.1])
def test_feature_samples_say_not_enough_data_where_noise_passes_the_threshold(threshold: float) -> None:
    """n beside the PSI: below the n where the 99.9% noise level (27.8772 / n) drops under the PSI
    threshold, the stat shows "not enough data" (orange), above it the count (green)."""
    dashboard = build_dashboard(settings=AlertSettings(feature_drift_psi_threshold=threshold))
    by_title = {p["title"]: p for p in dashboard["panels"]}
    panel = by_title["Feature samples (n, 1h)"]
    psi = by_title["Feature drift (PSI, 1h)"]
    assert (panel["gridPos"]["y"], panel["gridPos"]["x"]) == (psi["gridPos"]["y"], psi["gridPos"]["w"])
    assert [t["expr"] for t in panel["targets"]] == [queries.feature_samples(SCOPE)]
    enough = 27.8772 / threshold
    ((mapping),) = panel["fieldConfig"]["defaults"]["mappings"]
    assert mapping == {
        "type": "range",
        "options": {"from": 0, "to": enough, "result": {"text": "not enough data", "color": "orange"}},
    }
    assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"] == [
        {"value": None, "color": "orange"},
        {"value": enough, "color": "green"},
    ]


def test_error_rate_stat_turns_red_at_the_threshold(dashboard: dict) -> None:
    (panel,) = [p for p in panels(dashboard) if p["title"] == "5xx error rate"]
    assert panel["type"] == "stat"
    assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert steps(panel)[-1] == AlertSettings().error_rate_threshold
    assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["color"] == "red"


def test_json_is_deterministic_and_sorted() -> None:
    first, second = dashboard_json(), dashboard_json()
    assert first == second
    model = json.loads(first)
    assert first == json.dumps(model, sort_keys=True, indent=2) + "\n"
    assert model == build_dashboard()


def test_no_promql_outside_queries_module() -> None:
    """Panels and alerts import their PromQL: no metric name or PromQL function is spelled there."""
    import inspect

    from dashboards import alerts, dashboard, panels

    metric_names = [
        contract.REQUESTS_TOTAL,
        contract.REQUEST_DURATION,
        contract.PREDICTION_VALUE,
        contract.FEATURE_BIN_TOTAL,
        contract.MODEL_INFO,
    ]
    for module in (alerts, dashboard, panels):
        source = inspect.getsource(module)
        for name in metric_names:
            assert f'"{name}' not in source, (module.__name__, name)
        assert not re.search(r"\b(rate|increase|histogram_quantile|sum by)\s*\(", source), module.__name__
