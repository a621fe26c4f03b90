"""The Grafana dashboard: the `version` and `instance` variables, then rows per concern, built from the
panel functions in `dashboards.panels`."""

import json

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync

from dashboards import panels
from dashboards.settings import DASHBOARD_UID, DATASOURCE_UID, DEFAULT_SETTINGS, AlertSettings

TITLE = "Model monitoring"
TAGS = ["model-monitoring"]


def dashboard_builder(datasource_uid: str, settings: AlertSettings) -> dashboard_builders.Dashboard:
    builder = (
        dashboard_builders.Dashboard(TITLE)
        .uid(DASHBOARD_UID)
        .description("Traffic, errors, latency, predictions and input drift of the model server.")
        .tags(TAGS)
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .with_variable(panels.version_variable(datasource_uid))
        .with_variable(panels.instance_variable(datasource_uid))
        .with_row(panels.row("Overview"))
        .with_panel(panels.model_version_panel(datasource_uid))
        .with_panel(panels.replicas_up_panel(datasource_uid))
        .with_panel(panels.predictions_per_second_panel(datasource_uid))
        .with_panel(panels.error_rate_stat_panel(datasource_uid, settings))
        .with_row(panels.row("Traffic and errors"))
        .with_panel(panels.request_rate_by_status_panel(datasource_uid))
        .with_panel(panels.throughput_panel(datasource_uid))
        .with_panel(panels.error_rate_panel(datasource_uid, settings))
        .with_row(panels.row("Latency"))
        .with_panel(panels.latency_panel(datasource_uid, settings))
        .with_row(panels.row("Predictions"))
        .with_panel(panels.prediction_heatmap_panel(datasource_uid))
        .with_panel(panels.prediction_median_panel(datasource_uid, settings))
        .with_row(panels.row("Input drift"))
        .with_panel(panels.feature_drift_panel(datasource_uid, settings))
        .with_panel(panels.feature_samples_panel(datasource_uid, settings))
    )
    for title, row_panels in (
        ("SLOs", panels.slo_panels(datasource_uid, settings)),
        ("Gateway", panels.gateway_panels(datasource_uid, settings)),
    ):
        if row_panels:
            builder = builder.with_row(panels.row(title))
            for panel in row_panels:
                builder = builder.with_panel(panel)
    return builder


def build_dashboard(datasource_uid: str = DATASOURCE_UID, settings: AlertSettings = DEFAULT_SETTINGS) -> dict:
    """Grafana dashboard JSON model (plain dicts), with panel ids numbered in layout order."""
    model = json.loads(json.dumps(dashboard_builder(datasource_uid, settings).build(), cls=JSONEncoder))
    for panel_id, panel in enumerate(model["panels"], start=1):
        panel["id"] = panel_id
    return model


def panel_ids(
    datasource_uid: str = DATASOURCE_UID, settings: AlertSettings = DEFAULT_SETTINGS
) -> dict[str, int]:
    """Panel title -> panel id (rows included), as the dashboard numbers them."""
    return {panel["title"]: panel["id"] for panel in build_dashboard(datasource_uid, settings)["panels"]}


def dashboard_json(datasource_uid: str = DATASOURCE_UID, settings: AlertSettings = DEFAULT_SETTINGS) -> str:
    """Deterministic dashboard JSON (sorted keys, fixed UIDs and ids): identical input, identical bytes."""
    return json.dumps(build_dashboard(datasource_uid, settings), sort_keys=True, indent=2) + "\n"
