"""The kubernetes target: the same model server, dashboard and rules on a cluster with the Prometheus
Operator. Only wiring: each part is a component bound to one Kubernetes provider.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from dashboards.alerts import prometheus_rule_groups
from dashboards.dashboard import dashboard_json
from dashboards.settings import DATASOURCE_UID
from infra import remote_write
from infra.config import StackSettings
from infra.grafana_content import DATASOURCE_NAME, GrafanaContent, GrafanaContentArgs
from infra.kubernetes import manifests
from infra.kubernetes.manifests import Labels, Resources
from infra.kubernetes.model_server import (
    KubernetesModelServer,
    KubernetesModelServerArgs,
    RegistryLogin,
    registry_server,
)
from infra.kubernetes.monitoring import (
    OperatorMonitoring,
    OperatorMonitoringArgs,
    PrometheusOperator,
    PrometheusOperatorArgs,
    SidecarContent,
)
from infra.prometheus import scrape_timeout
from server import contract


def deploy(settings: StackSettings) -> dict[str, pulumi.Input]:
    """Declare the stack; returns the stack outputs."""
    provider = k8s.Provider(
        "kubernetes",
        kubeconfig=pulumi.Output.secret(settings.kubeconfig) if settings.kubeconfig else None,
        context=settings.kubernetes_context or None,
    )
    on_cluster = pulumi.ResourceOptions(provider=provider)
    labels = Labels(instance=settings.name_prefix)

    namespace = k8s.core.v1.Namespace(
        "namespace",
        metadata={
            "name": settings.kubernetes_namespace,
            "labels": {"app.kubernetes.io/part-of": manifests.PART_OF},
        },
        opts=on_cluster,
    )
    namespace_name = namespace.metadata.name
    release = settings.prometheus_operator_release

    operator = None
    if settings.install_prometheus_operator:
        operator = PrometheusOperator(
            "prometheus-operator",
            PrometheusOperatorArgs(
                namespace=namespace_name,
                labels=labels,
                release=release,
                scrape_interval=settings.scrape_interval,
                retention=settings.retention,
                remote_write=remote_write.from_settings(settings),
            ),
            opts=pulumi.ResourceOptions(providers=[provider]),
        )

    login = None
    if settings.image_registry_username:
        login = RegistryLogin(
            server=registry_server(settings.image_registry),
            username=settings.image_registry_username,
            password=settings.image_registry_password or "",
        )
    model_server = KubernetesModelServer(
        "model-server",
        KubernetesModelServerArgs(
            namespace=namespace_name,
            labels=labels,
            image_name=f"{settings.image_registry}/{settings.name_prefix}-model-server:latest",
            registry_login=login,
            base_image=settings.model_server_base_image,
            build_ca_certs=settings.model_server_build_ca_certs,
            replicas=settings.model_server_replicas,
            max_replicas=settings.model_server_max_replicas,
            cpu_target_percent=settings.model_server_cpu_target_percent,
            workers=settings.model_server_workers,
            chaos_enabled=settings.chaos_enabled,
            resources=Resources(
                cpu_request=settings.model_server_cpu_request,
                cpu_limit=settings.model_server_cpu_limit,
                memory_request=settings.model_server_memory_request,
                memory_limit=settings.model_server_memory_limit,
            ),
        ),
        opts=pulumi.ResourceOptions(providers=[provider]),
    )

    prometheus_url = settings.grafana_prometheus_url or manifests.operator_prometheus_url(
        release, settings.kubernetes_namespace
    )
    sidecar = None
    if not settings.grafana_url:
        sidecar = SidecarContent(
            dashboard_json=dashboard_json(DATASOURCE_UID, settings.alerts),
            datasource_yaml=manifests.datasource_provisioning(
                name=DATASOURCE_NAME,
                uid=DATASOURCE_UID,
                url=prometheus_url,
                scrape_interval=settings.scrape_interval,
            ),
        )
    OperatorMonitoring(
        "monitoring",
        OperatorMonitoringArgs(
            namespace=namespace_name,
            labels=labels,
            release=release,
            scrape_interval=settings.scrape_interval,
            scrape_timeout=scrape_timeout(settings.scrape_interval),
            rule_groups=prometheus_rule_groups(settings.alerts, alert_rules=settings.prometheus_alert_rules),
            sidecar=sidecar,
            operator=operator.release if operator else None,
        ),
        opts=pulumi.ResourceOptions(providers=[provider]),
    )

    outputs: dict[str, pulumi.Input] = {
        "kubernetesNamespace": namespace_name,
        "modelServerImage": model_server.image_digest,
        # In-cluster addresses (kubectl port-forward svc/model-server 8000 to reach it from outside).
        "modelServerUrl": pulumi.Output.concat(
            "http://", model_server.service.metadata.name, ".", namespace_name, f".svc:{contract.SERVER_PORT}"
        ),
        "prometheusUrl": prometheus_url,
    }
    if model_server.chaos_token is not None:
        outputs["chaosToken"] = model_server.chaos_token  # X-Chaos-Token of `make demo` (secret)
    if settings.grafana_url:
        content = GrafanaContent(
            "grafana-content",
            GrafanaContentArgs(
                grafana_url=settings.grafana_url.rstrip("/"),
                auth=settings.grafana_auth or "",
                grafana_container=operator.release if operator else None,
                prometheus_url=prometheus_url,
                scrape_interval=settings.scrape_interval,
                alerts=settings.alerts,
                alert_rules=settings.grafana_alert_rules,
                routing=settings.notification_routing,
            ),
        )
        outputs |= {"grafanaUrl": settings.grafana_url, "dashboardUrl": content.dashboard_url}
    return outputs
