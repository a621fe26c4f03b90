"""Monitoring on a cluster with the Prometheus Operator: a ServiceMonitor, a PrometheusRule, and (when
Pulumi cannot reach the cluster's Grafana) the dashboard and its data source as ConfigMaps for Grafana's
sidecars. Optionally the operator itself: kube-prometheus-stack, pinned, as one Helm release."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.kubernetes import manifests
from infra.kubernetes.manifests import Labels
from infra.remote_write import RemoteWrite


@dataclass(frozen=True)
class SidecarContent:
    """What the sidecars load: the dashboard JSON and the data source it names by UID."""

    dashboard_json: str
    datasource_yaml: str


@dataclass(frozen=True)
class OperatorMonitoringArgs:
    namespace: pulumi.Input[str]
    labels: Labels
    release: str  # the operator's `release` label
    scrape_interval: str
    scrape_timeout: str
    rule_groups: Sequence[Mapping]  # the Docker target's rule-file groups
    sidecar: SidecarContent | None  # None: GrafanaContent manages Grafana through its API
    operator: pulumi.Resource | None  # the Helm release when the program installs it (CRDs come with it)


class OperatorMonitoring(pulumi.ComponentResource):
    service_monitor: k8s.apiextensions.CustomResource
    prometheus_rule: k8s.apiextensions.CustomResource
    dashboard: k8s.core.v1.ConfigMap | None
    datasource: k8s.core.v1.ConfigMap | None

    def __init__(
        self, name: str, args: OperatorMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("model-monitoring:kubernetes:OperatorMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Custom resources need the operator's CRDs: after the release when the program installs it.
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[args.operator] if args.operator else [])
        selected = args.labels.common() | manifests.operator_labels(args.release)

        self.service_monitor = k8s.apiextensions.CustomResource(
            f"{name}-service-monitor",
            api_version=manifests.MONITORING_API,
            kind="ServiceMonitor",
            metadata=manifests.metadata(manifests.APP_NAME, args.namespace, selected),
            spec=manifests.service_monitor_spec(
                args.labels, args.namespace, args.scrape_interval, args.scrape_timeout
            ),
            opts=after_crds,
        )
        self.prometheus_rule = k8s.apiextensions.CustomResource(
            f"{name}-prometheus-rule",
            api_version=manifests.MONITORING_API,
            kind="PrometheusRule",
            metadata=manifests.metadata(manifests.APP_NAME, args.namespace, selected),
            spec=manifests.prometheus_rule_spec(args.rule_groups),
            opts=after_crds,
        )

        self.dashboard = self.datasource = None
        if args.sidecar is not None:
            self.dashboard = k8s.core.v1.ConfigMap(
                f"{name}-dashboard",
                metadata=manifests.metadata(
                    f"{manifests.PART_OF}-dashboard",
                    args.namespace,
                    args.labels.common() | dict([manifests.DASHBOARD_LABEL]),
                ),
                data=manifests.dashboard_configmap_data(args.sidecar.dashboard_json),
                opts=child,
            )
            self.datasource = k8s.core.v1.ConfigMap(
                f"{name}-datasource",
                metadata=manifests.metadata(
                    f"{manifests.PART_OF}-datasource",
                    args.namespace,
                    args.labels.common() | dict([manifests.DATASOURCE_LABEL]),
                ),
                data={manifests.DATASOURCE_FILE: args.sidecar.datasource_yaml},
                opts=child,
            )

        self.register_outputs({})


@dataclass(frozen=True)
class PrometheusOperatorArgs:
    namespace: pulumi.Input[str]
    labels: Labels
    release: str
    scrape_interval: str
    retention: str
    remote_write: RemoteWrite | None


class PrometheusOperator(pulumi.ComponentResource):
    """kube-prometheus-stack (operator, Prometheus, Grafana with sidecars), remote_write credentials in a
    Secret of the release's namespace (the operator reads them from there)."""

    remote_write_secret: k8s.core.v1.Secret | None
    release: k8s.helm.v3.Release

    def __init__(
        self, name: str, args: PrometheusOperatorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("model-monitoring:kubernetes:PrometheusOperator", name, None, opts)

        self.remote_write_secret = None
        remote_write_specs: list[dict] = []
        if args.remote_write is not None:
            secret_name = f"{manifests.PART_OF}-remote-write"
            if args.remote_write.secret_data():
                self.remote_write_secret = k8s.core.v1.Secret(
                    f"{name}-remote-write",
                    metadata=manifests.metadata(secret_name, args.namespace, args.labels.common(secret_name)),
                    type="Opaque",
                    string_data=pulumi.Output.secret(args.remote_write.secret_data()),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            remote_write_specs.append(args.remote_write.operator_spec(secret_name))

        self.release = k8s.helm.v3.Release(
            name,
            name=args.release,  # fixed: the `release` label the operator selects on derives from it
            chart=manifests.CHART,
            version=manifests.CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=manifests.CHART_REPO),
            namespace=args.namespace,
            values=manifests.chart_values(
                scrape_interval=args.scrape_interval,
                retention=args.retention,
                remote_write=remote_write_specs,
            ),
            # CRDs, operator and Prometheus ready before the ServiceMonitor and PrometheusRule go in.
            wait_for_jobs=True,
            timeout=900,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.remote_write_secret] if self.remote_write_secret else []
            ),
        )

        self.register_outputs({"release": self.release.name})
