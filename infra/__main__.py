"""The monitoring stack: model server, Prometheus and Grafana on one Docker network, Grafana content as code.

Only wiring: settings come from infra/config.py (validated before any resource), each part is a component.
"""

import pulumi
import pulumi_docker as docker

from dashboards.alerts import prometheus_rule_files
from infra.config import load_settings
from infra.grafana import Grafana, GrafanaArgs
from infra.grafana_content import GrafanaContent, GrafanaContentArgs
from infra.model_server import ModelServer, ModelServerArgs
from infra.prometheus import Prometheus, PrometheusArgs, internal_url
from server import contract

settings = load_settings()
host = settings.client_host
grafana_url = f"http://{host}:{settings.grafana_host_port}"

network = docker.Network("network", name=settings.name_prefix)

model_server = ModelServer(
    "model-server",
    ModelServerArgs(
        name_prefix=settings.name_prefix,
        network_name=network.name,
        base_image=settings.model_server_base_image,
        replicas=settings.model_server_replicas,
        bind_address=settings.bind_address,
        host_port=settings.model_server_host_port,
        workers=settings.model_server_workers,
        chaos_enabled=settings.chaos_enabled,
        build_ca_certs=settings.model_server_build_ca_certs,
    ),
)

prometheus = Prometheus(
    "prometheus",
    PrometheusArgs(
        name_prefix=settings.name_prefix,
        network_name=network.name,
        image=settings.prometheus_image,
        bind_address=settings.bind_address,
        host_port=settings.prometheus_host_port,
        scrape_interval=settings.scrape_interval,
        retention=settings.retention,
        scrape_targets=[f"{alias}:{contract.SERVER_PORT}" for alias in model_server.aliases],
        rule_files=prometheus_rule_files(settings.alerts, alert_rules=settings.prometheus_alert_rules),
    ),
)

grafana = Grafana(
    "grafana",
    GrafanaArgs(
        name_prefix=settings.name_prefix,
        network_name=network.name,
        image=settings.grafana_image,
        bind_address=settings.bind_address,
        host_port=settings.grafana_host_port,
        url=grafana_url,
        admin_user=settings.grafana_admin_user,
        admin_password=settings.grafana_admin_password,
    ),
)

content = GrafanaContent(
    "grafana-content",
    GrafanaContentArgs(
        grafana_url=grafana_url,
        admin_user=settings.grafana_admin_user,
        admin_password=grafana.admin_password,
        grafana_container=grafana.container,
        prometheus_url=internal_url(),
        scrape_interval=settings.scrape_interval,
        alerts=settings.alerts,
        alert_rules=settings.grafana_alert_rules,
        webhook_url=settings.webhook_url or None,
    ),
)

pulumi.export("grafanaUrl", grafana_url)
pulumi.export("prometheusUrl", f"http://{host}:{settings.prometheus_host_port}")
pulumi.export("modelServerUrl", f"http://{host}:{settings.model_server_host_port}")
pulumi.export("modelServerUrls", [f"http://{host}:{port}" for port in settings.model_server_host_ports()])
pulumi.export("dashboardUrl", content.dashboard_url)
pulumi.export("grafanaAdminUser", settings.grafana_admin_user)
pulumi.export("grafanaAdminPassword", grafana.admin_password)
pulumi.export("modelServerImage", model_server.image_digest)
