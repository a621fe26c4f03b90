"""Where notifications go: one routing by the alerts' `severity` label, rendered for Alertmanager here
(`alertmanager_config`) and for Grafana as contact points + a notification policy (infra/grafana_content.py).

`critical` pages (the pager receiver), `warning` opens a ticket (the ticket receiver); whatever no child
route takes (a severity whose receiver is not configured, an alert without severity) goes to the catch-all
receiver, which sends nothing when its URL is empty. Webhook URLs often embed a token: they never appear
in an error message or a repr.
"""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import yaml

from dashboards.alerts import Severity
from dashboards.settings import promql_duration

SEVERITY_LABEL = "severity"
# Receiver (and Grafana contact point) names; the catch-all keeps the name of the single webhook the stack
# had before severity routing, so an existing contact point is updated, not replaced.
PAGER_RECEIVER = "model-monitoring-pager"
TICKET_RECEIVER = "model-monitoring-ticket"
CATCH_ALL_RECEIVER = "model-monitoring-webhook"
SEVERITY_RECEIVERS = {Severity.CRITICAL: PAGER_RECEIVER, Severity.WARNING: TICKET_RECEIVER}
# One notification names one problem: grouped per alert name (both engines add their own grouping label
# where they have one, Grafana's folder).
GROUP_BY = ("alertname",)
# Alertmanager's and Grafana's documented defaults for the first notification, batching and reminders.
GROUP_WAIT_SECONDS = 30
GROUP_INTERVAL_SECONDS = 300
REPEAT_INTERVAL_SECONDS = 4 * 3600


@dataclass(frozen=True)
class Receiver:
    name: str
    url: str = field(repr=False)  # the webhook; "" = this receiver sends nothing


@dataclass(frozen=True)
class Route:
    """Alerts whose severity label equals `severity` go to `receiver`."""

    severity: Severity
    receiver: str

    @property
    def matcher(self) -> tuple[str, str, str]:
        """(label, operator, value): the one matcher both engines get."""
        return (SEVERITY_LABEL, "=", str(self.severity))


@dataclass(frozen=True)
class Routing:
    catch_all: Receiver  # the root route's receiver
    routes: tuple[Route, ...]  # child routes, in matching order
    receivers: tuple[Receiver, ...]  # every receiver the routes name, the catch-all first
    group_wait_seconds: int = GROUP_WAIT_SECONDS
    group_interval_seconds: int = GROUP_INTERVAL_SECONDS
    repeat_interval_seconds: int = REPEAT_INTERVAL_SECONDS

    @property
    def sends_anything(self) -> bool:
        return any(r.url for r in self.receivers)

    @property
    def timing(self) -> dict[str, str]:
        """group_wait / group_interval / repeat_interval as durations both engines accept."""
        return {
            "group_wait": promql_duration(self.group_wait_seconds),
            "group_interval": promql_duration(self.group_interval_seconds),
            "repeat_interval": promql_duration(self.repeat_interval_seconds),
        }


def _check_url(name: str, url: str) -> None:
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # The value itself stays out of the message: it is a secret.
            raise ValueError(f"{name} must be empty or an http(s):// URL with a host")


def notification_routing(
    pager_url: str = "",
    ticket_url: str = "",
    catch_all_url: str = "",
    *,
    group_wait_seconds: int = GROUP_WAIT_SECONDS,
) -> Routing:
    """The routing for these webhook URLs (each may be empty): a child route per severity whose receiver
    has a URL, everything else to the catch-all. ValueError names the bad argument, never its value."""
    urls = {PAGER_RECEIVER: pager_url, TICKET_RECEIVER: ticket_url, CATCH_ALL_RECEIVER: catch_all_url}
    names = {PAGER_RECEIVER: "pager_webhook_url", TICKET_RECEIVER: "ticket_webhook_url"}
    names[CATCH_ALL_RECEIVER] = "webhook_url"
    for receiver, url in urls.items():
        _check_url(names[receiver], url)
    if (
        isinstance(group_wait_seconds, bool)
        or not isinstance(group_wait_seconds, int)
        or group_wait_seconds < 1
    ):
        raise ValueError(
            f"group_wait_seconds must be a whole number of seconds >= 1, got {group_wait_seconds!r}"
        )
    routes = tuple(
        Route(severity, receiver) for severity, receiver in SEVERITY_RECEIVERS.items() if urls[receiver]
    )
    catch_all = Receiver(CATCH_ALL_RECEIVER, catch_all_url)
    receivers = (catch_all, *(Receiver(r.receiver, urls[r.receiver]) for r in routes))
    return Routing(catch_all, routes, receivers, group_wait_seconds=group_wait_seconds)


def _inhibit_rules() -> list[dict]:
    """A critical alert mutes the warning of the same alert (the burn-rate alerts' ticket tier also holds
    during an outage that pages): one problem, one notification, as kube-prometheus' Alertmanager does."""
    return [
        {
            "source_matchers": [f'{SEVERITY_LABEL}="{Severity.CRITICAL}"'],
            "target_matchers": [f'{SEVERITY_LABEL}="{Severity.WARNING}"'],
            "equal": ["alertname"],
        }
    ]


def alertmanager_config(routing: Routing) -> dict:
    """alertmanager.yml as a document: the routing tree, one webhook per receiver with a URL (resolved
    notifications included), the inhibition of warnings by criticals."""
    receivers = []
    for receiver in routing.receivers:
        entry: dict = {"name": receiver.name}
        if receiver.url:
            entry["webhook_configs"] = [{"url": receiver.url, "send_resolved": True}]
        receivers.append(entry)
    route: dict = {"receiver": routing.catch_all.name, "group_by": list(GROUP_BY), **routing.timing}
    if routing.routes:
        route["routes"] = [
            {"receiver": r.receiver, "matchers": ['{}{}"{}"'.format(*r.matcher)]} for r in routing.routes
        ]
    return {"route": route, "receivers": receivers, "inhibit_rules": _inhibit_rules()}


def alertmanager_yaml(routing: Routing) -> str:
    return yaml.safe_dump(alertmanager_config(routing), sort_keys=False, default_flow_style=False)
