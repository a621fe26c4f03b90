"""infra/config.py: defaults match Pulumi.dev.yaml; bad values are refused naming key and allowed values."""

import re
from dataclasses import replace

import pytest

from dashboards.settings import DEFAULT_SETTINGS, AlertSettings
from infra.config import (
    KEYS,
    KEYS_BY_NAME,
    ConfigError,
    StackSettings,
    cpu_millicores,
    memory_bytes,
    memory_mib,
    parse_duration,
    parse_settings,
)
from tests.support.pulumi_mocks import stack_config


def _error(raw: dict[str, str], secret: frozenset[str] = frozenset()) -> str:
    with pytest.raises(ConfigError) as error:
        parse_settings(raw, secret)
    return str(error.value)


def test_pulumi_dev_yaml_spells_out_every_key_at_its_default():
    documented = stack_config("dev")
    # Secrets without a default have none to spell out (absent = unset); every other key is listed
    # (webhookUrl, a secret, at its empty default: an empty value holds no secret).
    assert set(documented) == {k.name for k in KEYS if k.default is not None}
    assert documented == {k.name: k.default for k in KEYS if k.default is not None}
    assert parse_settings(documented) == parse_settings({})


def test_defaults():
    settings = parse_settings({})
    assert settings.model_server_replicas == 2
    assert settings.bind_address == "127.0.0.1"
    assert settings.scrape_interval == "15s"
    assert settings.alert_engine == "both"
    assert settings.grafana_admin_password is None
    assert settings.webhook_url == ""
    # Thresholds are the dashboards' defaults: one source for every number.
    # The Docker target (the default) serves the model API through its gateway.
    assert settings.alerts == replace(DEFAULT_SETTINGS, gateway=True)


def test_values_are_parsed_into_types():
    settings = parse_settings(
        {
            "modelServerReplicas": "3",
            "chaosEnabled": "True",
            "bindAddress": "0.0.0.0",
            "errorRateThreshold": "0.1",
            "alertEngine": "prometheus",
            "webhookUrl": "https://hooks.example.com/x",
            "grafanaAdminPassword": "s3cret-enough",
        },
        frozenset({"grafanaAdminPassword", "webhookUrl"}),
    )
    assert settings.model_server_replicas == 3
    assert settings.chaos_enabled is True
    assert settings.replica_debug_ports() == []  # replicas are reached through the gateway only
    assert settings.client_host == "127.0.0.1"
    assert settings.alerts == AlertSettings(error_rate_threshold=0.1, gateway=True)
    assert not settings.grafana_alert_rules
    assert settings.prometheus_alert_rules
    assert settings.webhook_url == "https://hooks.example.com/x"


def test_secrets_stay_out_of_repr():
    settings = parse_settings(
        {"grafanaAdminPassword": "s3cret-enough", "webhookUrl": "https://h.example/tok"},
        frozenset({"grafanaAdminPassword", "webhookUrl"}),
    )
    assert "s3cret-enough" not in repr(settings)
    assert "tok" not in repr(settings)


def test_ipv6_bind_address_gives_bracketed_urls():
    assert parse_settings({"bindAddress": "::1"}).client_host == "[::1]"
    assert parse_settings({"bindAddress": "::"}).client_host == "[::1]"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("modelServerReplicas", "two"),
        ("modelServerReplicas", "17"),
        ("modelServerHostPort", "0"),
        ("prometheusHostPort", "65536"),
        ("chaosEnabled", "yes please"),
        ("scrapeInterval", "0s"),
        ("scrapeInterval", "15"),
        ("retention", "2h"),
        ("alertEngine", "Grafana"),
        ("bindAddress", "256.0.0.1"),
        ("grafanaAdminUser", "ad:min"),
        ("grafanaAdminUser", ""),
        ("prometheusImage", "prom/prometheus latest"),
        ("grafanaImage", ""),
        ("errorRateThreshold", "0"),
        ("errorRateThreshold", "nan"),
        ("latencyP95Seconds", "-1"),
        ("predictionShiftThreshold", "1"),
        ("featureDriftPsiThreshold", "zero"),
        ("latencyP95Seconds", "0.6"),  # not a bucket bound: the latency SLO could not count it
        ("availabilitySlo", "0.3"),
        ("availabilitySlo", "1"),
        ("latencySlo", "99"),
        ("runbookBaseUrl", "docs/runbooks"),
        ("gatewayMemoryLimit", "8Mi"),  # below Docker's floor and what any service needs
        ("prometheusMemoryLimit", "1GB"),
        ("grafanaMemoryLimit", "-512Mi"),
        ("modelServerMemoryLimit", "0"),
        ("containerNofileLimit", "1023"),
        ("containerNofileLimit", "2000000"),
    ],
)
def test_each_invalid_value_names_the_key_and_its_allowed_values(key, value):
    message = _error({key: value})
    assert f"model-monitoring:{key} = {value!r} is invalid" in message
    assert KEYS_BY_NAME[key].allowed in message


def test_container_memory_limits_are_whole_mib_rounded_up():
    settings = parse_settings({"gatewayMemoryLimit": "100M", "prometheusMemoryLimit": "2Gi"})
    assert memory_mib(settings.gateway_memory_limit) == 96  # 100e6 bytes = 95.4 MiB
    assert memory_mib(settings.prometheus_memory_limit) == 2048
    assert memory_mib("16Mi") == 16


def test_all_problems_are_reported_at_once():
    message = _error({"modelServerReplicas": "0", "alertEngine": "x", "latencyP95Seconds": "0"})
    for key in ("modelServerReplicas", "alertEngine", "latencyP95Seconds"):
        assert f"model-monitoring:{key}" in message


def test_replica_debug_ports_follow_the_gateway_port():
    settings = parse_settings({"modelServerReplicas": "3", "modelServerReplicaPorts": "true"})
    assert settings.replica_debug_ports() == [8001, 8002, 8003]


def test_port_collisions_are_refused():
    assert "collides with the model API port 8000" in _error({"grafanaHostPort": "8000"})
    # Without debug ports, the port after the gateway's is free.
    assert parse_settings({"modelServerReplicas": "3", "grafanaHostPort": "8001"}).grafana_host_port == 8001
    assert "collides with the model API ports 8000-8003" in _error(
        {"modelServerReplicas": "3", "modelServerReplicaPorts": "true", "grafanaHostPort": "8003"}
    )
    assert "same as prometheusHostPort" in _error({"grafanaHostPort": "9090"})
    assert "exceed 65535" in _error({"modelServerHostPort": "65535", "modelServerReplicaPorts": "true"})
    assert parse_settings({"modelServerHostPort": "65535"}).model_server_host_port == 65535


def test_unknown_keys_are_refused_listing_the_known_ones():
    message = _error({"scrapeIntervall": "15s"})
    assert "model-monitoring:scrapeIntervall is not a known key" in message
    assert "scrapeInterval" in message.split("allowed keys:")[1]


def test_admin_password_must_be_a_strong_secret_and_is_never_echoed():
    weak = _error({"grafanaAdminPassword": "admin"}, frozenset({"grafanaAdminPassword"}))
    assert "model-monitoring:grafanaAdminPassword = <secret> is invalid" in weak
    assert "'admin'" not in weak.split("allowed:")[0]
    plain = _error({"grafanaAdminPassword": "long-enough-pass"})
    assert "stored in plain text" in plain
    assert "pulumi config set --secret grafanaAdminPassword" in plain
    assert "long-enough-pass" not in plain


@pytest.mark.parametrize("key", ["webhookUrl", "pagerWebhookUrl", "ticketWebhookUrl"])
def test_webhooks_are_secrets_never_echoed(key):
    url = "https://hooks.example.com/services/T0/B0/tok3n"
    plain = _error({key: url})
    assert f"model-monitoring:{key} = <secret> is invalid (stored in plain text)" in plain
    assert "tok3n" not in plain
    bad = _error({key: "hooks.example.com/tok3n"}, frozenset({key}))
    assert f"model-monitoring:{key} = <secret> is invalid" in bad
    assert "tok3n" not in bad
    settings = parse_settings({key: url}, frozenset({key}))
    assert "tok3n" not in repr(settings)
    # Empty holds nothing secret: allowed in plain text, and means "no such receiver".
    assert not parse_settings({key: ""}).notification_routing.sends_anything


def test_notification_routing_from_the_three_webhook_keys():
    secrets = frozenset({"pagerWebhookUrl", "ticketWebhookUrl", "webhookUrl"})
    pager, ticket, catch_all = "https://p.example/1", "https://t.example/2", "https://c.example/3"
    routing = parse_settings(
        {"pagerWebhookUrl": pager, "ticketWebhookUrl": ticket, "webhookUrl": catch_all}, secrets
    ).notification_routing
    assert [(str(r.severity), r.receiver) for r in routing.routes] == [
        ("critical", "model-monitoring-pager"),
        ("warning", "model-monitoring-ticket"),
    ]
    assert {r.name: r.url for r in routing.receivers} == {
        "model-monitoring-webhook": catch_all,
        "model-monitoring-pager": pager,
        "model-monitoring-ticket": ticket,
    }
    assert not parse_settings({}).notification_routing.sends_anything


def test_settings_are_frozen():
    settings = parse_settings({})
    assert isinstance(settings, StackSettings)
    with pytest.raises(AttributeError):
        settings.model_server_replicas = 5  # type: ignore[misc]


@pytest.mark.parametrize(("text", "seconds"), [("15s", 15), ("1m", 60), ("1h30m", 5400), ("15d", 15 * 86400)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "1m1h", "s", "-5s"])
def test_parse_duration_rejects_malformed(text):
    with pytest.raises(ValueError, match=text or "^$"):
        parse_duration(text)


# --- targets ---------------------------------------------------------------------------------------------

KUBERNETES = {"target": "kubernetes", "imageRegistry": "registry.example.com/team"}


def test_kubernetes_defaults():
    settings = parse_settings(KUBERNETES)
    assert settings.target == "kubernetes"
    assert settings.kubernetes_namespace == "model-monitoring"
    assert settings.prometheus_operator_release == "kube-prometheus-stack"
    assert settings.install_prometheus_operator is False
    assert settings.kubeconfig is None
    assert settings.grafana_url == ""
    assert (settings.model_server_replicas, settings.model_server_max_replicas) == (2, 6)


def test_every_key_belongs_to_a_target():
    assert {k.name for k in KEYS if k.targets == {"docker"}} >= {"bindAddress", "grafanaHostPort"}
    assert {k.name for k in KEYS if k.targets == {"kubernetes"}} >= {
        "kubernetesNamespace",
        "kubeconfig",
        "kubernetesContext",
        "imageRegistry",
        "prometheusOperatorRelease",
        "installPrometheusOperator",
        "grafanaUrl",
        "grafanaAuth",
    }
    assert all(k.targets for k in KEYS)


def test_keys_of_the_other_target_are_refused_only_when_they_mean_something():
    # Listed at their defaults (as Pulumi.dev.yaml does) they are harmless.
    documented = stack_config("dev")
    assert parse_settings(documented | KUBERNETES).target == "kubernetes"
    message = _error(KUBERNETES | {"prometheusHostPort": "9091", "grafanaAdminUser": "root"})
    assert "prometheusHostPort applies only to target docker (target is kubernetes)" in message
    assert "grafanaAdminUser applies only to target docker" in message
    message = _error({"kubernetesNamespace": "ml", "grafanaUrl": "https://g.example.com"})
    assert "kubernetesNamespace applies only to target kubernetes (target is docker)" in message
    assert "grafanaUrl applies only to target kubernetes" in message


def test_a_kubernetes_secret_on_the_docker_target_is_refused():
    message = _error({"kubeconfig": "apiVersion: v1"}, frozenset({"kubeconfig"}))
    assert "kubeconfig applies only to target kubernetes" in message
    assert "apiVersion" not in message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"prometheusRemoteWriteUsername": "u"}, "prometheusRemoteWriteUsername needs"),
        ({"prometheusRemoteWritePassword": "p"}, "prometheusRemoteWritePassword needs"),
        ({"prometheusRemoteWriteBearerToken": "t"}, "needs model-monitoring:prometheusRemoteWriteUrl"),
        (
            {
                "prometheusRemoteWriteUrl": "https://m.example.com/push",
                "prometheusRemoteWriteUsername": "u",
                "prometheusRemoteWritePassword": "p",
                "prometheusRemoteWriteBearerToken": "t",
            },
            "exclude each other",
        ),
        ({"prometheusRemoteWriteUrl": "mimir:9009"}, "prometheusRemoteWriteUrl = 'mimir:9009' is invalid"),
        (
            KUBERNETES | {"prometheusRemoteWriteUrl": "https://m.example.com/push"},
            "installPrometheusOperator",
        ),
        (KUBERNETES | {"imageRegistryUsername": "robot"}, "imageRegistryUsername needs"),
        (KUBERNETES | {"grafanaAuth": "admin:x"}, "grafanaAuth needs model-monitoring:grafanaUrl"),
        (KUBERNETES | {"webhookUrl": "https://hooks.example.com/x"}, "webhookUrl needs grafanaUrl"),
        (KUBERNETES | {"pagerWebhookUrl": "https://hooks.example.com/p"}, "pagerWebhookUrl needs grafanaUrl"),
        (
            KUBERNETES | {"ticketWebhookUrl": "https://hooks.example.com/t"},
            "ticketWebhookUrl needs grafanaUrl",
        ),
        (KUBERNETES | {"prometheusOperatorRelease": "x" * 54}, "prometheusOperatorRelease = "),
        ({"target": "swarm"}, "target = 'swarm' is invalid"),
    ],
)
def test_keys_that_only_mean_something_together(raw, message):
    secrets = frozenset(k.name for k in KEYS if k.secret)
    assert message in _error(raw, secrets)


def test_remote_write_on_both_targets_and_secrets_stay_out_of_repr():
    raw = {
        "prometheusRemoteWriteUrl": "https://m.example.com/push",
        "prometheusRemoteWriteUsername": "u",
        "prometheusRemoteWritePassword": "remote-pass",
    }
    secrets = frozenset({"prometheusRemoteWritePassword", "imageRegistryPassword", "grafanaAuth"})
    docker = parse_settings(raw, secrets)
    assert docker.prometheus_remote_write_password == "remote-pass"
    kubernetes = parse_settings(
        raw
        | KUBERNETES
        | {
            "installPrometheusOperator": "true",
            "imageRegistryUsername": "robot",
            "imageRegistryPassword": "registry-pass",
            "grafanaUrl": "https://g.example.com",
            "grafanaAuth": "admin:grafana-pass",
        },
        secrets,
    )
    for secret in ("remote-pass", "registry-pass", "grafana-pass"):
        assert secret not in repr(kubernetes)
    assert "stored in plain text" in _error(raw)


@pytest.mark.parametrize(("text", "millicores"), [("250m", 250), ("1", 1000), ("0.5", 500), ("2", 2000)])
def test_cpu_quantities(text, millicores):
    assert cpu_millicores(text) == millicores


@pytest.mark.parametrize(("text", "size"), [("256Mi", 256 * 2**20), ("1Gi", 2**30), ("512M", 512 * 10**6)])
def test_memory_quantities(text, size):
    assert memory_bytes(text) == size


@pytest.mark.parametrize("text", ["", "0", "1.5Gi", "256mi", "-1"])
def test_memory_quantities_reject_malformed(text):
    with pytest.raises(ValueError, match=f"^{re.escape(text)}$"):
        memory_bytes(text)


def test_slo_and_runbook_keys_reach_the_alert_settings():
    from infra.config import parse_settings

    settings = parse_settings(
        {
            "availabilitySlo": "0",
            "latencySlo": "0.95",
            "runbookBaseUrl": "https://git.example.com/r/docs/runbooks",
        }
    )
    assert settings.alerts.availability_slo == 0
    assert settings.alerts.latency_slo == 0.95
    assert settings.alerts.runbook_base_url == "https://git.example.com/r/docs/runbooks"
