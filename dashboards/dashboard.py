"""The Grafana dashboard (work in progress: signatures are final)."""

import json

from dashboards.settings import DATASOURCE_UID, DEFAULT_SETTINGS, AlertSettings


def build_dashboard(datasource_uid: str = DATASOURCE_UID, settings: AlertSettings = DEFAULT_SETTINGS) -> dict:
    """Grafana dashboard JSON model."""
    raise NotImplementedError


def dashboard_json(datasource_uid: str = DATASOURCE_UID, settings: AlertSettings = DEFAULT_SETTINGS) -> str:
    """Deterministic dashboard JSON (sorted keys)."""
    return json.dumps(build_dashboard(datasource_uid, settings), sort_keys=True, indent=2) + "\n"
