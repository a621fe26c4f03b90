"""Alert and recording rules, defined once and rendered for Grafana (RuleGroup args) and Prometheus (YAML).

An alert is "query, comparison, threshold, for": Prometheus gets `query > threshold`, Grafana gets a
query node (instant, on the Prometheus data source), a reduce node (last value, NaN dropped) and a
threshold node. Annotations mention the value through `{value}`, filled in per engine.
"""

import enum
import json
from dataclasses import dataclass, replace

import yaml

from dashboards import noise, queries
from dashboards.settings import (
    DASHBOARD_UID,
    DEFAULT_SETTINGS,
    FEATURE_DRIFT_WINDOW_SECONDS,
    PREDICTION_SHIFT_WINDOW_SECONDS,
    RUNBOOKS_DASHBOARD_UID,
    SLO_WINDOWS_SECONDS,
    AlertSettings,
    promql_duration,
)
from server import contract

# Alert names (fixed: runbooks, notification routes and outside checks refer to them).
ALERT_SERVER_DOWN = "ModelServerDown"
ALERT_HIGH_ERROR_RATE = "ModelHighErrorRate"
ALERT_HIGH_LATENCY = "ModelHighLatency"
ALERT_PREDICTION_SHIFT = "PredictionDistributionShift"
ALERT_FEATURE_DRIFT = "FeatureDrift"
ALERT_AVAILABILITY_BURN = "ModelAvailabilityBudgetBurn"
ALERT_LATENCY_BURN = "ModelLatencyBudgetBurn"
ALERT_ENDPOINT_DOWN = "ModelEndpointDown"
# Every alert the project defines, in the order of the Runbooks dashboard's panels (panel id = index + 1),
# whichever of them a configuration turns on.
ALERT_NAMES = (
    ALERT_SERVER_DOWN,
    ALERT_HIGH_ERROR_RATE,
    ALERT_HIGH_LATENCY,
    ALERT_PREDICTION_SHIFT,
    ALERT_FEATURE_DRIFT,
    ALERT_AVAILABILITY_BURN,
    ALERT_LATENCY_BURN,
    ALERT_ENDPOINT_DOWN,
)
# The panel of the dashboard's "Gateway" row that ModelEndpointDown links to.
GATEWAY_BACKENDS_PANEL = "Replicas in the pool"

# Burn-rate tiers (factor, long window, short window; seconds), SRE workbook table 5-8: a page when 2% of
# a 30-day budget goes in an hour or 5% in six hours, a ticket when 10% goes in a day or 10% in three.
PAGE_TIERS = ((14.4, 3600, 300), (6.0, 21600, 1800))
TICKET_TIERS = ((3.0, 86400, 7200), (1.0, 259200, 21600))

GROUP_NAME = "model-monitoring"
RECORDING_GROUP_NAME = "model-monitoring-recording"
# Grafana evaluates every rule of the group this often (a multiple of 10 s, as Grafana requires).
GRAFANA_INTERVAL_SECONDS = 60
EXPRESSION_DATASOURCE_UID = "__expr__"
QUERY_REF, REDUCE_REF, THRESHOLD_REF = "A", "B", "C"
# No data means "nothing to judge" (no traffic yet, no 24h history): stay quiet. On a query error keep the
# last state, so Grafana starting before Prometheus does not fire, and a Prometheus blip does not resolve.
NO_DATA_STATE = "OK"
EXEC_ERR_STATE = "KeepLast"
# Panels of the dashboard's "SLOs" row that the burn-rate alerts link to.
AVAILABILITY_BURN_PANEL = "Availability burn rate"
LATENCY_BURN_PANEL = "Latency burn rate"


class Severity(enum.StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"


class Comparison(enum.StrEnum):
    """Grafana threshold evaluator types, with their PromQL operator."""

    GT = "gt"
    LT = "lt"

    @property
    def promql(self) -> str:
        return {Comparison.GT: ">", Comparison.LT: "<"}[self]


@dataclass(frozen=True)
class Alert:
    name: str
    query: str  # the part before the threshold; one series per alert instance
    comparison: Comparison
    threshold: float
    for_seconds: int
    severity: Severity | None  # None: the query labels each series with its severity
    summary: str
    description: str  # `{value}` marks where the evaluated value goes
    value_format: str  # Go template function applied to the value
    lookback_seconds: int  # how far back the query reads (Grafana relative time range)
    panel_title: str  # the panel of the main dashboard that shows the problem
    runbook_url: str = ""

    @property
    def labels(self) -> dict[str, str]:
        return {} if self.severity is None else {"severity": str(self.severity)}

    @property
    def promql(self) -> str:
        return f"{self.query} {self.comparison.promql} {self.threshold!r}"

    @property
    def for_duration(self) -> str:
        return promql_duration(self.for_seconds)

    def annotations(self, value_ref: str) -> dict[str, str]:
        value = f"{{{{ {value_ref} | {self.value_format} }}}}"
        return {
            "summary": self.summary,
            "description": self.description.replace("{value}", value),
            "runbook_url": self.runbook_url,
        }


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str


def runbook_url(name: str, settings: AlertSettings) -> str:
    """`<runbook_base_url>/<name>.md`, or the alert's panel of the Runbooks dashboard."""
    if settings.runbook_base_url:
        return f"{settings.runbook_base_url.rstrip('/')}/{name}.md"
    panel_id = ALERT_NAMES.index(name) + 1
    return f"{settings.grafana_url.rstrip('/')}/d/{RUNBOOKS_DASHBOARD_UID}?viewPanel={panel_id}"


def slo_budget(slo: float) -> float:
    """The error budget of an SLO target (0.999 -> 0.001), rounded so PromQL shows the plain number."""
    return round(1 - slo, 12)


def slo_tiers(settings: AlertSettings) -> dict[Severity, tuple[tuple[float, int, int], ...]]:
    """The burn-rate tiers with the windows this configuration runs (`slo_window_divisor`)."""
    scaled = {
        Severity.CRITICAL: PAGE_TIERS,
        Severity.WARNING: TICKET_TIERS,
    }
    return {
        severity: tuple(
            (f, settings.slo_window(long), settings.slo_window(short)) for f, long, short in tiers
        )
        for severity, tiers in scaled.items()
    }


def _burn_alert(name: str, sli: str, slo: float, settings: AlertSettings, what: str, panel: str) -> Alert:
    budget = slo_budget(slo)
    tiers_by_severity = slo_tiers(settings)
    branches = [
        queries.multiwindow_burn(sli, budget, tiers, str(severity))
        for severity, tiers in tiers_by_severity.items()
    ]
    rules = "; ".join(
        f"{severity}: "
        + " or ".join(
            f"{f:g}x over {promql_duration(long, days=True)} and {promql_duration(short, days=True)}"
            for f, long, short in tiers
        )
        for severity, tiers in tiers_by_severity.items()
    )
    return Alert(
        name=name,
        query=f"({' or '.join(branches)})",
        comparison=Comparison.GT,
        threshold=0.0,
        # The short window of each tier is the reset: the workbook's detection times assume no `for`.
        for_seconds=0,
        severity=None,
        summary=f"The {sli} error budget burns too fast ({{{{ $labels.severity }}}})",
        description=(
            f"{what} burn the {sli} error budget (SLO {slo:.4g}, budget {budget:.4g}) {{value}} times "
            f"faster than it lasts 30 days ({rules})."
        ),
        value_format='printf "%.1f"',
        lookback_seconds=600,
        panel_title=panel,
    )


def alert_definitions(settings: AlertSettings) -> list[Alert]:
    """Every alert this configuration turns on, in the stable order both engines get them, each with its
    runbook link."""
    definitions = _alert_definitions(settings)
    return [replace(a, runbook_url=runbook_url(a.name, settings)) for a in definitions]


def _alert_definitions(settings: AlertSettings) -> list[Alert]:
    rate_window = promql_duration(settings.rate_window_seconds)
    lookback = max(settings.rate_window_seconds, 600)
    slos = []
    if settings.availability_slo:
        slos.append(
            _burn_alert(
                ALERT_AVAILABILITY_BURN,
                queries.AVAILABILITY,
                settings.availability_slo,
                settings,
                "5xx answers of the model API",
                AVAILABILITY_BURN_PANEL,
            )
        )
    if settings.latency_slo:
        slos.append(
            _burn_alert(
                ALERT_LATENCY_BURN,
                queries.LATENCY,
                settings.latency_slo,
                settings,
                f"{contract.PREDICT_HANDLER} requests slower than {settings.latency_p95_seconds:g}s",
                LATENCY_BURN_PANEL,
            )
        )
    return [
        Alert(
            name=ALERT_SERVER_DOWN,
            query=queries.target_up(),
            comparison=Comparison.LT,
            threshold=1.0,
            for_seconds=settings.server_down_for_seconds,
            severity=Severity.CRITICAL,
            summary="Model server {{ $labels.instance }} is down",
            description=(
                f"Prometheus cannot scrape {{{{ $labels.instance }}}} (job {contract.JOB_NAME}); "
                f"it has been down for {promql_duration(settings.server_down_for_seconds)}."
            ),
            value_format='printf "%.0f"',
            lookback_seconds=600,
            panel_title="Replicas up",
        ),
        Alert(
            name=ALERT_HIGH_ERROR_RATE,
            query=queries.server_error_ratio(rate_window, per_replica=True),
            comparison=Comparison.GT,
            threshold=settings.error_rate_threshold,
            for_seconds=settings.error_rate_for_seconds,
            severity=Severity.CRITICAL,
            summary="Model server {{ $labels.instance }} answers too many requests with 5xx",
            description=(
                "{value} of the model API requests to replica {{ $labels.instance }} failed with a 5xx "
                f"status over the last {rate_window} (threshold {settings.error_rate_threshold:.2%}); "
                "4xx are excluded."
            ),
            value_format="humanizePercentage",
            lookback_seconds=lookback,
            panel_title="Error rate",
        ),
        Alert(
            name=ALERT_HIGH_LATENCY,
            query=queries.predict_latency_quantile(0.95, rate_window, per_replica=True),
            comparison=Comparison.GT,
            threshold=settings.latency_p95_seconds,
            for_seconds=settings.latency_for_seconds,
            severity=Severity.WARNING,
            summary=f"P95 latency of {contract.PREDICT_HANDLER} on {{{{ $labels.instance }}}} is high",
            description=(
                f"P95 latency of {contract.PREDICT_HANDLER} on replica {{{{ $labels.instance }}}} is "
                f"{{value}} over the last {rate_window} (threshold {settings.latency_p95_seconds}s)."
            ),
            value_format="humanizeDuration",
            lookback_seconds=lookback,
            panel_title=f"Latency {contract.PREDICT_HANDLER}",
        ),
        Alert(
            name=ALERT_PREDICTION_SHIFT,
            query=queries.prediction_shift(settings.prediction_shift_threshold),
            comparison=Comparison.GT,
            threshold=settings.prediction_shift_threshold,
            for_seconds=settings.prediction_shift_for_seconds,
            severity=Severity.WARNING,
            summary="Median prediction moved against the same hour yesterday",
            description=(
                "The median prediction of the last hour differs by {value} from the median 24h earlier "
                f"(threshold {settings.prediction_shift_threshold}; both hours hold at least "
                f"{noise.prediction_shift_min_count(settings.prediction_shift_threshold)} predictions)."
            ),
            value_format='printf "%.3f"',
            lookback_seconds=PREDICTION_SHIFT_WINDOW_SECONDS,
            panel_title="Median prediction (1h)",
        ),
        Alert(
            name=ALERT_FEATURE_DRIFT,
            query=queries.feature_drift_beyond_noise(),
            comparison=Comparison.GT,
            threshold=settings.feature_drift_psi_threshold,
            for_seconds=settings.feature_drift_for_seconds,
            severity=Severity.WARNING,
            summary="Feature {{ $labels.feature }} drifted from the training data",
            description=(
                "PSI of feature {{ $labels.feature }} over the last hour is {value} "
                f"(threshold {settings.feature_drift_psi_threshold}, and above the "
                f"{noise.NOISE_QUANTILE:.1%} noise level {noise.FEATURE_DRIFT_NOISE_CHI2:g}/n of the hour's "
                "n values; reference: training deciles)."
            ),
            value_format='printf "%.3f"',
            lookback_seconds=FEATURE_DRIFT_WINDOW_SECONDS,
            panel_title="Feature drift (PSI, 1h)",
        ),
        *slos,
        *_gateway_alerts(settings),
    ]


def _gateway_alerts(settings: AlertSettings) -> list[Alert]:
    if not settings.gateway:
        return []
    down_for = promql_duration(settings.server_down_for_seconds)
    return [
        Alert(
            name=ALERT_ENDPOINT_DOWN,
            query=queries.endpoint_up(),
            comparison=Comparison.LT,
            threshold=1.0,
            for_seconds=settings.server_down_for_seconds,
            severity=Severity.CRITICAL,
            summary="The model API is unreachable",
            description=(
                f"For {down_for} the gateway (job {contract.GATEWAY_JOB_NAME}) either did not answer "
                "Prometheus or had no healthy replica in its pool: clients get errors or nothing."
            ),
            value_format='printf "%.0f"',
            lookback_seconds=600,
            panel_title=GATEWAY_BACKENDS_PANEL,
        )
    ]


def slo_recording_rules(settings: AlertSettings) -> list[RecordingRule]:
    """The error ratio of every SLO that is on, over every SLO window (as Sloth and Pyrra record them)."""
    slis = [(queries.AVAILABILITY, settings.availability_slo), (queries.LATENCY, settings.latency_slo)]
    return [
        RecordingRule(
            queries.slo_error_ratio_record(sli, settings.slo_window(window)),
            queries.slo_error_ratio_expr(
                sli, promql_duration(settings.slo_window(window)), settings.latency_p95_seconds
            ),
        )
        for sli, slo in slis
        if slo
        for window in SLO_WINDOWS_SECONDS
    ]


def recording_rules(settings: AlertSettings = DEFAULT_SETTINGS) -> list[RecordingRule]:
    """Recording rules in evaluation order (later rules read earlier ones in the same evaluation)."""
    return [
        RecordingRule(queries.FEATURE_SAMPLES, queries.feature_samples_expr()),
        RecordingRule(queries.FEATURE_BIN_SHARE, queries.feature_bin_share_expr()),
        RecordingRule(queries.FEATURE_DRIFT_PSI, queries.feature_drift_psi_expr()),
        RecordingRule(queries.PREDICTION_SAMPLES, queries.prediction_samples_expr()),
        RecordingRule(queries.PREDICTION_MEDIAN, queries.prediction_median_expr()),
        *slo_recording_rules(settings),
    ]


# --- Grafana -----------------------------------------------------------------------------------------


def model_json(model: dict) -> str:
    """Serialize a rule model exactly as the Grafana provider stores it back (Go's encoding/json: sorted
    keys, no spaces, <>& escaped), so previews show no diff."""
    text = json.dumps(model, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _grafana_rule(alert: Alert, datasource_uid: str, panel_ids: dict[str, int]) -> dict:
    # Only fields Grafana keeps; intervalMs/maxDataPoints stay at their defaults (the provider drops them).
    query = {
        "editorMode": "code",
        "expr": alert.query,
        "instant": True,
        "range": False,
        "refId": QUERY_REF,
    }
    reduce = {
        "expression": QUERY_REF,
        "reducer": "last",
        "refId": REDUCE_REF,
        "settings": {"mode": "dropNN"},
        "type": "reduce",
    }
    threshold = {
        "conditions": [{"evaluator": {"params": [alert.threshold], "type": str(alert.comparison)}}],
        "expression": REDUCE_REF,
        "refId": THRESHOLD_REF,
        "type": "threshold",
    }
    expression_range = {"from_": 0, "to": 0}
    return {
        "name": alert.name,
        "condition": THRESHOLD_REF,
        "for_": alert.for_duration,
        "no_data_state": NO_DATA_STATE,
        "exec_err_state": EXEC_ERR_STATE,
        "labels": alert.labels,
        "annotations": {
            **alert.annotations(f"$values.{REDUCE_REF}.Value"),
            # Grafana's own link to the panel that shows the problem.
            "__dashboardUid__": DASHBOARD_UID,
            "__panelId__": str(panel_ids[alert.panel_title]),
        },
        "datas": [
            {
                "ref_id": QUERY_REF,
                "datasource_uid": datasource_uid,
                "relative_time_range": {"from_": alert.lookback_seconds, "to": 0},
                "model": model_json(query),
            },
            {
                "ref_id": REDUCE_REF,
                "datasource_uid": EXPRESSION_DATASOURCE_UID,
                "relative_time_range": dict(expression_range),
                "model": model_json(reduce),
            },
            {
                "ref_id": THRESHOLD_REF,
                "datasource_uid": EXPRESSION_DATASOURCE_UID,
                "relative_time_range": dict(expression_range),
                "model": model_json(threshold),
            },
        ],
    }


def grafana_rule_groups(datasource_uid: str, settings: AlertSettings) -> list[dict]:
    """Keyword arguments for `pulumiverse_grafana.alerting.RuleGroup`, minus `folder_uid` (and `org_id`).

    Plain data (no Pulumi calls): nested dicts use the Python names of RuleGroupRuleArgs,
    RuleGroupRuleDataArgs and RuleGroupRuleDataRelativeTimeRangeArgs.
    """
    # Imported here: the dashboard's panels name the alerts, so this module cannot import it at the top.
    from dashboards.dashboard import panel_ids

    ids = panel_ids(datasource_uid, settings)
    return [
        {
            "name": GROUP_NAME,
            "interval_seconds": GRAFANA_INTERVAL_SECONDS,
            "rules": [_grafana_rule(alert, datasource_uid, ids) for alert in alert_definitions(settings)],
        }
    ]


# --- Prometheus --------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style, with multi-line strings as literal blocks."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def _dump(document: dict) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000, default_flow_style=False)


def prometheus_recording_rules(settings: AlertSettings = DEFAULT_SETTINGS) -> dict:
    return {
        "groups": [
            {
                "name": RECORDING_GROUP_NAME,
                "rules": [{"record": r.record, "expr": r.expr} for r in recording_rules(settings)],
            }
        ]
    }


def prometheus_alert_rules(settings: AlertSettings) -> dict:
    return {
        "groups": [
            {
                "name": GROUP_NAME,
                "rules": [
                    {
                        "alert": alert.name,
                        "expr": alert.promql,
                        "for": alert.for_duration,
                        "labels": alert.labels,
                        "annotations": alert.annotations("$value"),
                    }
                    for alert in alert_definitions(settings)
                ],
            }
        ]
    }


def prometheus_rule_documents(settings: AlertSettings, alert_rules: bool = True) -> dict[str, dict]:
    """File name -> rule file document: the recording rules, and the same alerts Grafana gets unless
    `alert_rules` is False (Prometheus then only records what Grafana's panels and rules read)."""
    documents = {"recording-rules.yml": prometheus_recording_rules(settings)}
    if alert_rules:
        documents["alert-rules.yml"] = prometheus_alert_rules(settings)
    return documents


def prometheus_rule_files(settings: AlertSettings, alert_rules: bool = True) -> dict[str, str]:
    """File name -> Prometheus rule file YAML (the Docker target's Prometheus loads them)."""
    header = "# Generated by `python -m dashboards export`; do not edit.\n"
    return {
        name: header + _dump(doc) for name, doc in prometheus_rule_documents(settings, alert_rules).items()
    }


def prometheus_rule_groups(settings: AlertSettings, alert_rules: bool = True) -> list[dict]:
    """Every rule group of the rule files, in the order Prometheus loads them (file name order): the
    `spec.groups` of the kubernetes target's PrometheusRule (the operator turns them back into a file)."""
    documents = prometheus_rule_documents(settings, alert_rules)
    return [group for _, document in sorted(documents.items()) for group in document["groups"]]
