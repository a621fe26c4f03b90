"""Every alert has a runbook (docs/runbooks/<AlertName>.md) and the Runbooks dashboard renders it at the
panel its runbook_url names."""

from __future__ import annotations

import json

from dashboards import alerts
from dashboards.alerts import alert_definitions
from dashboards.runbooks import RUNBOOKS_DIR, build_runbooks_dashboard, runbooks_dashboard_json
from dashboards.settings import RUNBOOKS_DASHBOARD_UID, AlertSettings

SECTIONS = (
    "**What it means.**",
    "**First three things to check**",
    "**Common causes.**",
    "**Silence safely.**",
)


def test_one_runbook_per_alert_and_nothing_else() -> None:
    assert {p.stem for p in RUNBOOKS_DIR.glob("*.md")} == set(alerts.ALERT_NAMES)
    for name in alerts.ALERT_NAMES:
        text = (RUNBOOKS_DIR / f"{name}.md").read_text()
        assert text.startswith(f"# {name} ")
        for section in SECTIONS:
            assert section in text, (name, section)
        # Three numbered checks, each naming a panel or a command to run.
        assert all(f"\n{i}. " in text for i in (1, 2, 3)), name


def test_runbook_url_opens_the_panel_with_that_runbook() -> None:
    dashboard = build_runbooks_dashboard()
    assert dashboard["uid"] == RUNBOOKS_DASHBOARD_UID
    panels = {p["id"]: p for p in dashboard["panels"]}
    for alert in alert_definitions(AlertSettings()):
        prefix = f"/d/{RUNBOOKS_DASHBOARD_UID}?viewPanel="
        assert alert.runbook_url.startswith(prefix)
        panel = panels[int(alert.runbook_url.removeprefix(prefix))]
        assert panel["title"] == alert.name
        assert panel["type"] == "text"
        assert panel["options"]["mode"] == "markdown"
        assert panel["options"]["content"] == (RUNBOOKS_DIR / f"{alert.name}.md").read_text()


def test_runbooks_json_is_deterministic() -> None:
    assert runbooks_dashboard_json() == runbooks_dashboard_json()
    assert json.loads(runbooks_dashboard_json())["title"]
