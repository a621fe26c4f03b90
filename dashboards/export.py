"""Write the rendered dashboard and rule files to disk, for users without Pulumi (and for promtool)."""

from pathlib import Path

from dashboards.alerts import prometheus_rule_files
from dashboards.dashboard import dashboard_json
from dashboards.notifications import Routing, alertmanager_yaml, notification_routing
from dashboards.runbooks import runbooks_dashboard_json
from dashboards.settings import (
    DASHBOARD_UID,
    DATASOURCE_UID,
    DEFAULT_SETTINGS,
    RUNBOOKS_DASHBOARD_UID,
    AlertSettings,
)

ALERTMANAGER_CONFIG = Path("alertmanager", "alertmanager.yml")


def export(
    out_dir: str | Path,
    settings: AlertSettings = DEFAULT_SETTINGS,
    datasource_uid: str = DATASOURCE_UID,
    routing: Routing | None = None,
) -> list[Path]:
    """Write `out_dir/prometheus/*.yml` (rule files), `out_dir/grafana/*.json` (dashboards) and
    `out_dir/alertmanager/alertmanager.yml` (`routing`; None: no webhooks); return the paths, sorted."""
    out = Path(out_dir)
    files = {Path("prometheus", name): text for name, text in prometheus_rule_files(settings).items()}
    files[Path("grafana", f"{DASHBOARD_UID}.json")] = dashboard_json(datasource_uid, settings)
    files[Path("grafana", f"{RUNBOOKS_DASHBOARD_UID}.json")] = runbooks_dashboard_json()
    files[ALERTMANAGER_CONFIG] = alertmanager_yaml(routing or notification_routing())
    written = []
    for relative, text in sorted(files.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
