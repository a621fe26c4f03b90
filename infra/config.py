"""Stack configuration, read once into a frozen, typed `StackSettings` and validated before any resource.

Every key lives in the `model-monitoring` namespace and has a default (spelled out in Pulumi.dev.yaml).
A bad value stops the program with one error listing every offending key and its allowed values.
"""

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pulumi

from dashboards.notifications import Routing, notification_routing
from dashboards.settings import DEFAULT_SETTINGS, AlertSettings

NAMESPACE = "model-monitoring"
# The directory of Pulumi.yaml; the program itself runs with infra/ as working directory.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

ALERT_ENGINES = ("grafana", "prometheus", "both")
DOCKER, KUBERNETES = "docker", "kubernetes"
TARGETS = (DOCKER, KUBERNETES)

# Prometheus duration syntax (units in descending order, each at most once).
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
# An image reference: no whitespace, not an option, [registry/]repo[:tag][@digest].
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._\-/:]*(?::[\w][\w.\-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")

# Where images are pushed: host[:port][/path...], no tag or digest (the program names the repository).
_REGISTRY = re.compile(r"^[a-z0-9][a-z0-9.\-]*(?::\d{1,5})?(?:/[a-z0-9]+(?:[._\-][a-z0-9]+)*)*$")
# A DNS-1123 label (namespace and Helm release names).
_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?$")
# Kubernetes resource quantities for CPU ("250m", "1", "0.5") and memory ("256Mi", "1Gi", "512M").
_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEMORY_UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_MEMORY_UNITS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


class ConfigError(pulumi.RunError):
    """Invalid stack configuration (RunError: Pulumi prints the message without a traceback)."""


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as "15s", "1h30m" or "15d"; ValueError if malformed."""
    match = _DURATION.match(text)
    if not text or not match:
        raise ValueError(text)
    return sum(int(n) * unit for n, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if n)


def _duration(low: float, high: float) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not low <= parse_duration(text) <= high:
            raise ValueError(text)
        return text

    return parse


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text.strip())
        if not low <= value <= high:
            raise ValueError(text)
        return value

    return parse


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(text)
    return lowered == "true"


def _image(text: str) -> str:
    if not _IMAGE.match(text):
        raise ValueError(text)
    return text


def _ip_address(text: str) -> str:
    return str(ipaddress.ip_address(text))


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(text)
        return text

    return parse


def _webhook_url(text: str) -> str:
    if text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(text)
    return text


def _pem_file(text: str) -> str:
    """The PEM text of the file (relative paths from the project root, where Pulumi.yaml is); "" if unset."""
    if not text:
        return ""
    try:
        pem = (PROJECT_ROOT / text).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(text) from exc
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError(text)
    return pem


def _url(text: str) -> str:
    """Empty, or an http(s):// URL with a host."""
    return _webhook_url(text)


def _registry(text: str) -> str:
    if text and not _REGISTRY.match(text):
        raise ValueError(text)
    return text


def _dns_label(max_length: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if len(text) > max_length or not _DNS_LABEL.match(text):
            raise ValueError(text)
        return text

    return parse


def _optional_name(text: str) -> str:
    if text != text.strip():
        raise ValueError(text)
    return text


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError(text)
    return text


def cpu_millicores(text: str) -> float:
    """A CPU quantity in millicores ("250m" -> 250, "1.5" -> 1500); ValueError if malformed or zero."""
    match = _CPU.match(text)
    if not match or float(match.group(1)) == 0:
        raise ValueError(text)
    return float(match.group(1)) * (1 if match.group(2) else 1000)


def memory_bytes(text: str) -> int:
    """A memory quantity in bytes ("256Mi" -> 268435456); ValueError if malformed or zero."""
    match = _MEMORY.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(text)
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2)]


# Docker refuses a memory limit below 6 MB; below this no service of the stack starts anyway.
_MIN_CONTAINER_MEMORY = 16 * 2**20


def memory_mib(text: str) -> int:
    """A memory quantity in whole MiB, rounded up (what pulumi-docker's `memory` takes)."""
    return -(-memory_bytes(text) // 2**20)


def _container_memory(text: str) -> str:
    if memory_bytes(text) < _MIN_CONTAINER_MEMORY:
        raise ValueError(text)
    return text


def _quantity(measure: Callable[[str], float]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        measure(text)
        return text

    return parse


def _user(text: str) -> str:
    if not text or ":" in text or text != text.strip():
        raise ValueError(text)
    return text


def _password(text: str) -> str:
    if len(text) < 8 or text.lower() == "admin":
        raise ValueError(text)
    return text


BOTH = frozenset(TARGETS)
DOCKER_ONLY = frozenset({DOCKER})
KUBERNETES_ONLY = frozenset({KUBERNETES})


@dataclass(frozen=True)
class _Key:
    name: str  # the config key (without namespace)
    field: str  # the StackSettings field it sets, or the AlertSettings field when `alert_setting`
    default: str | None
    parse: Callable[[str], Any]
    allowed: str
    secret: bool = False
    alert_setting: bool = False  # an AlertSettings field (AlertSettings validates its range)
    targets: frozenset[str] = BOTH  # the targets the key means something on


def _threshold(name: str, field_name: str, allowed: str) -> _Key:
    default = repr(getattr(DEFAULT_SETTINGS, field_name))
    return _Key(name, field_name, default, _number, allowed, alert_setting=True)


# Every key, the field it sets, its default (as the string Pulumi stores) and its allowed values.
KEYS: tuple[_Key, ...] = (
    _Key("target", "target", DOCKER, _choice(*TARGETS), " | ".join(TARGETS) + " (where the stack runs)"),
    _Key(
        "modelServerBaseImage",
        "model_server_base_image",
        "python:3.11-slim",
        _image,
        "an image reference with Python >= 3.11",
    ),
    _Key(
        "modelServerReplicas",
        "model_server_replicas",
        "2",
        _integer(1, 16),
        "an integer from 1 to 16 (kubernetes: the Deployment's replicas and the autoscaler's minimum)",
    ),
    _Key(
        "modelServerHostPort",
        "model_server_host_port",
        "8000",
        _integer(1, 65535),
        "a port 1-65535 (the gateway: the model API's one endpoint; with modelServerReplicaPorts, "
        "replica i also publishes port + 1 + i)",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "modelServerReplicaPorts",
        "model_server_replica_ports",
        "false",
        _boolean,
        "true | false (true: each replica also publishes a debug port, modelServerHostPort + 1 + i)",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "gatewayImage",
        "gateway_image",
        "haproxy:2.8.14",
        _image,
        "an image reference such as haproxy:2.8.14 (HAProxy 2.6 or newer, with its Prometheus exporter)",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "modelServerWorkers",
        "model_server_workers",
        "2",
        _integer(1, 16),
        "an integer from 1 to 16 (uvicorn workers per replica)",
    ),
    _Key(
        "modelServerBuildCaFile",
        "model_server_build_ca_certs",
        "",
        _pem_file,
        "empty, or the path (absolute or relative to the project) of a PEM file of extra CAs pip must trust "
        "while building the image (a TLS-intercepting proxy)",
    ),
    _Key("chaosEnabled", "chaos_enabled", "false", _boolean, "true | false"),
    _Key(
        "prometheusImage",
        "prometheus_image",
        "prom/prometheus:v2.53.4",
        _image,
        "an image reference such as prom/prometheus:v2.53.4",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "prometheusHostPort",
        "prometheus_host_port",
        "9090",
        _integer(1, 65535),
        "a port 1-65535",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "scrapeInterval",
        "scrape_interval",
        "15s",
        _duration(1, 60),
        "a Prometheus duration from 1s to 1m, e.g. 15s",
    ),
    _Key(
        "retention",
        "retention",
        "15d",
        _duration(86400, 10 * 365 * 86400),
        "a Prometheus duration of at least 1d, e.g. 15d (the prediction-shift alert looks a day back)",
    ),
    _Key(
        "grafanaImage",
        "grafana_image",
        "grafana/grafana:11.6.0",
        _image,
        "an image reference such as grafana/grafana:11.6.0",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "grafanaHostPort",
        "grafana_host_port",
        "3000",
        _integer(1, 65535),
        "a port 1-65535",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "grafanaAdminUser",
        "grafana_admin_user",
        "admin",
        _user,
        "a non-empty user name without ':' or surrounding spaces",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "grafanaAdminPassword",
        "grafana_admin_password",
        None,
        _password,
        "unset (a random password is generated) or a secret of at least 8 characters other than 'admin', "
        "set with `pulumi config set --secret grafanaAdminPassword ...`",
        secret=True,
        targets=DOCKER_ONLY,
    ),
    _Key(
        "alertmanagerImage",
        "alertmanager_image",
        "prom/alertmanager:v0.28.1",
        _image,
        "an image reference such as prom/alertmanager:v0.28.1 (alertEngine prometheus or both)",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "alertmanagerHostPort",
        "alertmanager_host_port",
        "9093",
        _integer(1, 65535),
        "a port 1-65535",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "bindAddress",
        "bind_address",
        "127.0.0.1",
        _ip_address,
        "an IP address of this host, e.g. 127.0.0.1 or 0.0.0.0",
        targets=DOCKER_ONLY,
    ),
    _Key("alertEngine", "alert_engine", "both", _choice(*ALERT_ENGINES), " | ".join(ALERT_ENGINES)),
    _Key(
        "webhookUrl",
        "webhook_url",
        "",
        _webhook_url,
        "empty (no catch-all notifications) or a secret http(s):// URL: the catch-all receiver (what "
        "neither pagerWebhookUrl nor ticketWebhookUrl takes), set with "
        "`pulumi config set --secret webhookUrl ...`",
        secret=True,
    ),
    _Key(
        "pagerWebhookUrl",
        "pager_webhook_url",
        None,
        _webhook_url,
        "unset, or a secret http(s):// URL that receives the severity=critical alerts, "
        "set with `pulumi config set --secret pagerWebhookUrl ...`",
        secret=True,
    ),
    _Key(
        "ticketWebhookUrl",
        "ticket_webhook_url",
        None,
        _webhook_url,
        "unset, or a secret http(s):// URL that receives the severity=warning alerts, "
        "set with `pulumi config set --secret ticketWebhookUrl ...`",
        secret=True,
    ),
    _threshold("errorRateThreshold", "error_rate_threshold", "a share of 5xx responses, 0 < x < 1"),
    _threshold(
        "latencyP95Seconds",
        "latency_p95_seconds",
        "a bucket bound of model_request_duration_seconds in seconds (0.005 ... 10; default 0.5)",
    ),
    _threshold("predictionShiftThreshold", "prediction_shift_threshold", "0 < x < 1"),
    _threshold("featureDriftPsiThreshold", "feature_drift_psi_threshold", "a PSI value, x > 0"),
    _threshold(
        "availabilitySlo",
        "availability_slo",
        "0 (off) or 0.5 <= x < 1: the share of model API requests not answered with 5xx",
    ),
    _threshold(
        "latencySlo",
        "latency_slo",
        "0 (off) or 0.5 <= x < 1: the share of /predict requests faster than latencyP95Seconds",
    ),
    _Key(
        "runbookBaseUrl",
        "runbook_base_url",
        "",
        _url,
        "empty (runbook_url links open the stack's Runbooks dashboard) or the http(s):// URL of "
        "docs/runbooks, e.g. the repository's web URL (links become <url>/<AlertName>.md)",
        alert_setting=True,
    ),
    # Long-term storage (both targets; on kubernetes only with installPrometheusOperator).
    _Key(
        "prometheusRemoteWriteUrl",
        "prometheus_remote_write_url",
        "",
        _url,
        "empty (no remote_write) or the http(s):// push URL of Mimir, Thanos Receive, Cortex or another "
        "Prometheus remote-write receiver",
    ),
    _Key(
        "prometheusRemoteWriteUsername",
        "prometheus_remote_write_username",
        "",
        _optional_name,
        "empty, or the basic-auth user name (with the secret prometheusRemoteWritePassword)",
    ),
    _Key(
        "prometheusRemoteWritePassword",
        "prometheus_remote_write_password",
        None,
        _non_empty,
        "unset, or a secret: the basic-auth password (with prometheusRemoteWriteUsername), "
        "set with `pulumi config set --secret prometheusRemoteWritePassword ...`",
        secret=True,
    ),
    _Key(
        "prometheusRemoteWriteBearerToken",
        "prometheus_remote_write_bearer_token",
        None,
        _non_empty,
        "unset, or a secret: a bearer token (instead of basic auth), "
        "set with `pulumi config set --secret prometheusRemoteWriteBearerToken ...`",
        secret=True,
    ),
    # The kubernetes target.
    _Key(
        "kubernetesNamespace",
        "kubernetes_namespace",
        "model-monitoring",
        _dns_label(63),
        "a DNS label (lower-case letters, digits, '-'; at most 63): the namespace the program creates",
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "kubeconfig",
        "kubeconfig",
        None,
        _non_empty,
        "unset (the ambient kubeconfig) or a secret: the kubeconfig's contents or path, "
        "set with `pulumi config set --secret kubeconfig ...`",
        secret=True,
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "kubernetesContext",
        "kubernetes_context",
        "",
        _optional_name,
        "empty (the kubeconfig's current context) or a context name",
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "imageRegistry",
        "image_registry",
        "",
        _registry,
        "the registry (and path) the model-server image is pushed to, e.g. registry.example.com/team; "
        "required for target kubernetes",
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "imageRegistryUsername",
        "image_registry_username",
        "",
        _optional_name,
        "empty (the registry needs no login) or the user name (with the secret imageRegistryPassword)",
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "imageRegistryPassword",
        "image_registry_password",
        None,
        _non_empty,
        "unset, or a secret: the registry password or token (with imageRegistryUsername), "
        "set with `pulumi config set --secret imageRegistryPassword ...`",
        secret=True,
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "prometheusOperatorRelease",
        "prometheus_operator_release",
        "kube-prometheus-stack",
        _dns_label(53),
        "a Helm release name (DNS label, at most 53 characters): the `release` label the operator selects",
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "installPrometheusOperator",
        "install_prometheus_operator",
        "false",
        _boolean,
        "true (install kube-prometheus-stack into kubernetesNamespace) | false (the cluster has it)",
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "grafanaUrl",
        "grafana_url",
        "",
        _url,
        "empty (dashboards go as ConfigMaps for Grafana's sidecar) or the http(s):// URL of the cluster's "
        "Grafana as reachable from where `pulumi up` runs (with the secret grafanaAuth)",
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "grafanaAuth",
        "grafana_auth",
        None,
        _non_empty,
        "unset, or a secret: 'user:password' or a service-account token for grafanaUrl, "
        "set with `pulumi config set --secret grafanaAuth ...`",
        secret=True,
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "grafanaPrometheusUrl",
        "grafana_prometheus_url",
        "",
        _url,
        "empty (the operator's Prometheus service, http://<release>-prometheus.<namespace>.svc:9090) or "
        "the http(s):// URL at which the cluster's Grafana reaches Prometheus",
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "modelServerMaxReplicas",
        "model_server_max_replicas",
        "6",
        _integer(1, 64),
        "an integer from 1 to 64, at least modelServerReplicas (the autoscaler's maximum)",
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "modelServerCpuTargetPercent",
        "model_server_cpu_target_percent",
        "70",
        _integer(10, 100),
        "an integer from 10 to 100: the autoscaler's target CPU use, in percent of the CPU request",
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "modelServerCpuRequest",
        "model_server_cpu_request",
        "250m",
        _quantity(cpu_millicores),
        "a CPU quantity such as 250m or 1, at most modelServerCpuLimit",
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "modelServerCpuLimit",
        "model_server_cpu_limit",
        "1",
        _quantity(cpu_millicores),
        "a CPU quantity such as 500m or 2",
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "modelServerMemoryRequest",
        "model_server_memory_request",
        "256Mi",
        _quantity(memory_bytes),
        "a memory quantity such as 256Mi or 1Gi, at most modelServerMemoryLimit",
        targets=KUBERNETES_ONLY,
    ),
    _Key(
        "modelServerMemoryLimit",
        "model_server_memory_limit",
        "512Mi",
        _container_memory,
        "a memory quantity of at least 16Mi such as 512Mi or 2Gi (docker: each replica container's limit)",
    ),
    # Container limits of the docker target (the model server's memory: modelServerMemoryLimit).
    _Key(
        "gatewayMemoryLimit",
        "gateway_memory_limit",
        "128Mi",
        _container_memory,
        "a memory quantity of at least 16Mi such as 128Mi (the gateway container's limit)",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "prometheusMemoryLimit",
        "prometheus_memory_limit",
        "1Gi",
        _container_memory,
        "a memory quantity of at least 16Mi such as 1Gi (the Prometheus container's limit)",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "alertmanagerMemoryLimit",
        "alertmanager_memory_limit",
        "128Mi",
        _container_memory,
        "a memory quantity of at least 16Mi such as 128Mi (the Alertmanager container's limit)",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "grafanaMemoryLimit",
        "grafana_memory_limit",
        "512Mi",
        _container_memory,
        "a memory quantity of at least 16Mi such as 512Mi (the Grafana container's limit)",
        targets=DOCKER_ONLY,
    ),
    _Key(
        "containerNofileLimit",
        "container_nofile_limit",
        "16384",
        _integer(1024, 1048576),
        "an integer from 1024 to 1048576: the open-files limit (soft and hard) of every container",
        targets=DOCKER_ONLY,
    ),
)
KEYS_BY_NAME = {key.name: key for key in KEYS}


@dataclass(frozen=True)
class StackSettings:
    """The validated stack configuration."""

    name_prefix: str  # "<project>-<stack>": Docker object names start with it
    model_server_base_image: str
    model_server_replicas: int
    model_server_host_port: int
    model_server_replica_ports: bool
    gateway_image: str
    model_server_workers: int
    chaos_enabled: bool
    prometheus_image: str
    prometheus_host_port: int
    scrape_interval: str
    retention: str
    grafana_image: str
    grafana_host_port: int
    grafana_admin_user: str
    alertmanager_image: str
    alertmanager_host_port: int
    bind_address: str
    alert_engine: str
    alerts: AlertSettings
    target: str  # DOCKER | KUBERNETES
    prometheus_remote_write_url: str  # "" = no remote_write
    prometheus_remote_write_username: str
    kubernetes_namespace: str
    kubernetes_context: str
    image_registry: str
    image_registry_username: str
    prometheus_operator_release: str
    install_prometheus_operator: bool
    grafana_url: str  # kubernetes: "" = dashboards as ConfigMaps for Grafana's sidecar
    grafana_prometheus_url: str
    model_server_max_replicas: int
    model_server_cpu_target_percent: int
    model_server_cpu_request: str
    model_server_cpu_limit: str
    model_server_memory_request: str
    model_server_memory_limit: str
    gateway_memory_limit: str
    prometheus_memory_limit: str
    alertmanager_memory_limit: str
    grafana_memory_limit: str
    container_nofile_limit: int
    # Secrets: kept out of repr so they never reach a log.
    grafana_admin_password: str | None = field(default=None, repr=False)
    webhook_url: str = field(default="", repr=False)
    pager_webhook_url: str | None = field(default=None, repr=False)
    ticket_webhook_url: str | None = field(default=None, repr=False)
    prometheus_remote_write_password: str | None = field(default=None, repr=False)
    prometheus_remote_write_bearer_token: str | None = field(default=None, repr=False)
    kubeconfig: str | None = field(default=None, repr=False)
    image_registry_password: str | None = field(default=None, repr=False)
    grafana_auth: str | None = field(default=None, repr=False)
    # The PEM text of the modelServerBuildCaFile file ("" when unset); long, so kept out of repr.
    model_server_build_ca_certs: str = field(default="", repr=False)

    @property
    def client_host(self) -> str:
        """Host part of the URLs users (and the Grafana provider) open: the bind address, or loopback."""
        address = ipaddress.ip_address(self.bind_address)
        if address.is_unspecified:
            address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
        return f"[{address}]" if address.version == 6 else str(address)

    @property
    def grafana_alert_rules(self) -> bool:
        """Grafana evaluates the alert rules (and notifies)."""
        return self.alert_engine in ("grafana", "both")

    @property
    def prometheus_alert_rules(self) -> bool:
        """Prometheus evaluates the alert rules too (it always evaluates the recording rules)."""
        return self.alert_engine in ("prometheus", "both")

    @property
    def notification_routing(self) -> Routing:
        """Where notifications go (Grafana's policy and Alertmanager's route tree, the same routing)."""
        return notification_routing(
            self.pager_webhook_url or "", self.ticket_webhook_url or "", self.webhook_url
        )

    @property
    def replica_debug_port(self) -> int | None:
        """Replica i's published port is this + i; None: replicas are reachable through the gateway only."""
        return self.model_server_host_port + 1 if self.model_server_replica_ports else None

    def replica_debug_ports(self) -> list[int]:
        first = self.replica_debug_port
        return [] if first is None else [first + i for i in range(self.model_server_replicas)]


def _error(key: str, raw: str, detail: str = "") -> str:
    """The message for a known key with a bad value (unknown keys are reported on their own)."""
    spec = KEYS_BY_NAME[key]
    shown = "<secret>" if spec.secret else repr(raw)
    return f"{NAMESPACE}:{key} = {shown} is invalid{detail}; allowed: {spec.allowed}"


def parse_settings(
    raw: Mapping[str, str],
    secret_keys: frozenset[str] = frozenset(),
    name_prefix: str = "model-monitoring-dev",
) -> StackSettings:
    """Validate raw config values (key without namespace -> string) into StackSettings.

    Raises ConfigError listing every invalid key with its allowed values.
    """
    errors: list[str] = []
    unknown = sorted(set(raw) - set(KEYS_BY_NAME))
    errors += [
        f"{NAMESPACE}:{name} is not a known key; allowed keys: {', '.join(sorted(KEYS_BY_NAME))}"
        for name in unknown
    ]

    values: dict[str, Any] = {}
    for key in KEYS:
        text = raw.get(key.name, key.default)
        if text is None:
            values[key.name] = None
            continue
        try:
            values[key.name] = key.parse(text)
        except ValueError:
            errors.append(_error(key.name, text))
            continue
        # An empty value holds no secret, so it may be stored in plain text.
        if key.secret and text and key.name not in secret_keys:
            errors.append(_error(key.name, text, " (stored in plain text)"))

    for key in KEYS:
        if key.alert_setting and key.name in values:
            try:
                AlertSettings(**{key.field: values[key.name]})
            except ValueError as exc:
                errors.append(_error(key.name, raw.get(key.name, key.default), f" ({exc})"))
    errors += _target_conflicts(raw, values)
    if values.get("target") == DOCKER:
        errors += _port_conflicts(values)

    if errors:
        raise ConfigError("invalid stack configuration:\n  " + "\n  ".join(errors))

    alerts = AlertSettings(
        **{key.field: values[key.name] for key in KEYS if key.alert_setting},
        # The Docker target serves the model API through its gateway (on Kubernetes: a Service).
        gateway=values["target"] == DOCKER,
    )
    plain = {key.field: values[key.name] for key in KEYS if not key.alert_setting}
    return StackSettings(name_prefix=name_prefix, alerts=alerts, **plain)


def _is_set(raw: Mapping[str, str], values: Mapping[str, Any], name: str) -> bool:
    """The key is in the config with a value other than its default (a listed default means nothing)."""
    key = KEYS_BY_NAME[name]
    if name not in raw or name not in values:
        return False
    return key.default is None or values[name] != key.parse(key.default)


def _target_conflicts(raw: Mapping[str, str], values: Mapping[str, Any]) -> list[str]:
    """Keys of the other target, and keys that only mean something together."""
    target = values.get("target")
    if target not in TARGETS:
        return []  # already reported
    errors = []
    for key in KEYS:
        if target not in key.targets and _is_set(raw, values, key.name):
            (other,) = key.targets
            errors.append(
                f"{NAMESPACE}:{key.name} applies only to target {other} (target is {target}); "
                f"remove it with `pulumi config rm {key.name}` or set target {other}"
            )

    def requires(name: str, other: str, what: str) -> None:
        if _is_set(raw, values, name) and not _is_set(raw, values, other):
            errors.append(f"{NAMESPACE}:{name} needs {NAMESPACE}:{other} ({what})")

    requires("prometheusRemoteWriteUsername", "prometheusRemoteWritePassword", "basic auth takes both")
    requires("prometheusRemoteWritePassword", "prometheusRemoteWriteUsername", "basic auth takes both")
    for name in ("prometheusRemoteWriteUsername", "prometheusRemoteWriteBearerToken"):
        requires(name, "prometheusRemoteWriteUrl", "where to write")
    if _is_set(raw, values, "prometheusRemoteWriteBearerToken") and _is_set(
        raw, values, "prometheusRemoteWriteUsername"
    ):
        errors.append(
            f"{NAMESPACE}:prometheusRemoteWriteBearerToken and basic auth (prometheusRemoteWriteUsername) "
            "exclude each other: set one"
        )

    if target == KUBERNETES:
        if not values.get("imageRegistry"):
            errors.append(
                f"{NAMESPACE}:imageRegistry is required for target kubernetes (the cluster pulls the "
                "model-server image from there), "
                "e.g. `pulumi config set imageRegistry registry.example.com/team`"
            )
        requires("imageRegistryUsername", "imageRegistryPassword", "a registry login takes both")
        requires("imageRegistryPassword", "imageRegistryUsername", "a registry login takes both")
        requires("grafanaUrl", "grafanaAuth", "the credentials for that Grafana")
        requires("grafanaAuth", "grafanaUrl", "the Grafana they log in to")
        if not values.get("installPrometheusOperator"):
            for name in ("retention", "prometheusRemoteWriteUrl"):
                if _is_set(raw, values, name):
                    errors.append(
                        f"{NAMESPACE}:{name} reaches the operator's Prometheus only when the program "
                        "installs it: set installPrometheusOperator true, or configure the cluster's own "
                        "Prometheus resource"
                    )
        if not values.get("grafanaUrl"):
            if values.get("alertEngine") == "grafana":
                errors.append(
                    f"{NAMESPACE}:alertEngine = 'grafana' needs grafanaUrl on target kubernetes "
                    "(without it alerts go only through the PrometheusRule): use prometheus or both"
                )
            for name in ("webhookUrl", "pagerWebhookUrl", "ticketWebhookUrl"):
                if _is_set(raw, values, name) and values[name]:
                    errors.append(
                        f"{NAMESPACE}:{name} needs grafanaUrl on target kubernetes (Grafana sends the "
                        "notifications); without it route alerts with the cluster's Alertmanager"
                    )
        errors += _kubernetes_bounds(values)
    return errors


def _kubernetes_bounds(values: Mapping[str, Any]) -> list[str]:
    errors = []
    low, high = values.get("modelServerReplicas"), values.get("modelServerMaxReplicas")
    if isinstance(low, int) and isinstance(high, int) and high < low:
        errors.append(_error("modelServerMaxReplicas", str(high), f" (below modelServerReplicas = {low})"))
    for kind, measure in (("Cpu", cpu_millicores), ("Memory", memory_bytes)):
        request, limit = values.get(f"modelServer{kind}Request"), values.get(f"modelServer{kind}Limit")
        if isinstance(request, str) and isinstance(limit, str) and measure(request) > measure(limit):
            errors.append(
                _error(f"modelServer{kind}Request", request, f" (above modelServer{kind}Limit = {limit})")
            )
    return errors


_SERVICE_PORT_KEYS = ("prometheusHostPort", "grafanaHostPort", "alertmanagerHostPort")


def _port_conflicts(values: Mapping[str, Any]) -> list[str]:
    if not all(
        isinstance(values.get(k), int)
        for k in (*_SERVICE_PORT_KEYS, "modelServerHostPort", "modelServerReplicas")
    ):
        return []  # already reported
    first, replicas = values["modelServerHostPort"], values["modelServerReplicas"]
    # The gateway's port, and the replicas' debug ports after it when they are published.
    last = first + (replicas if values.get("modelServerReplicaPorts") is True else 0)
    model_ports = range(first, last + 1)
    shown = str(first) if last == first else f"{first}-{last}"
    errors = []
    if last > 65535:
        errors.append(_error("modelServerHostPort", str(first), f" (replica ports {shown} exceed 65535)"))
    for i, key in enumerate(_SERVICE_PORT_KEYS):
        port = values[key]
        if port in model_ports:
            detail = f" (collides with the model API port{'s' if last > first else ''} {shown})"
            errors.append(_error(key, str(port), detail))
        for other in _SERVICE_PORT_KEYS[:i]:
            if port == values[other]:
                errors.append(_error(key, str(port), f" (same as {other})"))
    return errors


def _namespace_keys() -> set[str]:
    """Every key set in the stack's `model-monitoring` namespace (to reject typos): the language host
    hands the program its whole config as PULUMI_CONFIG, which `get_config_env` reads."""
    prefix = f"{NAMESPACE}:"
    return {k[len(prefix) :] for k in pulumi.runtime.get_config_env() if k.startswith(prefix)}


def load_settings() -> StackSettings:
    """Read the `model-monitoring` namespace of the running stack's config and validate it."""
    config = pulumi.Config(NAMESPACE)
    names = _namespace_keys() | set(KEYS_BY_NAME)
    raw = {name: value for name in sorted(names) if (value := config.get(name)) is not None}
    secret = frozenset(name for name in raw if pulumi.runtime.is_config_secret(config.full_key(name)))
    return parse_settings(raw, secret, name_prefix=f"{pulumi.get_project()}-{pulumi.get_stack()}")
