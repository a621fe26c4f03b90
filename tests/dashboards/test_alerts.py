"""Grafana RuleGroup arguments and Prometheus rule files: shape, consistency between the two engines, and
acceptance by the real pulumiverse_grafana argument classes."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from pulumiverse_grafana import alerting

from dashboards import alerts, queries
from dashboards.alerts import (
    EXPRESSION_DATASOURCE_UID,
    alert_definitions,
    grafana_rule_groups,
    prometheus_rule_files,
)
from dashboards.settings import DATASOURCE_UID, AlertSettings

ALERT_NAMES = [
    alerts.ALERT_SERVER_DOWN,
    alerts.ALERT_HIGH_ERROR_RATE,
    alerts.ALERT_HIGH_LATENCY,
    alerts.ALERT_PREDICTION_SHIFT,
    alerts.ALERT_FEATURE_DRIFT,
    alerts.ALERT_AVAILABILITY_BURN,
    alerts.ALERT_LATENCY_BURN,
]
SETTINGS = AlertSettings()
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd])", duration)
    assert match, duration
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def query_window_seconds(expr: str) -> int:
    """The longest range an expression reads: `[5m]` selectors and `:1h`-style recorded series."""
    windows = [seconds(w) for w in re.findall(r"\[(\d+[smhd])\]", expr)]
    windows += [seconds(w) for w in re.findall(r"\w:(\d+[smhd])\b", expr)]
    return max(windows, default=0)


@pytest.fixture(scope="module")
def groups() -> list[dict]:
    return grafana_rule_groups(DATASOURCE_UID, SETTINGS)


@pytest.fixture(scope="module")
def rules(groups: list[dict]) -> list[dict]:
    return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def prometheus_alerts() -> dict[str, dict]:
    doc = yaml.safe_load(prometheus_rule_files(SETTINGS)["alert-rules.yml"])
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def test_every_alert_once_in_a_stable_order(groups: list[dict], rules: list[dict]) -> None:
    assert [r["name"] for r in rules] == ALERT_NAMES
    assert grafana_rule_groups(DATASOURCE_UID, SETTINGS) == groups  # same input, same args
    for group in groups:
        assert group["name"]
        assert group["interval_seconds"] % 10 == 0
        assert group["interval_seconds"] > 0


def test_args_construct_the_real_provider_classes(groups: list[dict]) -> None:
    """Every key is an argument name of pulumiverse_grafana 2.44's input classes (no Pulumi engine)."""
    for group in groups:
        rule_args = []
        for rule in group["rules"]:
            datas = [
                alerting.RuleGroupRuleDataArgs(
                    **{
                        **data,
                        "relative_time_range": alerting.RuleGroupRuleDataRelativeTimeRangeArgs(
                            **data["relative_time_range"]
                        ),
                    }
                )
                for data in rule["datas"]
            ]
            rule_args.append(alerting.RuleGroupRuleArgs(**{**rule, "datas": datas}))
        args = alerting.RuleGroupArgs(folder_uid="folder", **{**group, "rules": rule_args})
        assert args.name == group["name"]
        assert [r.for_ for r in args.rules] == [r["for_"] for r in group["rules"]]
        assert args.rules[0].datas[0].relative_time_range.from_ > 0


def test_condition_names_an_existing_threshold_node(rules: list[dict]) -> None:
    for rule in rules:
        ref_ids = [d["ref_id"] for d in rule["datas"]]
        assert len(set(ref_ids)) == len(ref_ids)
        assert rule["condition"] in ref_ids
        condition = json.loads(next(d for d in rule["datas"] if d["ref_id"] == rule["condition"])["model"])
        assert condition["type"] == "threshold"
        # Every expression node reads a node defined before it.
        for index, data in enumerate(rule["datas"]):
            model = json.loads(data["model"])
            assert model["refId"] == data["ref_id"]
            if "expression" in model:
                assert model["expression"] in ref_ids[:index]


def test_query_and_expression_nodes(rules: list[dict]) -> None:
    definitions = {a.name: a for a in alert_definitions(SETTINGS)}
    for rule in rules:
        query, *expressions = rule["datas"]
        assert query["datasource_uid"] == DATASOURCE_UID
        model = json.loads(query["model"])
        assert model["expr"] == definitions[rule["name"]].query
        assert model["instant"] is True
        assert expressions
        for data in expressions:
            assert data["datasource_uid"] == EXPRESSION_DATASOURCE_UID
            assert json.loads(data["model"])["type"] in {"reduce", "threshold", "math"}


def test_models_are_canonical_json(rules: list[dict]) -> None:
    """Sorted keys, no spaces, no defaults Grafana would strip: what the provider reads back."""
    for rule in rules:
        for data in rule["datas"]:
            model = json.loads(data["model"])
            canonical = json.dumps(model, sort_keys=True, separators=(",", ":"))
            assert data["model"].replace("\\u003e", ">").replace("\\u003c", "<") == canonical
            assert "intervalMs" not in model
            assert "maxDataPoints" not in model


def test_relative_time_range_covers_the_query_window(rules: list[dict]) -> None:
    for rule in rules:
        query = rule["datas"][0]
        expr = json.loads(query["model"])["expr"]
        window = query_window_seconds(expr.split(" unless ")[0])
        assert query["relative_time_range"]["from_"] >= window, rule["name"]
        assert query["relative_time_range"]["to"] == 0


def test_thresholds_for_and_labels_match_the_definition(rules: list[dict], prometheus_alerts: dict) -> None:
    expected = {
        alerts.ALERT_SERVER_DOWN: ("lt", 1.0, "1m", "critical"),
        alerts.ALERT_HIGH_ERROR_RATE: ("gt", 0.05, "5m", "critical"),
        alerts.ALERT_HIGH_LATENCY: ("gt", 0.5, "5m", "warning"),
        alerts.ALERT_PREDICTION_SHIFT: ("gt", 0.15, "30m", "warning"),
        alerts.ALERT_FEATURE_DRIFT: ("gt", 0.25, "30m", "warning"),
        # Burn-rate alerts: the query labels each series critical or warning; no `for` (the workbook's).
        alerts.ALERT_AVAILABILITY_BURN: ("gt", 0.0, "0s", None),
        alerts.ALERT_LATENCY_BURN: ("gt", 0.0, "0s", None),
    }
    for rule in rules:
        comparison, threshold, for_, severity = expected[rule["name"]]
        evaluator = json.loads(rule["datas"][-1]["model"])["conditions"][0]["evaluator"]
        assert evaluator == {"params": [threshold], "type": comparison}
        assert rule["for_"] == for_
        assert rule["labels"] == ({"severity": severity} if severity else {})
        assert {"summary", "description"} <= rule["annotations"].keys()
        # The Prometheus rule is the same alert: same query, threshold, for and labels.
        prom = prometheus_alerts[rule["name"]]
        query = json.loads(rule["datas"][0]["model"])["expr"]
        assert prom["expr"] == f"{query} {'>' if comparison == 'gt' else '<'} {threshold!r}"
        assert prom["for"] == for_
        assert prom["labels"] == rule["labels"]
        assert prom["annotations"]["summary"] == rule["annotations"]["summary"]
        assert prom["annotations"]["runbook_url"] == rule["annotations"]["runbook_url"]


def test_burn_rate_queries_label_both_severities(rules: list[dict]) -> None:
    for rule in rules[-2:]:
        expr = json.loads(rule["datas"][0]["model"])["expr"]
        assert '"severity", "critical"' in expr
        assert '"severity", "warning"' in expr


def test_every_rule_links_its_runbook_and_its_panel(rules: list[dict]) -> None:
    from dashboards.dashboard import build_dashboard

    titles = {p["id"]: p["title"] for p in build_dashboard()["panels"]}
    shows = {
        alerts.ALERT_SERVER_DOWN: "Replicas up",
        alerts.ALERT_HIGH_ERROR_RATE: "Error rate",
        alerts.ALERT_HIGH_LATENCY: "Latency /predict",
        alerts.ALERT_PREDICTION_SHIFT: "Median prediction (1h)",
        alerts.ALERT_FEATURE_DRIFT: "Feature drift (PSI, 1h)",
        alerts.ALERT_AVAILABILITY_BURN: "Availability burn rate",
        alerts.ALERT_LATENCY_BURN: "Latency burn rate",
    }
    for index, rule in enumerate(rules, start=1):
        annotations = rule["annotations"]
        assert annotations["runbook_url"] == f"/d/model-monitoring-runbooks?viewPanel={index}"
        assert annotations["__dashboardUid__"] == "model-monitoring"
        assert titles[int(annotations["__panelId__"])] == shows[rule["name"]]


def test_runbook_links_follow_the_base_url_and_grafana_url() -> None:
    base = AlertSettings(runbook_base_url="https://git.example.com/repo/blob/main/docs/runbooks/")
    hosted = AlertSettings(grafana_url="http://127.0.0.1:3000")
    for alert in alert_definitions(base):
        assert alert.runbook_url == f"https://git.example.com/repo/blob/main/docs/runbooks/{alert.name}.md"
    urls = [a.runbook_url for a in alert_definitions(hosted)]
    assert urls[0] == "http://127.0.0.1:3000/d/model-monitoring-runbooks?viewPanel=1"
    with pytest.raises(ValueError, match="runbook_base_url"):
        AlertSettings(runbook_base_url="docs/runbooks")


def test_fresh_deploy_stays_quiet(rules: list[dict]) -> None:
    """No data (no traffic yet, no 24h history) is not an alert; a query error keeps the last state."""
    for rule in rules:
        # What README's "Grafana alert rules" section promises.
        assert rule["no_data_state"] == "OK"
        assert rule["exec_err_state"] == "KeepLast"
    shift = next(r for r in rules if r["name"] == alerts.ALERT_PREDICTION_SHIFT)
    assert "offset" in json.loads(shift["datas"][0]["model"])["expr"]
    assert "absent_over_time" in json.loads(shift["datas"][0]["model"])["expr"]


def test_settings_flow_into_both_engines() -> None:
    custom = AlertSettings(
        error_rate_threshold=0.2,
        latency_p95_seconds=1.0,
        prediction_shift_threshold=0.3,
        feature_drift_psi_threshold=0.5,
        error_rate_for_seconds=600,
        rate_window_seconds=120,
    )
    rules = {r["name"]: r for r in grafana_rule_groups("uid", custom)[0]["rules"]}
    prom = yaml.safe_load(prometheus_rule_files(custom)["alert-rules.yml"])["groups"][0]["rules"]
    prom = {r["alert"]: r for r in prom}
    for name, value in [
        (alerts.ALERT_HIGH_ERROR_RATE, 0.2),
        (alerts.ALERT_HIGH_LATENCY, 1.0),
        (alerts.ALERT_PREDICTION_SHIFT, 0.3),
        (alerts.ALERT_FEATURE_DRIFT, 0.5),
    ]:
        params = json.loads(rules[name]["datas"][-1]["model"])["conditions"][0]["evaluator"]["params"]
        assert params == [value]
        assert prom[name]["expr"].endswith(f"> {value!r}")
    assert rules[alerts.ALERT_HIGH_ERROR_RATE]["for_"] == "10m" == prom[alerts.ALERT_HIGH_ERROR_RATE]["for"]
    assert "[2m]" in prom[alerts.ALERT_HIGH_LATENCY]["expr"]
    assert {d["datasource_uid"] for r in rules.values() for d in r["datas"]} == {
        "uid",
        EXPRESSION_DATASOURCE_UID,
    }


def test_prometheus_rule_files_shape() -> None:
    files = prometheus_rule_files(SETTINGS)
    recording = yaml.safe_load(files["recording-rules.yml"])
    records = [r["record"] for g in recording["groups"] for r in g["rules"]]
    windows = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    slo_records = [f"model:{sli}_error_ratio:rate{w}" for sli in ("availability", "latency") for w in windows]
    assert records == [
        queries.FEATURE_SAMPLES,
        queries.FEATURE_BIN_SHARE,
        queries.FEATURE_DRIFT_PSI,
        queries.PREDICTION_SAMPLES,
        queries.PREDICTION_MEDIAN,
        *slo_records,
    ]
    alerts = yaml.safe_load(files["alert-rules.yml"])
    assert [r["alert"] for g in alerts["groups"] for r in g["rules"]] == ALERT_NAMES
    assert files == prometheus_rule_files(SETTINGS)
