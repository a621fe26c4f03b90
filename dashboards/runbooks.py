"""The "Runbooks" dashboard: one markdown text panel per alert, rendered from docs/runbooks/<AlertName>.md.

The markdown files are the single source; panel ids follow `alerts.ALERT_NAMES`, so the `runbook_url`
annotations (`/d/<uid>?viewPanel=<id>`) link each alert to its own panel without any hosting.
"""

import json
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import text
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.text import TextMode

from dashboards.alerts import ALERT_NAMES
from dashboards.dashboard import TAGS
from dashboards.settings import RUNBOOKS_DASHBOARD_UID

RUNBOOKS_DIR = Path(__file__).resolve().parent.parent / "docs" / "runbooks"
TITLE = "Model monitoring runbooks"


def runbook_markdown(name: str) -> str:
    """The runbook of alert `name` (FileNotFoundError when one is missing: every alert has one)."""
    return (RUNBOOKS_DIR / f"{name}.md").read_text(encoding="utf-8")


def build_runbooks_dashboard() -> dict:
    """Dashboard JSON model: panel i (from 1) is the runbook of ALERT_NAMES[i - 1]."""
    builder = (
        dashboard_builders.Dashboard(TITLE)
        .uid(RUNBOOKS_DASHBOARD_UID)
        .description("What each alert means, what to check first, common causes, how to silence it safely.")
        .tags(TAGS)
    )
    for name in ALERT_NAMES:
        builder = builder.with_panel(
            text.Panel()
            .title(name)
            .mode(TextMode.MARKDOWN)
            .content(runbook_markdown(name))
            .height(14)
            .span(24)
        )
    model = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    for panel_id, panel in enumerate(model["panels"], start=1):
        panel["id"] = panel_id
    return model


def runbooks_dashboard_json() -> str:
    """Deterministic JSON (sorted keys): identical runbooks, identical bytes."""
    return json.dumps(build_runbooks_dashboard(), sort_keys=True, indent=2) + "\n"
