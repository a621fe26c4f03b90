"""One small function per dashboard panel, each returning a grafana-foundation-sdk builder.

Every query comes from `dashboards.queries`, in the scope of the dashboard's `instance` and `version`
variables (`queries.DASHBOARD`); every panel, target and variable names the Prometheus data source by its
fixed UID. Alert thresholds are drawn on the panels that show the alerted value.
"""

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, timeseries
from grafana_foundation_sdk.models import common, units
from grafana_foundation_sdk.models import heatmap as heatmap_models
from grafana_foundation_sdk.models.dashboard import (
    DashboardRangeMapOptions,
    DataSourceRef,
    RangeMap,
    Threshold,
    ThresholdsMode,
    ValueMappingResult,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat, QueryEditorMode

from dashboards import alerts, noise, queries
from dashboards.settings import SLO_WINDOWS_SECONDS, AlertSettings, promql_duration
from server import contract

PROMETHEUS_TYPE = "prometheus"
GREEN, ORANGE, RED = "green", "orange", "red"
SCOPE = queries.DASHBOARD
# Grafana's own value for a variable's "All" option (substituted with the variable's allValue).
ALL_OPTION = "$__all"


def datasource(datasource_uid: str) -> DataSourceRef:
    return DataSourceRef(type_val=PROMETHEUS_TYPE, uid=datasource_uid)


def target(datasource_uid: str, expr: str, legend: str, ref_id: str = "A") -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .datasource(datasource(datasource_uid))
        .editor_mode(QueryEditorMode.CODE)
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref_id)
    )


# --- variables ---------------------------------------------------------------------------------------


def _query_variable(datasource_uid: str, name: str, label: str, description: str, query: str):
    """A multi-value query variable over the data source, "All" (= queries.ALL_VALUE) by default."""
    return (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(datasource(datasource_uid))
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.NATURAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(queries.ALL_VALUE)
        .current(VariableOption(selected=True, text=["All"], value=[ALL_OPTION]))
    )


def version_variable(datasource_uid: str) -> dashboard_builders.QueryVariable:
    return _query_variable(
        datasource_uid,
        queries.VERSION_VARIABLE,
        "Model version",
        f"Model versions the replicas report ({contract.MODEL_INFO}); every panel shows the replicas serving "
        "the selected versions.",
        queries.version_values(),
    )


def instance_variable(datasource_uid: str) -> dashboard_builders.QueryVariable:
    return _query_variable(
        datasource_uid,
        queries.INSTANCE_VARIABLE,
        "Replica",
        f"Scrape targets of job {contract.JOB_NAME}, up or down; every panel shows the selected replicas.",
        queries.instance_values(),
    )


# --- panel helpers -----------------------------------------------------------------------------------


def _thresholds(*steps: tuple[float | None, str]) -> dashboard_builders.ThresholdsConfig:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def _with_alert_line(panel: timeseries.Panel, threshold: float) -> timeseries.Panel:
    """Draw the alert threshold as a dashed line: green below, red from the threshold on."""
    return panel.thresholds(_thresholds((None, GREEN), (threshold, RED))).thresholds_style(
        common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
    )


def _timeseries(datasource_uid: str, title: str, description: str, unit: str) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource(datasource_uid))
        .unit(unit)
        .height(8)
        .span(12)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
    )


def _stat(datasource_uid: str, title: str, description: str, unit: str) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(datasource(datasource_uid))
        .unit(unit)
        .height(5)
        .span(6)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


# --- overview ----------------------------------------------------------------------------------------


def model_version_panel(datasource_uid: str) -> stat.Panel:
    return (
        _stat(
            datasource_uid,
            "Model version",
            f"Replicas per model/version ({contract.MODEL_INFO}).",
            units.NoUnit,
        )
        .with_target(
            target(datasource_uid, queries.model_versions(scope=SCOPE), "{{model}} v{{version}}").instant()
        )
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .color_mode(common.BigValueColorMode.NONE)
        .graph_mode(common.BigValueGraphMode.NONE)
    )


def replicas_up_panel(datasource_uid: str) -> stat.Panel:
    return (
        _stat(
            datasource_uid,
            "Replicas up",
            f"Replicas answering scrapes (job {contract.JOB_NAME}).",
            units.NoUnit,
        )
        .with_target(target(datasource_uid, queries.replicas_up(scope=SCOPE), "up"))
        .thresholds(_thresholds((None, RED), (1, GREEN)))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
    )


def predictions_per_second_panel(datasource_uid: str) -> stat.Panel:
    return (
        _stat(
            datasource_uid,
            "Predictions / s",
            "Predictions per second, batch items included.",
            units.OpsPerSecond,
        )
        .with_target(target(datasource_uid, queries.prediction_rate(scope=SCOPE), "predictions/s"))
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.NONE)
    )


def error_rate_stat_panel(datasource_uid: str, settings: AlertSettings) -> stat.Panel:
    threshold = settings.error_rate_threshold
    return (
        _stat(
            datasource_uid,
            "5xx error rate",
            "Share of model API requests answered with a server error (5xx); turns red at the "
            f"{alerts.ALERT_HIGH_ERROR_RATE} threshold. 4xx (bad input) are excluded.",
            units.PercentUnit,
        )
        .with_target(target(datasource_uid, queries.server_error_ratio(scope=SCOPE), "5xx"))
        .thresholds(_thresholds((None, GREEN), (threshold / 2, ORANGE), (threshold, RED)))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .decimals(2)
    )


# --- traffic -----------------------------------------------------------------------------------------


def request_rate_by_status_panel(datasource_uid: str) -> timeseries.Panel:
    return _timeseries(
        datasource_uid,
        "Request rate by status",
        "Model API requests per second by HTTP status code, all handlers and replicas (Prometheus' own "
        "scrapes excluded).",
        units.RequestsPerSecond,
    ).with_target(target(datasource_uid, queries.request_rate_by_status(scope=SCOPE), "{{status}}"))


def throughput_panel(datasource_uid: str) -> timeseries.Panel:
    return (
        _timeseries(
            datasource_uid,
            "Throughput",
            f"{contract.PREDICT_HANDLER} requests per second (a batch counts once) and predictions "
            "per second (every batch item counts).",
            units.OpsPerSecond,
        )
        .with_target(target(datasource_uid, queries.predict_request_rate(scope=SCOPE), "requests/s", "A"))
        .with_target(target(datasource_uid, queries.prediction_rate(scope=SCOPE), "predictions/s", "B"))
    )


def error_rate_panel(datasource_uid: str, settings: AlertSettings) -> timeseries.Panel:
    panel = (
        _timeseries(
            datasource_uid,
            "Error rate",
            "Share of model API requests failing with 5xx (alerted at the dashed line) and rejected with 4xx "
            "(client errors, shown for context, never alerted on).",
            units.PercentUnit,
        )
        .with_target(target(datasource_uid, queries.server_error_ratio(scope=SCOPE), "5xx", "A"))
        .with_target(target(datasource_uid, queries.client_error_ratio(scope=SCOPE), "4xx", "B"))
        .min(0)
        .span(24)
    )
    return _with_alert_line(panel, settings.error_rate_threshold)


# --- latency -----------------------------------------------------------------------------------------


def latency_panel(datasource_uid: str, settings: AlertSettings) -> timeseries.Panel:
    panel = _timeseries(
        datasource_uid,
        f"Latency {contract.PREDICT_HANDLER}",
        f"P50/P95/P99 latency of {contract.PREDICT_HANDLER} across replicas; the dashed line is the "
        f"{alerts.ALERT_HIGH_LATENCY} threshold on P95.",
        units.Seconds,
    ).span(24)
    for ref_id, quantile in zip("ABC", (0.5, 0.95, 0.99), strict=True):
        legend = f"p{round(quantile * 100)}"
        panel = panel.with_target(
            target(datasource_uid, queries.predict_latency_quantile(quantile, scope=SCOPE), legend, ref_id)
        )
    return _with_alert_line(panel.min(0), settings.latency_p95_seconds)


# --- predictions -------------------------------------------------------------------------------------


def prediction_heatmap_panel(datasource_uid: str) -> heatmap.Panel:
    return (
        heatmap.Panel()
        .title("Prediction distribution")
        .description(
            "How many predictions fell in each probability bucket per interval; the buckets come from the "
            "server's histogram (no re-bucketing)."
        )
        .datasource(datasource(datasource_uid))
        .height(8)
        .span(12)
        .with_target(
            target(datasource_uid, queries.prediction_heatmap(scope=SCOPE), "{{le}}").format(
                PromQueryFormat.HEATMAP
            )
        )
        .calculate(False)
        .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.LE))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_models.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .fill("dark-orange")
            .scale(heatmap_models.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
        )
        .y_axis(heatmap.YAxisConfig().unit(units.NoUnit).decimals(2))
        .cell_values(heatmap.CellValues().unit(units.Short))
        .show_legend()
    )


def prediction_median_panel(datasource_uid: str, settings: AlertSettings) -> timeseries.Panel:
    return (
        _timeseries(
            datasource_uid,
            "Median prediction (1h)",
            "Median prediction over the last hour of the selected replicas (on All: what "
            f"{queries.PREDICTION_MEDIAN} records). "
            f"{alerts.ALERT_PREDICTION_SHIFT} fires when it moves more than "
            f"{settings.prediction_shift_threshold} from the same value 24h earlier.",
            units.NoUnit,
        )
        .with_target(target(datasource_uid, queries.prediction_median_expr(SCOPE), "median"))
        .min(0)
        .max(1)
    )


# --- drift -------------------------------------------------------------------------------------------


def feature_drift_panel(datasource_uid: str, settings: AlertSettings) -> timeseries.Panel:
    panel = (
        _timeseries(
            datasource_uid,
            "Feature drift (PSI, 1h)",
            "Population stability index of each feature's last-hour distribution against the training "
            f"deciles; {alerts.ALERT_FEATURE_DRIFT} fires above the dashed line for "
            f"{promql_duration(settings.feature_drift_for_seconds)}. Rule of thumb: < 0.1 stable, "
            "0.1-0.25 watch, > 0.25 significant. With few values an hour the PSI is mostly noise: the "
            "alert also needs it above what noise reaches at the hour's n (see Feature samples).",
            units.NoUnit,
        )
        .with_target(target(datasource_uid, queries.feature_drift_psi(SCOPE), "{{feature}}"))
        .min(0)
        .span(16)
    )
    return _with_alert_line(panel, settings.feature_drift_psi_threshold)


def feature_samples_panel(datasource_uid: str, settings: AlertSettings) -> stat.Panel:
    """n per feature beside the PSI: "not enough data" while noise alone can pass the PSI threshold."""
    threshold = settings.feature_drift_psi_threshold
    enough = noise.FEATURE_DRIFT_NOISE_CHI2 / threshold
    not_enough = ValueMappingResult(text="not enough data", color=ORANGE)
    return (
        _stat(
            datasource_uid,
            "Feature samples (n, 1h)",
            "Values of each feature in the last hour: the n of its PSI. Sampling noise alone keeps an "
            f"undrifted PSI under {noise.FEATURE_DRIFT_NOISE_CHI2:g}/n in {noise.NOISE_QUANTILE:.1%} of "
            f"hours, which is above the threshold {threshold:g} below "
            f'{noise.feature_drift_min_samples(threshold)} values: "not enough data" there, and '
            f"{alerts.ALERT_FEATURE_DRIFT} needs the PSI above {noise.FEATURE_DRIFT_NOISE_CHI2:g}/n too.",
            units.NoUnit,
        )
        .with_target(target(datasource_uid, queries.feature_samples(SCOPE), "{{feature}}").instant())
        .mappings([RangeMap(DashboardRangeMapOptions(from_val=0, to=enough, result=not_enough))])
        .thresholds(_thresholds((None, ORANGE), (enough, GREEN)))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .decimals(0)
        .height(8)
        .span(8)
    )


# --- SLOs --------------------------------------------------------------------------------------------


def _slos(settings: AlertSettings) -> list[tuple[str, float]]:
    """(SLI, SLO target) of every SLO that is on."""
    slos = [(queries.AVAILABILITY, settings.availability_slo), (queries.LATENCY, settings.latency_slo)]
    return [(sli, slo) for sli, slo in slos if slo]


def _sli_meaning(sli: str, settings: AlertSettings) -> str:
    if sli == queries.AVAILABILITY:
        return "model API requests not answered with 5xx"
    return f"{contract.PREDICT_HANDLER} requests faster than {settings.latency_p95_seconds:g}s"


def error_budget_panel(datasource_uid: str, settings: AlertSettings) -> stat.Panel:
    panel = (
        _stat(
            datasource_uid,
            "Error budget remaining (30d)",
            "Share of each SLO's 30-day error budget (1 - SLO) not yet spent; below 0 the SLO is missed.",
            units.PercentUnit,
        )
        .thresholds(_thresholds((None, RED), (0, ORANGE), (0.25, GREEN)))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .decimals(1)
        .span(8)
    )
    for ref_id, (sli, slo) in zip("AB", _slos(settings), strict=False):
        bound = settings.latency_p95_seconds
        expr = queries.error_budget_remaining(sli, alerts.slo_budget(slo), bound, SCOPE)
        panel = panel.with_target(target(datasource_uid, expr, f"{sli} ({slo:.4g})", ref_id))
    return panel


def sli_panel(datasource_uid: str, settings: AlertSettings) -> timeseries.Panel:
    one_hour = settings.slo_window(3600)
    meanings = "; ".join(
        f"{sli}: {_sli_meaning(sli, settings)} (SLO {slo:.4g})" for sli, slo in _slos(settings)
    )
    panel = (
        _timeseries(
            datasource_uid,
            f"SLI ({promql_duration(one_hour)})",
            f"Share of good requests over the last {promql_duration(one_hour)}. {meanings}.",
            units.PercentUnit,
        )
        .max(1)
        .span(16)
    )
    for ref_id, (sli, _) in zip("AB", _slos(settings), strict=False):
        expr = queries.sli(sli, one_hour, SCOPE, settings.latency_p95_seconds)
        panel = panel.with_target(target(datasource_uid, expr, sli, ref_id))
    return panel


def burn_rate_panel(datasource_uid: str, settings: AlertSettings, sli: str, slo: float) -> timeseries.Panel:
    title = alerts.AVAILABILITY_BURN_PANEL if sli == queries.AVAILABILITY else alerts.LATENCY_BURN_PANEL
    name = alerts.ALERT_AVAILABILITY_BURN if sli == queries.AVAILABILITY else alerts.ALERT_LATENCY_BURN
    budget = alerts.slo_budget(slo)
    panel = _timeseries(
        datasource_uid,
        title,
        f"How many times faster than sustainable the {sli} error budget ({_sli_meaning(sli, settings)}, "
        f"SLO {slo:.4g}) burns, per window; {name} pages at 14.4 (1h and 5m) or 6 (6h and 30m) and "
        "tickets at 3 (1d and 2h) or 1 (3d and 6h). The dashed line is 1: the budget lasts 30 days.",
        units.NoUnit,
    ).min(0)
    for ref_id, window in zip("ABCDEFG", SLO_WINDOWS_SECONDS, strict=True):
        scaled = settings.slo_window(window)
        legend = promql_duration(scaled, days=True)
        panel = panel.with_target(
            target(
                datasource_uid,
                queries.burn_rate(sli, scaled, budget, SCOPE, settings.latency_p95_seconds),
                legend,
                ref_id,
            )
        )
    return _with_alert_line(panel, 1.0)


def slo_panels(datasource_uid: str, settings: AlertSettings) -> list:
    """The "SLOs" row's panels (none when every SLO is off)."""
    if not _slos(settings):
        return []
    return [
        error_budget_panel(datasource_uid, settings),
        sli_panel(datasource_uid, settings),
        *(burn_rate_panel(datasource_uid, settings, sli, slo) for sli, slo in _slos(settings)),
    ]


# --- gateway -----------------------------------------------------------------------------------------
# What clients of the one endpoint see; the gateway serves every replica, so these panels ignore the
# instance and version variables.


def gateway_backends_panel(datasource_uid: str) -> stat.Panel:
    return (
        _stat(
            datasource_uid,
            alerts.GATEWAY_BACKENDS_PANEL,
            "Replica containers passing the gateway's /ready check: the ones it sends requests to (during "
            f"a rollout, old and new ones). 0 fires {alerts.ALERT_ENDPOINT_DOWN}.",
            units.NoUnit,
        )
        .with_target(target(datasource_uid, queries.gateway_backends_up(), "in the pool"))
        .thresholds(_thresholds((None, RED), (1, GREEN)))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
    )


def gateway_responses_panel(datasource_uid: str) -> timeseries.Panel:
    return (
        _timeseries(
            datasource_uid,
            "Gateway responses",
            "Responses per second the gateway sent clients, by class (its own 503s when no replica is "
            "healthy included), and the requests it resent to another replica after a failed connection.",
            units.RequestsPerSecond,
        )
        .with_target(target(datasource_uid, queries.gateway_response_rate(), "{{code}}", "A"))
        .with_target(target(datasource_uid, queries.gateway_retries(), "resent", "B"))
    )


def gateway_error_ratio_panel(datasource_uid: str) -> timeseries.Panel:
    return _timeseries(
        datasource_uid,
        "Gateway 5xx share",
        "Share of the gateway's responses that were 5xx: the error rate clients saw.",
        units.PercentUnit,
    ).with_target(target(datasource_uid, queries.gateway_server_error_ratio(), "5xx"))


def gateway_timing_panel(datasource_uid: str) -> timeseries.Panel:
    return (
        _timeseries(
            datasource_uid,
            "Gateway queue and connect time",
            "Average time a request waited in the gateway's queue (all replicas busy) and took to "
            "connect to a replica, over its last 1024 requests.",
            units.Seconds,
        )
        .with_target(target(datasource_uid, queries.gateway_queue_time(), "queue", "A"))
        .with_target(target(datasource_uid, queries.gateway_connect_time(), "connect", "B"))
    )


def gateway_panels(datasource_uid: str, settings: AlertSettings) -> list:
    """The "Gateway" row's panels (none without a gateway)."""
    if not settings.gateway:
        return []
    return [
        gateway_backends_panel(datasource_uid),
        gateway_responses_panel(datasource_uid),
        gateway_error_ratio_panel(datasource_uid),
        gateway_timing_panel(datasource_uid),
    ]


def row(title: str) -> dashboard_builders.Row:
    return dashboard_builders.Row(title)
