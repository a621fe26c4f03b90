"""The Docker target: model-server replicas behind a gateway, Prometheus, Alertmanager and Grafana on one
Docker network of this host, Grafana content as code. Only wiring: each part is a component.
"""

import pulumi
import pulumi_docker as docker

from dashboards.alerts import prometheus_rule_files
from infra import alertmanager, gateway, remote_write
from infra.alertmanager import Alertmanager, AlertmanagerArgs
from infra.config import StackSettings, memory_mib
from infra.containers import ContainerLimits
from infra.gateway import Gateway, GatewayArgs
from infra.grafana import Grafana, GrafanaArgs
from infra.grafana_content import GrafanaContent, GrafanaContentArgs
from infra.model_server import ModelServer, ModelServerArgs
from infra.prometheus import Prometheus, PrometheusArgs, internal_url


def deploy(settings: StackSettings) -> dict[str, pulumi.Input]:
    """Declare the stack; returns the stack outputs."""
    host = settings.client_host
    grafana_url = f"http://{host}:{settings.grafana_host_port}"

    network = docker.Network("network", name=settings.name_prefix)

    def limits(memory: str) -> ContainerLimits:
        return ContainerLimits(memory_mb=memory_mib(memory), nofile=settings.container_nofile_limit)

    model_server = ModelServer(
        "model-server",
        ModelServerArgs(
            name_prefix=settings.name_prefix,
            network_name=network.name,
            base_image=settings.model_server_base_image,
            replicas=settings.model_server_replicas,
            bind_address=settings.bind_address,
            debug_host_port=settings.replica_debug_port,
            workers=settings.model_server_workers,
            chaos_enabled=settings.chaos_enabled,
            drain_seconds=gateway.drain_seconds(settings.scrape_interval),
            limits=limits(settings.model_server_memory_limit),
            build_ca_certs=settings.model_server_build_ca_certs,
        ),
    )
    replicas = gateway.replica_addresses(model_server.aliases)

    # The model API's one endpoint: clients never address a replica.
    Gateway(
        "gateway",
        GatewayArgs(
            name_prefix=settings.name_prefix,
            network_name=network.name,
            image=settings.gateway_image,
            bind_address=settings.bind_address,
            host_port=settings.model_server_host_port,
            replicas=replicas,
            limits=limits(settings.gateway_memory_limit),
        ),
    )

    # Prometheus-evaluated alerts notify through Alertmanager (Grafana-managed ones through Grafana).
    alertmanager_url = f"http://{host}:{settings.alertmanager_host_port}"
    if settings.prometheus_alert_rules:
        Alertmanager(
            "alertmanager",
            AlertmanagerArgs(
                name_prefix=settings.name_prefix,
                network_name=network.name,
                image=settings.alertmanager_image,
                bind_address=settings.bind_address,
                host_port=settings.alertmanager_host_port,
                url=alertmanager_url,
                routing=settings.notification_routing,
                limits=limits(settings.alertmanager_memory_limit),
            ),
        )

    Prometheus(
        "prometheus",
        PrometheusArgs(
            name_prefix=settings.name_prefix,
            network_name=network.name,
            image=settings.prometheus_image,
            bind_address=settings.bind_address,
            host_port=settings.prometheus_host_port,
            scrape_interval=settings.scrape_interval,
            retention=settings.retention,
            scrape_targets=list(replicas.values()),
            gateways=[gateway.internal_target()],
            rule_files=prometheus_rule_files(settings.alerts, alert_rules=settings.prometheus_alert_rules),
            remote_write=remote_write.from_settings(settings),
            alertmanagers=[alertmanager.internal_target()] if settings.prometheus_alert_rules else [],
            limits=limits(settings.prometheus_memory_limit),
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
            limits=limits(settings.grafana_memory_limit),
        ),
    )

    content = GrafanaContent(
        "grafana-content",
        GrafanaContentArgs(
            grafana_url=grafana_url,
            auth=pulumi.Output.concat(settings.grafana_admin_user, ":", grafana.admin_password),
            grafana_container=grafana.container,
            prometheus_url=internal_url(),
            scrape_interval=settings.scrape_interval,
            alerts=settings.alerts,
            alert_rules=settings.grafana_alert_rules,
            routing=settings.notification_routing,
        ),
    )

    outputs: dict[str, pulumi.Input] = {
        "grafanaUrl": grafana_url,
        "prometheusUrl": f"http://{host}:{settings.prometheus_host_port}",
        "modelServerUrl": f"http://{host}:{settings.model_server_host_port}",
        "dashboardUrl": content.dashboard_url,
        "grafanaAdminUser": settings.grafana_admin_user,
        "grafanaAdminPassword": grafana.admin_password,
        "modelServerImage": model_server.image_digest,
    }
    if settings.prometheus_alert_rules:
        outputs["alertmanagerUrl"] = alertmanager_url
    if model_server.chaos_token is not None:
        outputs["chaosToken"] = model_server.chaos_token  # X-Chaos-Token of `make demo` (secret)
    if settings.model_server_replica_ports:
        outputs["modelServerUrls"] = [f"http://{host}:{port}" for port in settings.replica_debug_ports()]
    return outputs
