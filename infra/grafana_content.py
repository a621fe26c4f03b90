"""GrafanaContent: data source, folder, dashboards, alert rules and the notification routing (contact points
and the notification policy) via the Grafana API."""

import json
import re
from dataclasses import dataclass

import pulumi
import pulumiverse_grafana as grafana

from dashboards.alerts import grafana_rule_groups
from dashboards.dashboard import dashboard_json
from dashboards.notifications import GROUP_BY, Routing
from dashboards.runbooks import runbooks_dashboard_json
from dashboards.settings import DATASOURCE_UID, AlertSettings

FOLDER_UID = "model-monitoring"
FOLDER_TITLE = "Model monitoring"
DATASOURCE_NAME = "Prometheus (model monitoring)"
# Every Grafana has this contact point (an e-mail to a placeholder address): the root of the policy when
# no catch-all webhook is configured, i.e. Grafana's own default for what no severity route takes.
GRAFANA_DEFAULT_CONTACT_POINT = "grafana-default-email"
# The routing's grouping plus Grafana's folder label.
_GROUP_BY = [*GROUP_BY, "grafana_folder"]


@dataclass(frozen=True)
class GrafanaContentArgs:
    grafana_url: str  # how this program reaches Grafana (the published port, or the cluster's Grafana)
    auth: pulumi.Input[str]  # "user:password" or a service-account token
    # The provider waits for it (a container created with wait=True: healthy); None: Grafana runs already.
    grafana_container: pulumi.Resource | None
    prometheus_url: str  # how Grafana reaches Prometheus (Docker network, or in-cluster Service)
    scrape_interval: str
    alerts: AlertSettings
    alert_rules: bool  # Grafana-managed alert rules
    routing: Routing  # no webhook URL at all: no contact point, no notification policy


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class GrafanaContent(pulumi.ComponentResource):
    """Everything inside Grafana, managed through a provider bound to this stack's Grafana."""

    provider: grafana.Provider
    data_source: grafana.oss.DataSource
    folder: grafana.oss.Folder
    dashboard: grafana.oss.Dashboard
    runbooks_dashboard: grafana.oss.Dashboard
    rule_groups: list[grafana.alerting.RuleGroup]
    contact_points: dict[str, grafana.alerting.ContactPoint]  # receiver name -> its contact point
    notification_policy: grafana.alerting.NotificationPolicy | None
    dashboard_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: GrafanaContentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("model-monitoring:index:GrafanaContent", name, None, opts)

        self.provider = grafana.Provider(
            f"{name}-provider",
            url=args.grafana_url,
            auth=pulumi.Output.secret(args.auth),
            retries=10,
            retry_wait=2,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[args.grafana_container] if args.grafana_container else []
            ),
        )
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)

        self.data_source = grafana.oss.DataSource(
            f"{name}-prometheus",
            type="prometheus",
            name=DATASOURCE_NAME,
            uid=DATASOURCE_UID,
            url=args.prometheus_url,
            access_mode="proxy",
            is_default=True,
            # timeInterval = scrape interval: Grafana's $__rate_interval then spans enough samples.
            json_data_encoded=json.dumps(
                {"httpMethod": "POST", "timeInterval": args.scrape_interval}, sort_keys=True
            ),
            opts=child,
        )
        self.folder = grafana.oss.Folder(f"{name}-folder", title=FOLDER_TITLE, uid=FOLDER_UID, opts=child)
        # Panels and rules name the data source by its fixed UID: wait until it exists.
        after_data_source = pulumi.ResourceOptions(
            parent=self, provider=self.provider, depends_on=[self.data_source]
        )

        self.dashboard = grafana.oss.Dashboard(
            f"{name}-dashboard",
            config_json=dashboard_json(DATASOURCE_UID, args.alerts),
            folder=self.folder.uid,
            overwrite=True,
            opts=after_data_source,
        )
        # The alerts' runbook_url points at its panels (one per alert) unless runbookBaseUrl is set.
        self.runbooks_dashboard = grafana.oss.Dashboard(
            f"{name}-runbooks",
            config_json=runbooks_dashboard_json(),
            folder=self.folder.uid,
            overwrite=True,
            opts=child,
        )
        self.dashboard_url = self.dashboard.uid.apply(lambda uid: f"{args.grafana_url}/d/{uid}")

        self.rule_groups = []
        if args.alert_rules:
            for group in grafana_rule_groups(DATASOURCE_UID, args.alerts):
                self.rule_groups.append(
                    grafana.alerting.RuleGroup(
                        f"{name}-rules-{_slug(group['name'])}",
                        folder_uid=self.folder.uid,
                        **group,
                        opts=after_data_source,
                    )
                )

        self.contact_points = {}
        self.notification_policy = None
        routing = args.routing
        if routing.sends_anything:
            for receiver in routing.receivers:
                if receiver.url:
                    self.contact_points[receiver.name] = grafana.alerting.ContactPoint(
                        f"{name}-{receiver.name.removeprefix('model-monitoring-')}",
                        name=receiver.name,
                        webhooks=[
                            grafana.alerting.ContactPointWebhookArgs(url=pulumi.Output.secret(receiver.url))
                        ],
                        opts=child,
                    )
            names = {r: point.name for r, point in self.contact_points.items()}
            # One policy per organisation: this stack owns the root policy of its Grafana.
            self.notification_policy = grafana.alerting.NotificationPolicy(
                f"{name}-notification-policy",
                contact_point=names.get(routing.catch_all.name, GRAFANA_DEFAULT_CONTACT_POINT),
                group_bies=_GROUP_BY,
                policies=[
                    grafana.alerting.NotificationPolicyPolicyArgs(
                        contact_point=names[route.receiver],
                        matchers=[
                            grafana.alerting.NotificationPolicyPolicyMatcherArgs(
                                label=label, match=operator, value=value
                            )
                            for label, operator, value in [route.matcher]
                        ],
                        group_bies=_GROUP_BY,
                    )
                    for route in routing.routes
                ],
                **routing.timing,
                opts=child,
            )

        self.register_outputs({"dashboardUrl": self.dashboard_url})
