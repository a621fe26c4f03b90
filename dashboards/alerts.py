"""Alert rules (work in progress: signatures are final)."""

from dashboards.settings import AlertSettings


def grafana_rule_groups(datasource_uid: str, settings: AlertSettings) -> list[dict]:
    """Keyword arguments for pulumiverse_grafana.alerting.RuleGroup, minus folder_uid/org_id."""
    raise NotImplementedError


def prometheus_rule_files(settings: AlertSettings) -> dict[str, str]:
    """File name -> Prometheus rule file YAML (recording rules + alerts)."""
    raise NotImplementedError
