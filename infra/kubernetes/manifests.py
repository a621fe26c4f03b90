"""The kubernetes target's objects as plain data (camelCase, as the API server and the provider take them).

No Pulumi calls here: the components in this package pass these dicts to their resources, and the tests
validate exactly what the mocks record. Names, ports and paths come from the metric contract, rule groups
and the dashboard from dashboards/, so both targets monitor with the same definitions.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml

from server import contract

PART_OF = "model-monitoring"
APP_NAME = contract.JOB_NAME  # the Deployment, Service and pods are "model-server"
MANAGED_BY = "pulumi"
PORT_NAME = "http"
CONTAINER_NAME = "model-server"
# Writable paths under the read-only root filesystem (emptyDir volumes).
METRICS_DIR = "/var/run/model-server/metrics"  # PROMETHEUS_MULTIPROC_DIR: one file per worker
TMP_DIR = "/tmp"
CHAOS_TOKEN_KEY = "token"  # the key of the chaos Secret that holds MODEL_CHAOS_TOKEN
# The image's numeric non-root user (server/Dockerfile).
RUN_AS_USER = 10001

# Grafana's sidecars (kube-prometheus-stack defaults) load ConfigMaps with these labels.
DASHBOARD_LABEL = ("grafana_dashboard", "1")
DATASOURCE_LABEL = ("grafana_datasource", "1")
DASHBOARD_FILE = "model-monitoring.json"
DATASOURCE_FILE = "model-monitoring-datasource.yaml"
PROMETHEUS_PORT = 9090

# kube-prometheus-stack, pinned: chart 88.5.3 ships Prometheus Operator v0.93.1 (the CRD schemas the
# tests validate against are that chart's, vendored under tests/infra/kubernetes/crds/).
CHART = "kube-prometheus-stack"
CHART_VERSION = "88.5.3"
CHART_REPO = "https://prometheus-community.github.io/helm-charts"
MONITORING_API = "monitoring.coreos.com/v1"


def version() -> str:
    """This project's version (app.kubernetes.io/version)."""
    try:
        return importlib.metadata.version("model-monitoring")
    except importlib.metadata.PackageNotFoundError:  # a plain checkout, not installed
        return "0.0.0"


@dataclass(frozen=True)
class Labels:
    """The recommended labels (app.kubernetes.io/*) of the model server's objects."""

    instance: str  # "<project>-<stack>": tells two stacks in one namespace apart

    @property
    def selector(self) -> dict[str, str]:
        """Immutable subset (Deployment selector, Service selector, PDB): no version in it."""
        return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": self.instance}

    def common(self, name: str = APP_NAME) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/instance": self.instance,
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/version": version(),
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }


def metadata(name: str, namespace: str, labels: Mapping[str, str]) -> dict:
    return {"name": name, "namespace": namespace, "labels": dict(labels)}


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str

    def spec(self) -> dict:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


def _probe(path: str, *, period: int, failures: int) -> dict:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def deployment_spec(
    *,
    labels: Labels,
    image: object,  # the pushed image by digest (a Pulumi Output in the program)
    replicas: int,
    workers: int,
    chaos_enabled: bool,
    resources: Resources,
    image_pull_secret: str | None,
    chaos_secret: str | None = None,
) -> dict:
    """Rolling updates that never drop below `replicas` ready pods; non-root, read-only root filesystem."""
    container = {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": PORT_NAME, "containerPort": contract.SERVER_PORT, "protocol": "TCP"}],
        "env": [
            {"name": "WEB_CONCURRENCY", "value": str(workers)},
            {"name": "MODEL_CHAOS_ENABLED", "value": "true" if chaos_enabled else "false"},
            # With chaos on, its token comes from a Secret (never in the Deployment itself).
            *(
                [
                    {
                        "name": "MODEL_CHAOS_TOKEN",
                        "valueFrom": {"secretKeyRef": {"name": chaos_secret, "key": CHAOS_TOKEN_KEY}},
                    }
                ]
                if chaos_enabled and chaos_secret
                else []
            ),
            # Worker metrics files live here (summed at /metrics); emptied at start by the server.
            {"name": "PROMETHEUS_MULTIPROC_DIR", "value": METRICS_DIR},
        ],
        # Traffic only once the model is loaded; restart when the process stops answering.
        "readinessProbe": _probe(contract.READY_PATH, period=5, failures=3),
        "livenessProbe": _probe(contract.HEALTH_PATH, period=10, failures=3),
        # Model loading may take a while: liveness starts counting once this passes.
        "startupProbe": _probe(contract.HEALTH_PATH, period=2, failures=30),
        "resources": resources.spec(),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "metrics", "mountPath": METRICS_DIR},
            {"name": "tmp", "mountPath": TMP_DIR},
        ],
    }
    pod_spec: dict = {
        "containers": [container],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 30,
        "volumes": [
            {"name": "metrics", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }
    if image_pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": image_pull_secret}]
    return {
        "replicas": replicas,
        "selector": {"matchLabels": labels.selector},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {"metadata": {"labels": labels.common()}, "spec": pod_spec},
    }


def service_spec(labels: Labels) -> dict:
    return {
        "type": "ClusterIP",
        "selector": labels.selector,
        "ports": [
            {"name": PORT_NAME, "port": contract.SERVER_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}
        ],
    }


def hpa_spec(deployment_name: object, *, min_replicas: int, max_replicas: int, cpu_percent: int) -> dict:
    """autoscaling/v2 on CPU use relative to the request (needs metrics-server in the cluster)."""
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name},
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": cpu_percent},
                },
            }
        ],
    }


def pdb_spec(labels: Labels) -> dict:
    """Voluntary disruptions (node drains) take one pod at a time; with one replica a drain still
    proceeds (a minAvailable would block it forever)."""
    return {"selector": {"matchLabels": labels.selector}, "maxUnavailable": 1}


def service_monitor_spec(labels: Labels, namespace: str, scrape_interval: str, scrape_timeout: str) -> dict:
    """Scrape every pod behind the Service on port `http`; the job label becomes the contract's job name
    (the operator would name it after the Service), so every dashboard and alert query works unchanged."""
    return {
        "selector": {"matchLabels": labels.selector},
        "namespaceSelector": {"matchNames": [namespace]},
        "endpoints": [
            {
                "port": PORT_NAME,
                "path": contract.METRICS_PATH,
                "scheme": "http",
                "interval": scrape_interval,
                "scrapeTimeout": scrape_timeout,
                "relabelings": [
                    {"action": "replace", "targetLabel": "job", "replacement": contract.JOB_NAME}
                ],
            }
        ],
    }


def prometheus_rule_spec(groups: Sequence[Mapping]) -> dict:
    """The rule files' groups, unchanged."""
    return {"groups": [dict(group) for group in groups]}


def operator_labels(release: str) -> dict[str, str]:
    """kube-prometheus-stack's default selectors pick ServiceMonitors and PrometheusRules by this label."""
    return {"release": release}


def operator_fullname(release: str) -> str:
    """The chart's `kube-prometheus-stack.fullname` (its templates/_helpers.tpl): the release name when it
    contains the chart name, else "<release>-<chart>"; truncated to 26 characters, no trailing '-'."""
    name = release if CHART in release else f"{release}-{CHART}"
    return name[:26].rstrip("-")


def operator_prometheus_url(release: str, namespace: str) -> str:
    """The operator's Prometheus Service as seen from inside the cluster."""
    return f"http://{operator_fullname(release)}-prometheus.{namespace}.svc:{PROMETHEUS_PORT}"


def datasource_provisioning(*, name: str, uid: str, url: str, scrape_interval: str) -> str:
    """A Grafana provisioning file for the sidecar: the data source the dashboard names by its fixed UID.
    Not the default one: the stack's own Prometheus data source usually is."""
    document = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": name,
                "type": "prometheus",
                "uid": uid,
                "url": url,
                "access": "proxy",
                "isDefault": False,
                "editable": False,
                "jsonData": {"httpMethod": "POST", "timeInterval": scrape_interval},
            }
        ],
    }
    return yaml.safe_dump(document, sort_keys=True)


def chart_values(
    *,
    scrape_interval: str,
    retention: str,
    remote_write: Sequence[Mapping] = (),
) -> dict:
    """kube-prometheus-stack values: Grafana with its dashboard and data-source sidecars watching every
    namespace, Prometheus at this stack's scrape/evaluation interval, retention and remote_write."""
    return {
        "grafana": {
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL[0],
                    "labelValue": DASHBOARD_LABEL[1],
                    "searchNamespace": "ALL",
                },
                # The chart's default watches only Grafana's own namespace for data sources.
                "datasources": {
                    "enabled": True,
                    "label": DATASOURCE_LABEL[0],
                    "labelValue": DATASOURCE_LABEL[1],
                    "searchNamespace": "ALL",
                },
            }
        },
        "prometheus": {
            "prometheusSpec": {
                "scrapeInterval": scrape_interval,
                "evaluationInterval": scrape_interval,
                "retention": retention,
                "remoteWrite": [dict(entry) for entry in remote_write],
            }
        },
    }


def dashboard_configmap_data(dashboard_json: str) -> dict[str, str]:
    """The sidecar writes each key as a file into Grafana's dashboard directory."""
    return {DASHBOARD_FILE: dashboard_json}
