"""The real Pulumi program under mocks: what `pulumi up` would create, asserted on the declared inputs."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from dashboards import alerts, queries
from dashboards.alerts import prometheus_rule_files
from dashboards.settings import DATASOURCE_UID, AlertSettings
from infra.config import ConfigError
from server import contract
from tests.support import HASH_SEEDS
from tests.support.pulumi_mocks import (
    CONTACT_POINT,
    CONTAINER,
    DASHBOARD,
    DATA_SOURCE,
    FOLDER,
    GRAFANA_PROVIDER,
    IMAGE,
    NETWORK,
    NOTIFICATION_POLICY,
    PROJECT_ROOT,
    RANDOM_PASSWORD,
    REMOTE_IMAGE,
    RULE_GROUP,
    VOLUME,
    Program,
    contains_secret,
    is_secret,
    reveal,
    run_program,
)

COMPONENTS = {
    "model-monitoring:index:ModelServer",
    "model-monitoring:index:Prometheus",
    "model-monitoring:index:Grafana",
    "model-monitoring:index:GrafanaContent",
    "model-monitoring:index:Alertmanager",
    "model-monitoring:index:Gateway",
}
# drain_seconds("15s"): the gateway's health check needs 2 failed checks 1 s apart to take a replica out,
# Prometheus one 15 s interval to scrape its last counts, plus 3 s of slack.
DEFAULT_DRAIN_SECONDS = 2 * 1 + 15 + 3
WEBHOOK = "https://hooks.example.com/services/T000/B000/secret-token"


@pytest.fixture(scope="module")
def program() -> Program:
    return run_program()


def _container(program: Program, name: str):
    return program.one(CONTAINER, name)


def _prometheus_config(program: Program) -> dict:
    uploads = _container(program, "prometheus-config").plain_inputs["uploads"]
    (config,) = [u["content"] for u in uploads if u["file"] == "/etc/prometheus/prometheus.yml"]
    return yaml.safe_load(config)


def _gateway_config(program: Program) -> str:
    (upload,) = _container(program, "gateway-config").plain_inputs["uploads"]
    assert upload["file"] == "/usr/local/etc/haproxy/haproxy.cfg"
    return upload["content"]


def _services(program: Program):
    """The long-running containers (not the config carriers, which are never started)."""
    return [r for r in program.of_type(CONTAINER) if r.inputs.get("start") is not False]


def _carriers(program: Program):
    return [r for r in program.of_type(CONTAINER) if r.inputs.get("start") is False]


def _model_server_containers(program: Program):
    return sorted(
        (r for r in program.of_type(CONTAINER) if r.name.startswith("model-server-")), key=lambda r: r.name
    )


def _walk(value):
    """Every dict nested anywhere in a JSON-like value."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


# --- structure -------------------------------------------------------------------------------------------


def test_components_own_their_resources_and_names_derive_from_the_component(program):
    components = {r.type_: r for r in program.resources if r.type_ in COMPONENTS}
    assert set(components) == COMPONENTS
    for component in components.values():
        children = program.children(component)
        assert children, component.name
        for child in children:
            assert child.name.startswith(component.name), (component.name, child.name)
            if "name" in child.inputs and child.type_ in (CONTAINER, VOLUME):
                assert child.inputs["name"] == f"model-monitoring-dev-{child.name}"


def test_one_network_and_every_container_on_it(program):
    (network,) = program.of_type(NETWORK)
    containers = _services(program)
    # Two model-server replicas (the default), the gateway, Prometheus, Grafana, Alertmanager (both).
    assert len(containers) == 2 + 4
    for container in containers:
        (attachment,) = container.inputs["networksAdvanced"]
        assert attachment["name"] == network.outputs["name"] == "model-monitoring-dev"
        assert network.urn in container.depends_on


def test_prometheus_discovers_the_replicas_by_their_aliases_and_scrapes_the_gateway(program):
    aliases = [c.inputs["networksAdvanced"][0]["aliases"] for c in _model_server_containers(program)]
    assert aliases == [["model-server-0"], ["model-server-1"]]
    replicas, gateway = _prometheus_config(program)["scrape_configs"]
    assert replicas["job_name"] == contract.JOB_NAME
    assert replicas["metrics_path"] == contract.METRICS_PATH
    # Every address behind a replica's name is a target: an old and a new container are scraped apart.
    assert replicas["dns_sd_configs"] == [
        {
            "names": [a[0] for a in aliases],
            "type": "A",
            "port": contract.SERVER_PORT,
            "refresh_interval": "15s",
        }
    ]
    assert replicas["relabel_configs"] == [
        {"source_labels": ["__meta_dns_name"], "target_label": "replica"},
        {"source_labels": ["__meta_dns_name", "__address__"], "separator": "@", "target_label": "instance"},
    ]
    assert gateway["job_name"] == contract.GATEWAY_JOB_NAME
    assert gateway["static_configs"] == [{"targets": [f"gateway:{contract.GATEWAY_METRICS_PORT}"]}]


def test_the_gateway_balances_over_the_same_replica_names(program):
    config = _gateway_config(program)
    slots = [line.split() for line in config.splitlines() if line.strip().startswith("server-template")]
    # Two slots per name: the running container and its replacement during a rollout.
    assert slots == [
        ["server-template", f"model-server-{i}-", "1-2", f"model-server-{i}:{contract.SERVER_PORT}"]
        for i in range(2)
    ]
    assert f"http-check send meth GET uri {contract.READY_PATH}" in config
    assert "nameserver docker 127.0.0.11:53" in config  # Docker's DNS: replacements are found
    assert f"bind :{contract.SERVER_PORT}" in config
    gateway = _container(program, "gateway")
    assert gateway.inputs["command"] == ["-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
    assert gateway.inputs["networksAdvanced"][0]["aliases"] == ["gateway"]


def test_every_published_port_is_bound_to_the_bind_address(program):
    published = {}
    for container in _services(program):
        for port in container.inputs["ports"]:
            assert port["ip"] == "127.0.0.1"
            published[container.name] = (int(port["internal"]), int(port["external"]))
    # The model API has one endpoint, the gateway; replicas are on the Docker network only.
    assert published == {
        "gateway": (contract.SERVER_PORT, 8000),
        "prometheus": (9090, 9090),
        "grafana": (3000, 3000),
        "alertmanager": (9093, 9093),
    }
    assert "modelServerUrls" not in program.outputs
    exposed = run_program({"bindAddress": "0.0.0.0"})
    assert {p["ip"] for c in _services(exposed) for p in c.inputs["ports"]} == {"0.0.0.0"}
    # Users (and the Grafana provider) still connect through loopback.
    assert exposed.outputs["grafanaUrl"] == "http://127.0.0.1:3000"


def test_replica_debug_ports_only_when_asked_for():
    program = run_program({"modelServerReplicaPorts": "true", "modelServerHostPort": "18000"})
    ports = [
        [(int(p["internal"]), int(p["external"]), p["ip"]) for p in c.inputs["ports"]]
        for c in _model_server_containers(program)
    ]
    assert ports == [
        [(contract.SERVER_PORT, 18001, "127.0.0.1")],
        [(contract.SERVER_PORT, 18002, "127.0.0.1")],
    ]
    assert program.outputs["modelServerUrls"] == ["http://127.0.0.1:18001", "http://127.0.0.1:18002"]
    assert program.outputs["modelServerUrl"] == "http://127.0.0.1:18000"


def test_prometheus_and_grafana_keep_their_data_on_named_volumes(program):
    volumes = {v.name: v.inputs["name"] for v in program.of_type(VOLUME) if v.name.endswith("-data")}
    assert volumes == {
        "prometheus-data": "model-monitoring-dev-prometheus-data",
        "grafana-data": "model-monitoring-dev-grafana-data",
        "alertmanager-data": "model-monitoring-dev-alertmanager-data",
    }
    assert _container(program, "alertmanager").inputs["volumes"][0] == (
        {"volumeName": volumes["alertmanager-data"], "containerPath": "/alertmanager"}
    )
    assert "--storage.path=/alertmanager" in _container(program, "alertmanager").inputs["command"]
    assert _container(program, "prometheus").inputs["volumes"][0] == (
        {"volumeName": volumes["prometheus-data"], "containerPath": "/prometheus"}
    )
    assert _container(program, "grafana").inputs["volumes"][0] == (
        {"volumeName": volumes["grafana-data"], "containerPath": "/var/lib/grafana"}
    )
    command = _container(program, "prometheus").inputs["command"]
    assert "--storage.tsdb.path=/prometheus" in command
    assert "--storage.tsdb.retention.time=15d" in command


def test_every_container_has_a_healthcheck_restart_policy_and_waits_until_healthy(program):
    for container in _services(program):
        inputs = container.plain_inputs
        assert inputs["healthcheck"]["tests"][0] in ("CMD", "CMD-SHELL"), container.name
        assert inputs["restart"] == "unless-stopped"
        assert inputs["wait"] is True
    replicas = {c.name for c in _model_server_containers(program)}
    for container in (c for c in _services(program) if c.name not in replicas):
        # Fixed container names: the old container must go before the replacement starts.
        assert container.options["deleteBeforeReplace"] is True, container.name
    assert "/api/health" in _container(program, "grafana").inputs["healthcheck"]["tests"][1]
    assert "/-/healthy" in " ".join(_container(program, "prometheus").inputs["healthcheck"]["tests"])


def test_model_server_image_is_built_from_the_repository_and_runs_by_digest(program):
    image = program.one(IMAGE)
    build = image.inputs["build"]
    # Absolute and independent of the working directory (Pulumi runs the program from infra/).
    assert build["context"] == str(PROJECT_ROOT)
    assert build["dockerfile"] == str(PROJECT_ROOT / "server" / "Dockerfile")
    assert (PROJECT_ROOT / "server" / "Dockerfile").is_file()
    assert build["args"] == {"BASE_IMAGE": "python:3.11-slim"}
    assert image.inputs["skipPush"] is True
    for container in _model_server_containers(program):
        assert container.inputs["image"] == image.outputs["repoDigest"]
        assert image.urn in container.depends_on
        assert container.inputs["envs"] == [
            "MODEL_CHAOS_ENABLED=false",
            "WEB_CONCURRENCY=2",
            f"MODEL_SHUTDOWN_DRAIN_SECONDS={DEFAULT_DRAIN_SECONDS}",
            "MODEL_GRACEFUL_SHUTDOWN_SECONDS=8",
        ]
    assert program.outputs["modelServerImage"] == image.outputs["repoDigest"]
    chaos = run_program(
        {
            "chaosEnabled": "true",
            "modelServerBaseImage": "registry.local/python:3.12",
            "modelServerWorkers": "4",
        }
    )
    assert chaos.one(IMAGE).inputs["build"]["args"] == {"BASE_IMAGE": "registry.local/python:3.12"}
    assert {tuple(reveal(c.inputs["envs"])[:2]) for c in _model_server_containers(chaos)} == {
        ("MODEL_CHAOS_ENABLED=true", "WEB_CONCURRENCY=4")
    }


def test_build_ca_file_reaches_the_image_build_only_when_set(tmp_path):
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    ca_file = tmp_path / "proxy-ca.pem"
    ca_file.write_text(pem)
    program = run_program({"modelServerBuildCaFile": str(ca_file)})
    assert program.one(IMAGE).inputs["build"]["args"] == {
        "BASE_IMAGE": "python:3.11-slim",
        "BUILD_CA_CERTS": pem,
    }


@pytest.mark.parametrize(
    ("component", "key"),
    [
        ("prometheus", "prometheusImage"),
        ("grafana", "grafanaImage"),
        ("alertmanager", "alertmanagerImage"),
        ("gateway", "gatewayImage"),
    ],
)
def test_service_images_are_pulled_once_and_run_by_id(component, key):
    program = run_program({key: f"registry.local/mirror/{component}:1.2.3"})
    image = program.one(REMOTE_IMAGE, f"{component}-image")
    assert image.inputs["name"] == f"registry.local/mirror/{component}:1.2.3"
    assert image.inputs["keepLocally"] is True  # destroy leaves the pulled image for the next up
    container = _container(program, component)
    # By id: a new tag in the config gives a new id, so the container is replaced.
    assert container.inputs["image"] == image.outputs["imageId"]
    assert image.urn in container.depends_on


@pytest.mark.parametrize("replicas", [1, 3])
def test_n_replicas_give_n_containers_scrape_names_and_gateway_slots(replicas):
    program = run_program({"modelServerReplicas": str(replicas), "scrapeInterval": "5s"})
    containers = _model_server_containers(program)
    names = [f"model-server-{i}" for i in range(replicas)]
    assert [c.inputs["networksAdvanced"][0]["aliases"] for c in containers] == [[n] for n in names]
    assert all(c.inputs["ports"] == [] for c in containers)
    (discovery,) = _prometheus_config(program)["scrape_configs"][0]["dns_sd_configs"]
    assert discovery["names"] == names
    config = _gateway_config(program)
    assert [line.split()[1] for line in config.splitlines() if "server-template" in line] == [
        f"{n}-" for n in names
    ]
    # The drain follows the scrape interval: 2 checks 1 s apart + 5 s + 3 s.
    assert {c.inputs["envs"][2] for c in containers} == {"MODEL_SHUTDOWN_DRAIN_SECONDS=10"}


def test_replicas_roll_one_at_a_time_and_drain_before_they_go(program):
    replicas = _model_server_containers(program)
    for i, container in enumerate(replicas):
        # Auto-named, so a replacement starts beside the container it replaces (healthy first: wait).
        assert "name" not in container.inputs
        assert container.options["deleteBeforeReplace"] is False
        # SIGTERM, then this long for the drain and uvicorn's graceful shutdown (8 s), before a kill.
        grace = DEFAULT_DRAIN_SECONDS + 8 + 2
        assert int(container.inputs["destroyGraceSeconds"]) == grace
        assert int(container.inputs["stopTimeout"]) == grace
        if i:
            assert replicas[i - 1].urn in container.depends_on  # the next one waits for this one
    assert replicas[1].urn not in replicas[0].depends_on


# --- secrets ---------------------------------------------------------------------------------------------


def test_generated_admin_password_is_a_secret_everywhere(program):
    password = program.one(RANDOM_PASSWORD, "grafana-admin-password").outputs["result"]
    assert program.outputs["grafanaAdminPassword"] == password
    assert program.secret_outputs == {"grafanaAdminPassword"}
    plain_outputs = {k: v for k, v in program.outputs.items() if k not in program.secret_outputs}
    assert password not in json.dumps(plain_outputs)

    # Read from a file: never in the container's environment, which `docker inspect` shows.
    envs = _container(program, "grafana").inputs["envs"]
    assert password not in json.dumps(reveal(envs))
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE=/etc/grafana/secrets/admin-password" in envs
    assert not any(e.startswith("GF_SECURITY_ADMIN_PASSWORD=") for e in envs)
    assert "GF_SECURITY_ADMIN_USER=admin" in envs
    uploads = _container(program, "grafana-config").inputs["uploads"]
    assert contains_secret(uploads)
    files = {u["file"]: u["content"] for u in reveal(uploads)}
    assert files["/etc/grafana/secrets/admin-password"] == password
    auth = program.one(GRAFANA_PROVIDER).inputs["auth"]
    assert is_secret(auth)
    assert reveal(auth) == f"admin:{password}"
    # Nowhere in plain text: every resource input holding it is wrapped as a secret.
    for resource in program.resources:
        for key, value in resource.inputs.items():
            if password in json.dumps(reveal(value)):
                assert contains_secret(value), (resource.name, key)


def test_configured_admin_password_replaces_the_generated_one():
    program = run_program({"grafanaAdminPassword": "correct-horse-battery"})
    assert [r.name for r in program.of_type(RANDOM_PASSWORD)] == ["grafana-secret-key"]
    uploads = reveal(_container(program, "grafana-config").inputs["uploads"])
    (password,) = [u["content"] for u in uploads if u["file"].endswith("password")]
    assert password == "correct-horse-battery"
    assert program.outputs["grafanaAdminPassword"] == "correct-horse-battery"
    assert "grafanaAdminPassword" in program.secret_outputs
    assert reveal(program.one(GRAFANA_PROVIDER).inputs["auth"]) == "admin:correct-horse-battery"
    assert is_secret(program.one(GRAFANA_PROVIDER).inputs["auth"])


# --- container hardening and limits -------------------------------------------------------------------

DEFAULT_MEMORY_MB = {
    "model-server-0": 512,
    "model-server-1": 512,
    "gateway": 128,
    "prometheus": 1024,
    "alertmanager": 128,
    "grafana": 512,
}
# Where each service writes outside its volumes (the model server: its multiprocess metrics directory).
TMPFS = {"model-server-0": ["/tmp"], "model-server-1": ["/tmp"], "grafana": ["/tmp"]}
# Where each service's uploaded configuration lives (a config volume, read-only in the service).
CONFIG_DIRS = {
    "gateway": "/usr/local/etc/haproxy",
    "prometheus": "/etc/prometheus",
    "alertmanager": "/etc/alertmanager",
    "grafana": "/etc/grafana/secrets",
}


def _limits(container) -> tuple[int, int, list[tuple[str, int, int]]]:
    inputs = container.plain_inputs
    ulimits = [(u["name"], int(u["soft"]), int(u["hard"])) for u in inputs["ulimits"]]
    return int(inputs["memory"]), int(inputs["memorySwap"]), ulimits


def test_every_container_runs_read_only_without_capabilities_within_its_limits(program):
    services = {c.name: c for c in _services(program)}
    assert set(services) == set(DEFAULT_MEMORY_MB)
    for name, container in services.items():
        inputs = container.plain_inputs
        assert inputs["readOnly"] is True, name
        assert inputs["capabilities"] == {"drops": ["ALL"]}, name
        assert inputs["securityOpts"] == ["no-new-privileges:true"], name
        memory = DEFAULT_MEMORY_MB[name]
        # Swap limit = memory limit: no swap on top of it.
        assert _limits(container) == (memory, memory, [("nofile", 16384, 16384)]), name
        tmpfs = inputs.get("tmpfs") or {}
        assert sorted(tmpfs) == TMPFS.get(name, []), name
        assert all(options == "rw,noexec,nosuid,size=64m" for options in tmpfs.values()), name


@pytest.mark.parametrize("key", ["gatewayImage", "prometheusImage", "alertmanagerImage", "grafanaImage"])
def test_an_image_pinned_by_digest_is_pulled_by_that_digest(key):
    pinned = f"registry.local/team/image:1.2.3@sha256:{'0123456789abcdef' * 4}"
    program = run_program({key: pinned})
    assert pinned in [image.plain_inputs["name"] for image in program.of_type(REMOTE_IMAGE)]
    with pytest.raises(ConfigError, match=key):
        run_program({key: "registry.local/team/image@sha256:0123"})  # not a whole digest


def test_container_limits_come_from_the_stack_config():
    program = run_program(
        {
            "modelServerMemoryLimit": "1Gi",
            "gatewayMemoryLimit": "200M",  # decimal: rounded up to whole MiB
            "prometheusMemoryLimit": "2Gi",
            "alertmanagerMemoryLimit": "64Mi",
            "grafanaMemoryLimit": "300Mi",
            "containerNofileLimit": "4096",
        }
    )
    memory = {c.name: _limits(c)[0] for c in _services(program)}
    assert memory == {
        "model-server-0": 1024,
        "model-server-1": 1024,
        "gateway": 191,
        "prometheus": 2048,
        "alertmanager": 64,
        "grafana": 300,
    }
    assert {tuple(_limits(c)[2]) for c in _services(program)} == {(("nofile", 4096, 4096),)}
    # HAProxy needs two descriptors per connection or it does not start: maxconn follows the limit.
    assert "  maxconn 2016" in _gateway_config(program).splitlines()
    assert "  maxconn 4096" in _gateway_config(run_program()).splitlines()


def test_uploads_reach_a_read_only_config_volume_through_a_carrier_that_never_starts(program):
    """Docker copies nothing into a read-only root: each service's files go into its config volume
    through a created-only carrier, and the service is replaced whenever the carrier is."""
    carriers = {c.name: c for c in _carriers(program)}
    assert set(carriers) == {f"{name}-config" for name in CONFIG_DIRS}
    volumes = {v.name: v for v in program.of_type(VOLUME)}
    for name, directory in CONFIG_DIRS.items():
        service, carrier = _container(program, name), carriers[f"{name}-config"]
        volume = volumes[f"{name}-config"]
        assert volume.inputs["name"] == f"model-monitoring-dev-{name}-config"
        assert "uploads" not in service.inputs or not service.inputs["uploads"]
        inputs = carrier.plain_inputs
        assert (inputs["start"], inputs["mustRun"]) == (False, False)
        assert inputs["image"] == service.plain_inputs["image"]
        assert inputs["volumes"] == [{"volumeName": volume.outputs["name"], "containerPath": directory}]
        assert inputs["uploads"]
        assert all(u["file"].startswith(directory + "/") for u in inputs["uploads"]), name
        assert {"volumeName": volume.outputs["name"], "containerPath": directory, "readOnly": True} in (
            service.inputs["volumes"]
        )
        assert {"label": "org.model-monitoring.config-carrier", "value": carrier.id} in (
            service.inputs["labels"]
        )
        assert carrier.urn in service.depends_on
    # Still one config file per service where the command names it.
    command = _container(program, "prometheus").inputs["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in command
    assert "/usr/local/etc/haproxy/haproxy.cfg" in _container(program, "gateway").inputs["command"]


def test_grafana_reads_its_secrets_from_files_and_stays_closed(program):
    envs = _container(program, "grafana").plain_inputs["envs"]
    assert not contains_secret(_container(program, "grafana").inputs["envs"])  # nothing secret left in it
    for setting in (
        "GF_AUTH_ANONYMOUS_ENABLED=false",
        "GF_USERS_ALLOW_SIGN_UP=false",
        "GF_SECURITY_ADMIN_PASSWORD__FILE=/etc/grafana/secrets/admin-password",
        "GF_SECURITY_SECRET_KEY__FILE=/etc/grafana/secrets/secret-key",
    ):
        assert setting in envs
    assert not any(e.startswith(("GF_SECURITY_SECRET_KEY=", "GF_SECURITY_ADMIN_PASSWORD=")) for e in envs)
    key = program.one(RANDOM_PASSWORD, "grafana-secret-key")
    assert int(key.inputs["length"]) >= 32
    uploads = _container(program, "grafana-config").inputs["uploads"]
    files = {u["file"]: u["content"] for u in reveal(uploads)}
    assert files["/etc/grafana/secrets/secret-key"] == key.outputs["result"]
    assert key.outputs["result"] not in json.dumps(program.outputs)
    for resource in program.resources:
        for name, value in resource.inputs.items():
            if key.outputs["result"] in json.dumps(reveal(value)):
                assert contains_secret(value), (resource.name, name)


# --- Grafana content -------------------------------------------------------------------------------------


def test_grafana_provider_targets_the_container_and_waits_for_it(program):
    provider = program.one(GRAFANA_PROVIDER)
    grafana = _container(program, "grafana")
    assert grafana.urn in provider.depends_on
    assert provider.inputs["url"] == "http://127.0.0.1:3000" == program.outputs["grafanaUrl"]
    assert int(provider.inputs["retries"]) > 0
    grafana_types = (DATA_SOURCE, FOLDER, DASHBOARD, RULE_GROUP, CONTACT_POINT, NOTIFICATION_POLICY)
    managed = [r for r in program.resources if r.type_ in grafana_types]
    assert managed
    for resource in managed:
        assert program.provider_of(resource) is provider, resource.name


def test_data_source_has_the_fixed_uid_and_the_scrape_interval(program):
    data_source = program.one(DATA_SOURCE)
    assert data_source.inputs["uid"] == DATASOURCE_UID
    assert data_source.inputs["type"] == "prometheus"
    assert data_source.inputs["url"] == "http://prometheus:9090"
    assert _container(program, "prometheus").inputs["networksAdvanced"][0]["aliases"] == ["prometheus"]
    assert json.loads(data_source.inputs["jsonDataEncoded"])["timeInterval"] == "15s"
    other = run_program({"scrapeInterval": "5s"})
    assert json.loads(other.one(DATA_SOURCE).inputs["jsonDataEncoded"])["timeInterval"] == "5s"
    assert _prometheus_config(other)["global"]["scrape_interval"] == "5s"


def test_every_panel_and_every_alert_query_uses_the_data_source_uid(program):
    dashboard = json.loads(program.one(DASHBOARD, "grafana-content-dashboard").inputs["configJson"])
    panels = [p for p in _walk(dashboard.get("panels", [])) if "targets" in p]
    assert panels
    for panel in panels:
        assert panel["datasource"]["uid"] == DATASOURCE_UID, panel.get("title")
        for target in panel["targets"]:
            assert target.get("datasource", {"uid": DATASOURCE_UID})["uid"] == DATASOURCE_UID
    assert (
        program.one(DASHBOARD, "grafana-content-dashboard").inputs["folder"]
        == program.one(FOLDER).outputs["uid"]
    )

    groups = program.of_type(RULE_GROUP)
    assert groups
    for group in groups:
        assert group.inputs["folderUid"] == program.one(FOLDER).outputs["uid"]
        for rule in group.inputs["rules"]:
            for data in rule["datas"]:
                model = json.loads(data["model"])
                if data["datasourceUid"] == "__expr__":
                    assert model.get("datasource", {"uid": "__expr__"})["uid"] == "__expr__"
                else:
                    assert data["datasourceUid"] == DATASOURCE_UID
                    assert model.get("datasource", {"uid": DATASOURCE_UID})["uid"] == DATASOURCE_UID


def test_rule_groups_are_valid_and_carry_the_contract_alerts(program):
    names = []
    for group in program.of_type(RULE_GROUP):
        assert int(group.inputs["intervalSeconds"]) % 10 == 0
        for rule in group.inputs["rules"]:
            ref_ids = [d["refId"] for d in rule["datas"]]
            assert len(ref_ids) == len(set(ref_ids))
            assert rule["condition"] in ref_ids, rule["name"]
            for data in rule["datas"]:
                model = json.loads(data["model"])
                # Expressions only refer to nodes of the same rule.
                if model.get("type") in ("reduce", "threshold", "math"):
                    referenced = model.get("expression", "").lstrip("$")
                    assert referenced in ref_ids, (rule["name"], model)
                assert data["relativeTimeRange"]["to"] == 0
            if rule["name"] in (alerts.ALERT_AVAILABILITY_BURN, alerts.ALERT_LATENCY_BURN):
                assert rule["labels"] == {}  # the query labels each series critical or warning
            else:
                assert rule["labels"]["severity"] in ("critical", "warning")
            assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
            names.append(rule["name"])
    assert sorted(names) == sorted(
        [
            alerts.ALERT_SERVER_DOWN,
            alerts.ALERT_HIGH_ERROR_RATE,
            alerts.ALERT_HIGH_LATENCY,
            alerts.ALERT_PREDICTION_SHIFT,
            alerts.ALERT_FEATURE_DRIFT,
            alerts.ALERT_AVAILABILITY_BURN,
            alerts.ALERT_LATENCY_BURN,
            alerts.ALERT_ENDPOINT_DOWN,
        ]
    )


def test_thresholds_from_config_reach_dashboard_rules_and_prometheus():
    custom = {"errorRateThreshold": "0.2", "latencyP95Seconds": "2.5", "alertEngine": "both"}
    program = run_program(custom)
    # The Docker target serves through its gateway: ModelEndpointDown is among its alerts.
    settings = AlertSettings(error_rate_threshold=0.2, latency_p95_seconds=2.5, gateway=True)
    rule_files = prometheus_rule_files(settings)
    carrier = _container(program, "prometheus-config")
    uploads = {u["file"]: u["content"] for u in carrier.plain_inputs["uploads"]}
    for name, text in rule_files.items():
        assert uploads[f"/etc/prometheus/rules/{name}"] == text
    default = run_program()
    assert (
        program.one(DASHBOARD, "grafana-content-dashboard").inputs["configJson"]
        != default.one(DASHBOARD, "grafana-content-dashboard").inputs["configJson"]
    )
    # The threshold node's parameter of each Grafana rule, and the comparison in each Prometheus rule.
    grafana_thresholds = {
        rule["name"]: model["conditions"][0]["evaluator"]["params"]
        for group in program.of_type(RULE_GROUP)
        for rule in group.inputs["rules"]
        for model in [json.loads(d["model"]) for d in rule["datas"]]
        if model.get("type") == "threshold"
    }
    assert grafana_thresholds[alerts.ALERT_HIGH_ERROR_RATE] == [0.2]
    assert grafana_thresholds[alerts.ALERT_HIGH_LATENCY] == [2.5]
    assert grafana_thresholds[alerts.ALERT_FEATURE_DRIFT] == [0.25]  # untouched keys keep their default
    prometheus_exprs = {
        rule["alert"]: rule["expr"]
        for group in yaml.safe_load(uploads["/etc/prometheus/rules/alert-rules.yml"])["groups"]
        for rule in group["rules"]
    }
    assert prometheus_exprs[alerts.ALERT_HIGH_ERROR_RATE].endswith(" > 0.2")
    assert prometheus_exprs[alerts.ALERT_HIGH_LATENCY].endswith(" > 2.5")


@pytest.mark.parametrize(
    ("engine", "grafana_rules", "prometheus_rules"),
    [("grafana", True, False), ("prometheus", False, True), ("both", True, True)],
)
def test_alert_engine_decides_where_alerts_live(engine, grafana_rules, prometheus_rules):
    program = run_program({"alertEngine": engine})
    assert bool(program.of_type(RULE_GROUP)) is grafana_rules
    config = _prometheus_config(program)
    carrier = _container(program, "prometheus-config")
    uploads = {u["file"]: u["content"] for u in carrier.plain_inputs["uploads"]}
    rule_files = [f"/etc/prometheus/{path}" for path in config["rule_files"]]
    assert sorted(rule_files) == sorted(f for f in uploads if f.startswith("/etc/prometheus/rules/"))
    rules = [rule for f in rule_files for g in yaml.safe_load(uploads[f])["groups"] for rule in g["rules"]]
    # Recording rules always: Grafana's drift panels and rules read them.
    assert queries.FEATURE_DRIFT_PSI in {r.get("record") for r in rules}
    assert any("alert" in r for r in rules) is prometheus_rules


@pytest.mark.parametrize(("engine", "deployed"), [("grafana", False), ("prometheus", True), ("both", True)])
def test_alertmanager_runs_where_prometheus_alerts_and_prometheus_sends_to_it(engine, deployed):
    program = run_program({"alertEngine": engine})
    alerting = _prometheus_config(program).get("alerting")
    if not deployed:
        assert [c.name for c in program.of_type(CONTAINER) if c.name == "alertmanager"] == []
        assert alerting is None
        assert "alertmanagerUrl" not in program.outputs
        return
    container = _container(program, "alertmanager")
    assert container.inputs["networksAdvanced"][0]["aliases"] == ["alertmanager"]
    assert alerting == {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]}
    assert "--web.external-url=http://127.0.0.1:9093" in container.inputs["command"]
    assert "/-/healthy" in " ".join(container.inputs["healthcheck"]["tests"])


def test_alertmanager_gets_the_same_routing_as_a_secret():
    pager = WEBHOOK + "-pager"
    program = run_program({"pagerWebhookUrl": pager, "alertEngine": "prometheus"})
    container = _container(program, "alertmanager-config")  # the config volume's carrier
    assert contains_secret(container.inputs["uploads"])  # the webhook URLs carry tokens
    (plain,) = container.plain_inputs["uploads"]
    assert plain["file"] == "/etc/alertmanager/alertmanager.yml"
    config = yaml.safe_load(plain["content"])
    assert config["route"]["routes"] == [
        {"receiver": "model-monitoring-pager", "matchers": ['severity="critical"']}
    ]
    (hook,) = next(r for r in config["receivers"] if r["name"] == "model-monitoring-pager")["webhook_configs"]
    assert hook["url"] == pager
    assert pager not in json.dumps(program.outputs)


def test_webhook_resources_only_when_a_webhook_url_is_configured(program):
    assert program.of_type(CONTACT_POINT) == []
    assert program.of_type(NOTIFICATION_POLICY) == []
    notified = run_program({"webhookUrl": WEBHOOK})
    contact_point = notified.one(CONTACT_POINT)
    # Webhook URLs often embed a token: secret, like the config value.
    assert contains_secret(contact_point.inputs["webhooks"])
    assert reveal(contact_point.inputs["webhooks"]) == [{"url": WEBHOOK}]
    policy = notified.one(NOTIFICATION_POLICY)
    assert policy.inputs["contactPoint"] == contact_point.outputs["name"]
    assert contact_point.urn in policy.depends_on
    assert policy.inputs.get("policies", []) == []
    assert WEBHOOK not in json.dumps(notified.outputs)


def test_severity_routes_become_contact_points_and_policy_matchers():
    pager, ticket = WEBHOOK + "-pager", WEBHOOK + "-ticket"
    notified = run_program({"pagerWebhookUrl": pager, "ticketWebhookUrl": ticket, "webhookUrl": WEBHOOK})
    points = {p.inputs["name"]: p for p in notified.of_type(CONTACT_POINT)}
    assert {name: reveal(p.inputs["webhooks"]) for name, p in points.items()} == {
        "model-monitoring-pager": [{"url": pager}],
        "model-monitoring-ticket": [{"url": ticket}],
        "model-monitoring-webhook": [{"url": WEBHOOK}],
    }
    assert all(contains_secret(p.inputs["webhooks"]) for p in points.values())
    policy = notified.one(NOTIFICATION_POLICY)
    assert policy.inputs["contactPoint"] == "model-monitoring-webhook"
    routes = [
        (p["contactPoint"], [(m["label"], m["match"], m["value"]) for m in p["matchers"]])
        for p in policy.inputs["policies"]
    ]
    assert routes == [
        ("model-monitoring-pager", [("severity", "=", "critical")]),
        ("model-monitoring-ticket", [("severity", "=", "warning")]),
    ]
    assert {points[name].urn for name, _ in routes} <= set(policy.depends_on)
    assert policy.inputs["groupBies"] == ["alertname", "grafana_folder"]
    assert all(p["groupBies"] == policy.inputs["groupBies"] for p in policy.inputs["policies"])
    assert (policy.inputs["groupWait"], policy.inputs["repeatInterval"]) == ("30s", "4h")
    # Wherever the URL goes (contact points, Alertmanager's config) it goes as a secret.
    carriers = [r.name for r in notified.resources if pager in json.dumps(r.plain_inputs)]
    assert sorted(carriers) == ["alertmanager-config", "grafana-content-pager"]
    assert contains_secret(notified.one(CONTAINER, "alertmanager-config").inputs["uploads"])
    assert pager not in json.dumps(notified.outputs)


def test_without_a_catch_all_the_policy_root_stays_grafanas_default():
    notified = run_program({"pagerWebhookUrl": WEBHOOK})
    assert [p.inputs["name"] for p in notified.of_type(CONTACT_POINT)] == ["model-monitoring-pager"]
    policy = notified.one(NOTIFICATION_POLICY)
    assert policy.inputs["contactPoint"] == "grafana-default-email"
    assert [p["contactPoint"] for p in policy.inputs["policies"]] == ["model-monitoring-pager"]


def test_outputs_point_at_the_published_ports(program):
    assert program.outputs["grafanaUrl"] == "http://127.0.0.1:3000"
    assert program.outputs["prometheusUrl"] == "http://127.0.0.1:9090"
    assert program.outputs["modelServerUrl"] == "http://127.0.0.1:8000"
    assert program.outputs["dashboardUrl"] == "http://127.0.0.1:3000/d/model-monitoring"
    assert program.outputs["grafanaAdminUser"] == "admin"
    assert program.outputs["modelServerImage"].startswith("sha256:")
    assert program.outputs["alertmanagerUrl"] == "http://127.0.0.1:9093"


# --- config errors and determinism -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("modelServerReplicas", "0", "an integer from 1 to 16"),
        ("alertEngine", "alertmanager", "grafana | prometheus | both"),
        ("grafanaHostPort", "70000", "a port 1-65535"),
        ("errorRateThreshold", "1.5", "0 < x < 1"),
        ("bindAddress", "localhost", "an IP address"),
        ("scrapeInterval", "fast", "a Prometheus duration"),
        ("webhookUrl", "ftp://example.com", "http(s)://"),
        ("prometheusHostPort", "8000", "a port 1-65535"),  # collides with the gateway
        ("alertmanagerHostPort", "3000", "a port 1-65535"),  # same as grafanaHostPort
        ("modelServerReplica", "3", "allowed keys"),  # typo of modelServerReplicas
        ("modelServerWorkers", "0", "an integer from 1 to 16"),
        ("modelServerBuildCaFile", "/nonexistent/ca.pem", "a PEM file of extra CAs"),
        ("modelServerBuildCaFile", "pyproject.toml", "a PEM file of extra CAs"),  # exists, holds no CA
    ],
)
def test_invalid_config_is_refused_with_the_key_and_allowed_values(key, value, allowed):
    with pytest.raises(ConfigError) as error:
        run_program({key: value})
    message = str(error.value)
    assert f"model-monitoring:{key}" in message
    assert allowed in message


def test_invalid_config_creates_no_resources(monkeypatch):
    from tests.support import pulumi_mocks

    created = []
    original = pulumi_mocks.RecordingMonitor.RegisterResource

    def spy(self, request):
        created.append(request.type)
        return original(self, request)

    monkeypatch.setattr(pulumi_mocks.RecordingMonitor, "RegisterResource", spy)
    with pytest.raises(ConfigError, match="model-monitoring:modelServerReplicas"):
        run_program({"modelServerReplicas": "-1"})
    assert [t for t in created if t != "pulumi:pulumi:Stack"] == []
    run_program()
    assert NETWORK in created  # the spy does see resources when the config is valid


def test_plain_text_password_is_refused():
    with pytest.raises(ConfigError, match=r"grafanaAdminPassword.*plain text.*--secret"):
        run_program({"grafanaAdminPassword": "correct-horse-battery"}, secret_keys=frozenset())


def _declared(program: Program) -> list[tuple]:
    return sorted(
        (r.urn, r.type_, r.parent, json.dumps(r.inputs, sort_keys=True), r.depends_on, r.provider)
        for r in program.resources
    )


def test_two_runs_declare_identical_resources(program):
    again = run_program()
    assert _declared(again) == _declared(program)
    assert again.outputs == program.outputs


_DECLARE = """
import json
from tests.infra.test_program import _declared
from tests.support.pulumi_mocks import run_program
program = run_program()
print(json.dumps({"resources": _declared(program), "outputs": program.outputs}, sort_keys=True, default=str))
"""


def test_declared_inputs_do_not_depend_on_the_hash_seed():
    """Set or dict ordering that leaks into an input would churn every preview; it shows only across
    interpreters with different string hashing."""
    runs = [
        subprocess.run(
            [sys.executable, "-c", _DECLARE],
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        for seed in HASH_SEEDS
    ]
    assert json.loads(runs[0])["resources"], "expected declared resources"
    assert all(run == runs[0] for run in runs[1:])


def test_program_runs_like_the_language_host_runs_it(monkeypatch):
    from tests.support import pulumi_mocks

    seen = []
    original = pulumi_mocks.RecordingMocks.new_resource

    def spy(self, args):
        seen.append((os.getcwd(), str(PROJECT_ROOT) in sys.path or "" in sys.path))
        return original(self, args)

    monkeypatch.setattr(pulumi_mocks.RecordingMocks, "new_resource", spy)
    run_program()
    assert seen
    # cwd infra/ and no repository root on sys.path: the program only imports installed packages.
    assert set(seen) == {(str(PROJECT_ROOT / "infra"), False)}


def test_runbooks_dashboard_lives_beside_the_dashboard(program):
    runbooks = program.one(DASHBOARD, "grafana-content-runbooks")
    assert json.loads(runbooks.inputs["configJson"])["uid"] == "model-monitoring-runbooks"
    assert runbooks.inputs["folder"] == program.one(FOLDER).outputs["uid"]


def test_chaos_needs_the_stacks_generated_token():
    """With chaosEnabled the replicas honour chaos headers only with the stack's token: generated, a
    secret in the containers' envs and in the one output that hands it to `make demo`."""
    program = run_program({"chaosEnabled": "true"})
    (token_resource,) = [r for r in program.of_type(RANDOM_PASSWORD) if r.name == "model-server-chaos-token"]
    token = token_resource.outputs["result"]
    assert int(token_resource.inputs["length"]) >= 16  # what the server requires
    assert program.outputs["chaosToken"] == token
    assert "chaosToken" in program.secret_outputs
    for container in _model_server_containers(program):
        envs = container.inputs["envs"]
        assert contains_secret(envs)
        assert f"MODEL_CHAOS_TOKEN={token}" in reveal(envs)
        assert "MODEL_CHAOS_ENABLED=true" in reveal(envs)
    # Chaos off: no token anywhere.
    default = run_program()
    assert "chaosToken" not in default.outputs
    assert not [r for r in default.of_type(RANDOM_PASSWORD) if r.name == "model-server-chaos-token"]
    assert all(
        not any(e.startswith("MODEL_CHAOS_TOKEN=") for e in reveal(c.inputs["envs"]))
        for c in _model_server_containers(default)
    )
