"""The exported Prometheus rule files under `promtool check rules` and `promtool test rules`.

Every alert gets realistic input series and cases that must fire (with the labels and rendered
annotations it carries) and cases that must stay silent. The recording rules are checked numerically
against an independent PSI computation.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import yaml
from prometheus_client.utils import floatToGoString

from dashboards import alerts, queries
from dashboards.alerts import Alert, alert_definitions
from dashboards.export import export
from dashboards.settings import DEFAULT_SETTINGS, AlertSettings
from server import contract
from tests.support.psi import reference_psi

JOB = {"job": contract.JOB_NAME}
INSTANCE = "10.0.0.7:8000"
OTHER_INSTANCE = "10.0.0.8:8000"  # a second replica
PREDICT = {**JOB, "instance": INSTANCE, "handler": contract.PREDICT_HANDLER, "method": "POST"}
FEATURES = ("f0", "f1", "f2")
PREDICTION_BUCKETS = contract.PREDICTION_VALUE_BUCKETS
DAY = 24 * 60  # minutes


def rule_paths(out_dir: Path, settings: AlertSettings = DEFAULT_SETTINGS) -> list[Path]:
    return [p for p in export(out_dir, settings) if p.parent.name == "prometheus"]


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return rule_paths(tmp_path_factory.mktemp("export"))


# --- input series notation ---------------------------------------------------------------------------


def selector(name: str, labels: Mapping[str, str]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def counter(*segments: tuple[int, float]) -> str:
    """promtool values of a counter sampled every minute from t=0: each segment is (minutes, increase
    per minute), e.g. counter((60, 10), (30, 0)) = 60 minutes at 10/min, then 30 flat minutes."""
    (first_minutes, first_rate), *rest = segments
    parts = [f"0+{first_rate:g}x{first_minutes}"]
    value = first_minutes * first_rate
    for minutes, rate in rest:
        parts.append(f"{value + rate:g}+{rate:g}x{minutes - 1}")
        value += minutes * rate
    return " ".join(parts)


def histogram(
    name: str, labels: Mapping[str, str], bounds: Sequence[float], phases: Sequence[tuple[int, Mapping]]
) -> list[dict]:
    """Input series of a histogram: `phases` are (minutes, {bucket upper bound: observations per minute})."""
    out = []
    for le in [*bounds, math.inf]:
        segments = [(m, sum(n for upper, n in per_bucket.items() if upper <= le)) for m, per_bucket in phases]
        le_text = floatToGoString(le)  # as prometheus-client exposes it: "0.05", "1.0", "+Inf"
        out.append(
            {"series": selector(f"{name}_bucket", {**labels, "le": le_text}), "values": counter(*segments)}
        )
    total = [(m, sum(per_bucket.values())) for m, per_bucket in phases]
    out.append({"series": selector(f"{name}_count", labels), "values": counter(*total)})
    return out


def requests(
    status: str,
    phases: Sequence[tuple[int, float]],
    handler: str = contract.PREDICT_HANDLER,
    instance: str = INSTANCE,
) -> dict:
    labels = {**PREDICT, "instance": instance, "handler": handler, "status": status}
    if handler != contract.PREDICT_HANDLER:
        labels["method"] = "GET"
    return {"series": selector(contract.REQUESTS_TOTAL, labels), "values": counter(*phases)}


def feature_bins(feature: str, phases: Sequence[tuple[int, Sequence[float]]]) -> list[dict]:
    """Bin counters of one feature: phases are (minutes, per-bin values per minute, bins "0".."9")."""
    out = []
    for index, bin_label in enumerate(contract.FEATURE_BINS):
        labels = {**JOB, "instance": INSTANCE, "feature": feature, "bin": bin_label}
        segments = [(m, per_bin[index]) for m, per_bin in phases]
        out.append({"series": selector(contract.FEATURE_BIN_TOTAL, labels), "values": counter(*segments)})
    return out


UNIFORM = [6.0] * len(contract.FEATURE_BINS)  # 60 values a minute, the reference 10% per bin
# Half the bins at 15%, half at 5%: PSI = 5 * 0.05 * ln(1.5) + 5 * 0.05 * ln(2) = ln(3) / 4 ~ 0.275
# (0.274 over an hour of these counts, smoothed).
DRIFTED = [3.0] * 5 + [9.0] * 5
# 12% / 8%: PSI ~ 0.04, ordinary sampling noise.
NOISY = [4.8] * 5 + [7.2] * 5


# --- running promtool --------------------------------------------------------------------------------


def alert(name: str) -> Alert:
    return next(a for a in alert_definitions(DEFAULT_SETTINGS) if a.name == name)


# What each firing alert must say, rendered by Prometheus: written out here, not rebuilt from the alert's
# own templates, so a broken template or a wrong value format shows.
RENDERED = {
    alerts.ALERT_SERVER_DOWN: {
        "summary": f"Model server {INSTANCE} is down",
        "description": f"Prometheus cannot scrape {INSTANCE} (job model-server); it has been down for 1m.",
        "runbook_url": "/d/model-monitoring-runbooks?viewPanel=1",
    },
    alerts.ALERT_HIGH_ERROR_RATE: {
        "summary": f"Model server {INSTANCE} answers too many requests with 5xx",
        "description": f"10% of the model API requests to replica {INSTANCE} failed with a 5xx status over "
        "the last 5m (threshold 5.00%); 4xx are excluded.",
        "runbook_url": "/d/model-monitoring-runbooks?viewPanel=2",
    },
    alerts.ALERT_HIGH_LATENCY: {
        "summary": f"P95 latency of /predict on {INSTANCE} is high",
        "description": f"P95 latency of /predict on replica {INSTANCE} is 875ms over the last 5m "
        "(threshold 0.5s).",
        "runbook_url": "/d/model-monitoring-runbooks?viewPanel=3",
    },
    alerts.ALERT_PREDICTION_SHIFT: {
        "summary": "Median prediction moved against the same hour yesterday",
        "description": "The median prediction of the last hour differs by 0.350 from the median 24h earlier "
        "(threshold 0.15; both hours hold at least 241 predictions).",
        "runbook_url": "/d/model-monitoring-runbooks?viewPanel=4",
    },
    alerts.ALERT_FEATURE_DRIFT: {
        "summary": "Feature f0 drifted from the training data",
        "description": "PSI of feature f0 over the last hour is 0.274 (threshold 0.25, and above the 99.9% "
        "noise level 27.8772/n of the hour's n values; reference: training deciles).",
        "runbook_url": "/d/model-monitoring-runbooks?viewPanel=5",
    },
}


ON_INSTANCE = {"instance": INSTANCE}  # the labels of an alert that names its replica


def expected(name: str, labels: Mapping[str, str] = {}) -> dict:
    """exp_alerts entry: the alert's severity plus `labels`, and its annotations as RENDERED says."""
    return {
        "exp_labels": {"severity": str(alert(name).severity), **labels},
        "exp_annotations": RENDERED[name],
    }


def run_unit_tests(
    promtool: str,
    rule_files: Sequence[Path],
    tmp_path: Path,
    groups: list[dict],
    evaluation_interval: str = "1m",
) -> None:
    for group in groups:
        group.setdefault("interval", "1m")  # promtool 2.42 needs it per group
    suite = {
        "rule_files": [str(p) for p in rule_files],
        "evaluation_interval": evaluation_interval,
        # The alerts read recording rules: record first, as a steady Prometheus does between evaluations.
        "group_eval_order": [alerts.RECORDING_GROUP_NAME, alerts.GROUP_NAME],
        "tests": groups,
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False, width=1000))
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"promtool test rules failed:\n{result.stdout}\n{result.stderr}"
    assert "SUCCESS" in result.stdout


def silent(name: str, *eval_minutes: int) -> list[dict]:
    return [{"eval_time": f"{m}m", "alertname": name, "exp_alerts": []} for m in eval_minutes]


# --- tests -------------------------------------------------------------------------------------------


def test_promtool_check_rules(promtool: str, rules: list[Path]) -> None:
    result = subprocess.run([promtool, "check", "rules", *map(str, rules)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p.name for p in rules} == {"recording-rules.yml", "alert-rules.yml"}
    # Recording rules: drift (samples, shares, PSI), predictions (samples, median), 2 SLOs x 7 windows.
    assert "SUCCESS: 19 rules found" in result.stdout
    assert "SUCCESS: 7 rules found" in result.stdout  # alerts


def test_server_down(promtool: str, rules: list[Path], tmp_path: Path) -> None:
    name = alerts.ALERT_SERVER_DOWN
    up = selector("up", {**JOB, "instance": INSTANCE})
    other = selector("up", {**JOB, "instance": "10.0.0.8:8000"})
    run_unit_tests(
        promtool,
        rules,
        tmp_path,
        [
            {  # one replica stops answering scrapes at 5m; the other stays up
                "input_series": [{"series": up, "values": "1x4 0x20"}, {"series": other, "values": "1x25"}],
                "alert_rule_test": [
                    *silent(name, 4, 5),  # down for less than 1m: pending at most
                    {
                        "eval_time": "8m",
                        "alertname": name,
                        "exp_alerts": [expected(name, {**JOB, "instance": INSTANCE})],
                    },
                ],
            },
            {  # healthy, and a single failed scrape (shorter than `for`)
                "input_series": [
                    {"series": up, "values": "1x10 0 1x10"},
                    {"series": other, "values": "1x21"},
                ],
                "alert_rule_test": silent(name, 5, 11, 12, 15),
            },
        ],
    )


def test_high_error_rate(promtool: str, rules: list[Path], tmp_path: Path) -> None:
    name = alerts.ALERT_HIGH_ERROR_RATE
    minutes = 30
    # Prometheus' scrapes and the health probes: if they were counted, the 5xx share below would be
    # exactly 5% (no alert).
    scrapes = [
        requests("200", [(minutes, 200)], handler=path)
        for path in (contract.METRICS_PATH, contract.HEALTH_PATH, contract.READY_PATH)
    ]
    run_unit_tests(
        promtool,
        rules,
        tmp_path,
        [
            {  # 10% of /predict requests fail with 500
                "input_series": [
                    requests("200", [(minutes, 540)]),
                    requests("500", [(minutes, 60)]),
                    *scrapes,
                ],
                "alert_rule_test": [
                    *silent(name, 4),  # pending: the condition has not held for 5m yet
                    {"eval_time": "15m", "alertname": name, "exp_alerts": [expected(name, ON_INSTANCE)]},
                ],
            },
            {  # two replicas: one fails 10% of its requests, the other (4x the traffic) none; together
                # 2%, below the threshold, but the alert names the failing replica, and only that one
                "input_series": [
                    requests("200", [(minutes, 540)]),
                    requests("500", [(minutes, 60)]),
                    requests("200", [(minutes, 2400)], instance=OTHER_INSTANCE),
                    *scrapes,
                ],
                "alert_rule_test": [
                    *silent(name, 4),
                    {"eval_time": "15m", "alertname": name, "exp_alerts": [expected(name, ON_INSTANCE)]},
                ],
            },
            {  # steady healthy traffic: no 5xx series exists at all
                "input_series": [requests("200", [(minutes, 600)]), *scrapes],
                "alert_rule_test": silent(name, 5, 15, 29),
            },
            {  # a burst of 4xx (bad client input) is the client's fault
                "input_series": [
                    requests("200", [(minutes, 300)]),
                    requests("422", [(5, 0), (20, 300), (5, 0)]),
                    requests("413", [(5, 0), (20, 60), (5, 0)]),
                ],
                "alert_rule_test": silent(name, 10, 20, 29),
            },
            {  # 2% 5xx stays under the 5% threshold
                "input_series": [requests("200", [(minutes, 588)]), requests("503", [(minutes, 12)])],
                "alert_rule_test": silent(name, 10, 20, 29),
            },
        ],
    )


def test_error_rate_threshold_comes_from_settings(promtool: str, tmp_path: Path) -> None:
    """The same 10% 5xx traffic is silent once the threshold is raised to 20%."""
    raised = rule_paths(tmp_path / "export", AlertSettings(error_rate_threshold=0.2))
    group = {
        "input_series": [requests("200", [(30, 540)]), requests("500", [(30, 60)])],
        "alert_rule_test": silent(alerts.ALERT_HIGH_ERROR_RATE, 15, 25),
    }
    run_unit_tests(promtool, raised, tmp_path, [group])


def latency(
    phases: Sequence[tuple[int, Mapping]],
    handler: str = contract.PREDICT_HANDLER,
    instance: str = INSTANCE,
) -> list[dict]:
    labels = {**PREDICT, "instance": instance, "handler": handler}
    return histogram(contract.REQUEST_DURATION, labels, contract.REQUEST_DURATION_BUCKETS, phases)


def test_high_latency(promtool: str, rules: list[Path], tmp_path: Path) -> None:
    name = alerts.ALERT_HIGH_LATENCY
    fast = {0.05: 300, 0.075: 240, 0.1: 60}  # everything under 100 ms
    # 10% of requests take 0.75-1 s: P95 = 0.75 + 0.25 * (0.95 - 0.9) / 0.1 = 0.875 s.
    slow = {0.075: 540, 1.0: 60}
    run_unit_tests(
        promtool,
        rules,
        tmp_path,
        [
            {
                "input_series": latency([(10, fast), (30, slow)]),
                "alert_rule_test": [
                    *silent(name, 10, 14),
                    {"eval_time": "30m", "alertname": name, "exp_alerts": [expected(name, ON_INSTANCE)]},
                ],
            },
            {  # two replicas: one slow as above, the other fast with 4x the traffic (2% slow together,
                # P95 under 0.1 s); the alert names the slow replica, and only that one
                "input_series": [
                    *latency([(10, fast), (30, slow)]),
                    *latency([(40, {le: 4 * n for le, n in fast.items()})], instance=OTHER_INSTANCE),
                ],
                "alert_rule_test": [
                    *silent(name, 14),
                    {"eval_time": "30m", "alertname": name, "exp_alerts": [expected(name, ON_INSTANCE)]},
                ],
            },
            {  # healthy /predict; slow requests on another handler do not count
                "input_series": [*latency([(40, fast)]), *latency([(40, slow)], handler="/health")],
                "alert_rule_test": silent(name, 10, 30, 39),
            },
        ],
    )


def predictions(phases: Sequence[tuple[int, Mapping]]) -> list[dict]:
    labels = {**JOB, "instance": INSTANCE}
    return histogram(contract.PREDICTION_VALUE, labels, PREDICTION_BUCKETS, phases)


# 60 predictions a minute in one bucket: the median is the bucket's midpoint.
AROUND_0_275 = {0.3: 60}  # (0.25, 0.3]
AROUND_0_325 = {0.35: 60}  # (0.3, 0.35]: a small wobble of 0.05
AROUND_0_625 = {0.65: 60}  # (0.6, 0.65]: a shift of 0.35


def test_prediction_shift(promtool: str, rules: list[Path], tmp_path: Path) -> None:
    name = alerts.ALERT_PREDICTION_SHIFT
    run_unit_tests(
        promtool,
        rules,
        tmp_path,
        [
            {  # a day of normal predictions, then the median jumps from 0.275 to 0.625
                "input_series": predictions([(DAY + 60, AROUND_0_275), (120, AROUND_0_625)]),
                "alert_rule_test": [
                    *silent(name, DAY + 50),
                    {
                        "eval_time": f"{DAY + 150}m",
                        "alertname": name,
                        "exp_alerts": [expected(name)],
                    },
                ],
            },
            {  # fresh deploy: the same jump within the first hours, no data 24h back
                "input_series": predictions([(60, AROUND_0_275), (180, AROUND_0_625)]),
                "alert_rule_test": silent(name, 90, 150, 239),
            },
            {  # less than 25h of history: the reference hour is only partly covered, the gate holds
                "input_series": predictions([(DAY - 60, AROUND_0_275), (110, AROUND_0_625)]),
                "alert_rule_test": silent(name, DAY + 40),
            },
            {  # a small wobble of the median (0.05) after a normal day
                "input_series": predictions([(DAY + 60, AROUND_0_275), (120, AROUND_0_325)]),
                "alert_rule_test": silent(name, DAY + 100, DAY + 170),
            },
        ],
    )


def test_feature_drift(promtool: str, rules: list[Path], tmp_path: Path) -> None:
    name = alerts.ALERT_FEATURE_DRIFT
    run_unit_tests(
        promtool,
        rules,
        tmp_path,
        [
            {  # f0 drifts after an hour of normal traffic; f1, f2 stay normal
                "input_series": [
                    *feature_bins("f0", [(60, UNIFORM), (180, DRIFTED)]),
                    *feature_bins("f1", [(240, UNIFORM)]),
                    *feature_bins("f2", [(240, UNIFORM)]),
                ],
                "alert_rule_test": [
                    *silent(name, 50, 100),  # PSI not yet above 0.25 for 30m
                    {
                        "eval_time": "200m",
                        "alertname": name,
                        "exp_alerts": [expected(name, {"feature": "f0"})],
                    },
                ],
            },
            {  # sampling noise (PSI ~0.04) on every feature, then the server goes idle (n = 0: PSI 0)
                "input_series": [
                    *(b for f in FEATURES for b in feature_bins(f, [(120, NOISY), (120, [0] * 10)]))
                ],
                "alert_rule_test": silent(name, 60, 119, 200, 239),
            },
        ],
    )


def close_to(expr: str, value: float, labels: str = "{}") -> dict:
    """promql_expr_test entry at 90m: `expr` is one series with `labels`, equal to `value` within 1e-9."""
    return {
        "eval_time": "90m",
        "expr": f"abs({expr} - {value!r}) < bool 1e-9",
        "exp_samples": [{"labels": labels, "value": 1}],
    }


def test_recording_rules_compute_psi_and_median(promtool: str, rules: list[Path], tmp_path: Path) -> None:
    # The 1h window at 90m holds 60 minutes of each per-minute count. f2 only ever sees bin 0: nine
    # empty bins get the pseudo-count, so PSI stays finite.
    one_bin = [60.0] + [0.0] * 9
    hour = {"f0": DRIFTED, "f1": UNIFORM, "f2": one_bin}
    psi = {feature: reference_psi([60 * c for c in per_minute]) for feature, per_minute in hour.items()}
    assert math.isclose(psi["f0"], math.log(3) / 4, rel_tol=0.01)  # the smoothing barely moves 3600 values
    assert psi["f1"] == 0
    checks = [
        close_to(f'{queries.FEATURE_DRIFT_PSI}{{feature="{feature}"}}', value, f'{{feature="{feature}"}}')
        for feature, value in psi.items()
    ]
    checks += [
        close_to(f'{queries.FEATURE_SAMPLES}{{feature="{feature}"}}', 3600, f'{{feature="{feature}"}}')
        for feature in hour
    ]
    checks.append(close_to(queries.PREDICTION_MEDIAN, 0.275))
    checks.append(close_to(queries.PREDICTION_SAMPLES, 3600))
    # The (smoothed) bin shares of a feature sum to 1; an empty bin's share is 0.5 / (3600 + 5).
    checks.append(close_to(f'sum({queries.FEATURE_BIN_SHARE}{{feature="f1"}})', 1))
    checks.append(
        close_to(f'{queries.FEATURE_BIN_SHARE}{{feature="f2",bin="9"}}', 0.5 / 3605, '{bin="9",feature="f2"}')
    )
    group = {
        "input_series": [
            *feature_bins("f0", [(120, DRIFTED)]),
            *feature_bins("f1", [(120, UNIFORM)]),
            *feature_bins("f2", [(120, one_bin)]),
            *predictions([(120, AROUND_0_275)]),
        ],
        "promql_expr_test": checks,
    }
    run_unit_tests(promtool, rules, tmp_path, [group])


# --- the gateway (Docker target) ---------------------------------------------------------------------

GATEWAY = {"job": contract.GATEWAY_JOB_NAME, "instance": f"gateway:{contract.GATEWAY_METRICS_PORT}"}


def test_endpoint_down(promtool: str, tmp_path: Path) -> None:
    """ModelEndpointDown: fires when the gateway stops answering or has no healthy replica for 1m; silent
    while one replica is left, on a blip shorter than `for`, and where no gateway runs at all."""
    name = alerts.ALERT_ENDPOINT_DOWN
    rules = rule_paths(tmp_path / "export", AlertSettings(gateway=True))
    up = selector("up", GATEWAY)
    pool = selector("haproxy_backend_active_servers", {**GATEWAY, "proxy": contract.GATEWAY_BACKEND})
    firing = {
        "exp_labels": {"severity": "critical"},
        "exp_annotations": {
            "summary": "The model API is unreachable",
            "description": "For 1m the gateway (job model-gateway) either did not answer Prometheus or had "
            "no healthy replica in its pool: clients get errors or nothing.",
            "runbook_url": "/d/model-monitoring-runbooks?viewPanel=8",
        },
    }
    run_unit_tests(
        promtool,
        rules,
        tmp_path,
        [
            {  # both replicas fail their health checks from 5m on; the gateway itself answers
                "input_series": [{"series": up, "values": "1x20"}, {"series": pool, "values": "2x4 0x16"}],
                "alert_rule_test": [
                    *silent(name, 4, 5),
                    {"eval_time": "8m", "alertname": name, "exp_alerts": [firing]},
                ],
            },
            {  # the gateway stops answering Prometheus at 5m (its series go stale with it)
                "input_series": [
                    {"series": up, "values": "1x4 0x16"},
                    {"series": pool, "values": "2x4 _x16"},
                ],
                "alert_rule_test": [
                    *silent(name, 4),
                    {"eval_time": "12m", "alertname": name, "exp_alerts": [firing]},
                ],
            },
            {  # one replica down for good, another blip of the whole pool shorter than `for`
                "input_series": [
                    {"series": up, "values": "1x20"},
                    {"series": pool, "values": "2x4 1x5 0 1x9"},
                ],
                "alert_rule_test": silent(name, 3, 8, 11, 12, 18),
            },
            {  # no gateway at all (Kubernetes, or before the first scrape): nothing to say
                "input_series": [{"series": selector("up", {**JOB, "instance": INSTANCE}), "values": "1x20"}],
                "alert_rule_test": silent(name, 5, 15),
            },
        ],
    )
    assert name not in {a.name for a in alert_definitions(DEFAULT_SETTINGS)}  # only with a gateway
