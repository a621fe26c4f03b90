"""Write the rendered dashboard and rule files to disk, for users without Pulumi (and for promtool)."""

from pathlib import Path

from dashboards.alerts import prometheus_rule_files
from dashboards.dashboard import dashboard_json
from dashboards.runbooks import runbooks_dashboard_json
from dashboards.settings import (
    DASHBOARD_UID,
    DATASOURCE_UID,
    DEFAULT_SETTINGS,
    RUNBOOKS_DASHBOARD_UID,
    AlertSettings,
)


def export(
    out_dir: str | Path, settings: AlertSettings = DEFAULT_SETTINGS, datasource_uid: str = DATASOURCE_UID
) -> list[Path]:
    """Write `out_dir/prometheus/*.yml` (rule files) and `out_dir/grafana/*.json` (dashboard); return the
    paths written, sorted."""
    out = Path(out_dir)
    files = {Path("prometheus", name): text for name, text in prometheus_rule_files(settings).items()}
    files[Path("grafana", f"{DASHBOARD_UID}.json")] = dashboard_json(datasource_uid, settings)
    files[Path("grafana", f"{RUNBOOKS_DASHBOARD_UID}.json")] = runbooks_dashboard_json()
    written = []
    for relative, text in sorted(files.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
