"""The whole program with `target: kubernetes` under mocks: every object it would apply lines up (labels,
selectors, port names, probe paths, the autoscaler's target, the pushed image) and is built from the same
definitions as the Docker target."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from dashboards import alerts
from dashboards.alerts import alert_definitions, prometheus_rule_files
from dashboards.dashboard import dashboard_json
from dashboards.settings import DATASOURCE_UID, AlertSettings
from infra.config import ConfigError
from infra.kubernetes import manifests
from server import contract
from tests.support import HASH_SEEDS
from tests.support.kubernetes import manifest
from tests.support.pulumi_mocks import (
    CONFIG_MAP,
    CONTAINER,
    DASHBOARD,
    DATA_SOURCE,
    DEPLOYMENT,
    GRAFANA_PROVIDER,
    HELM_RELEASE,
    HPA,
    IMAGE,
    K8S_PROVIDER,
    K8S_SECRET,
    NAMESPACE,
    NETWORK,
    PDB,
    PROJECT_ROOT,
    PROMETHEUS_RULE,
    RULE_GROUP,
    SERVICE,
    SERVICE_MONITOR,
    Program,
    contains_secret,
    is_secret,
    run_program,
)

REGISTRY = "registry.example.com/team"
KUBERNETES = {"target": "kubernetes", "imageRegistry": REGISTRY}
OPERATOR_INSTALLED = KUBERNETES | {
    "installPrometheusOperator": "true",
    "prometheusRemoteWriteUrl": "https://mimir.example.com/api/v1/push",
    "prometheusRemoteWriteUsername": "tenant-1",
    "prometheusRemoteWritePassword": "remote-write-pass",
    "imageRegistryUsername": "robot",
    "imageRegistryPassword": "registry-pass",
}
GRAFANA = KUBERNETES | {"grafanaUrl": "https://grafana.example.com", "grafanaAuth": "admin:grafana-pass"}


@pytest.fixture(scope="module")
def program() -> Program:
    return run_program(KUBERNETES)


@pytest.fixture(scope="module")
def installed() -> Program:
    return run_program(OPERATOR_INSTALLED)


def _one(program: Program, type_: str) -> dict:
    return manifest(program.one(type_))


def _container(program: Program) -> dict:
    (container,) = _one(program, DEPLOYMENT)["spec"]["template"]["spec"]["containers"]
    return container


def test_nothing_of_the_docker_target_is_declared(program):
    assert not program.of_type(CONTAINER)
    assert not program.of_type(NETWORK)
    # Without grafanaUrl nothing talks to a Grafana API.
    assert not program.of_type(GRAFANA_PROVIDER)
    types = {r.type_ for r in program.resources if r.custom}
    assert types == {K8S_PROVIDER, NAMESPACE, IMAGE, DEPLOYMENT, SERVICE, HPA, PDB, CONFIG_MAP}.union(
        {SERVICE_MONITOR, PROMETHEUS_RULE}
    )


def test_every_kubernetes_object_uses_the_one_provider_and_lives_in_the_namespace(program):
    provider = program.one(K8S_PROVIDER)
    namespace = _one(program, NAMESPACE)["metadata"]["name"]
    assert namespace == "model-monitoring"
    for resource in program.resources:
        if resource.custom and resource.type_.startswith("kubernetes:"):
            assert program.provider_of(resource) is provider, resource.name
            if resource.type_ != NAMESPACE:
                assert manifest(resource)["metadata"]["namespace"] == namespace, resource.name
                assert program.one(NAMESPACE).urn in resource.depends_on, resource.name


def test_objects_carry_the_recommended_labels(program):
    for type_ in (DEPLOYMENT, SERVICE, HPA, PDB, SERVICE_MONITOR, PROMETHEUS_RULE, CONFIG_MAP):
        for resource in program.of_type(type_):
            labels = manifest(resource)["metadata"]["labels"]
            assert labels["app.kubernetes.io/part-of"] == "model-monitoring", resource.name
            assert labels["app.kubernetes.io/name"], resource.name
            assert labels["app.kubernetes.io/version"] == manifests.version(), resource.name
    pod_labels = _one(program, DEPLOYMENT)["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["app.kubernetes.io/part-of"] == "model-monitoring"


def test_service_selects_the_pods_and_names_the_container_port(program):
    deployment, service = _one(program, DEPLOYMENT), _one(program, SERVICE)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert "app.kubernetes.io/version" not in selector  # selectors are immutable: no version in them
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    (container_port,) = _container(program)["ports"]
    assert port["name"] == container_port["name"] == "http"
    assert port["targetPort"] == "http"
    assert container_port["containerPort"] == port["port"] == contract.SERVER_PORT


def test_service_monitor_selects_the_service_on_its_named_port_as_the_contract_job(program):
    service, monitor = _one(program, SERVICE), _one(program, SERVICE_MONITOR)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == contract.METRICS_PATH
    assert endpoint["interval"] == "15s"  # scrapeInterval
    assert endpoint["scrapeTimeout"] == "10s"
    assert {"action": "replace", "targetLabel": "job", "replacement": contract.JOB_NAME} in endpoint[
        "relabelings"
    ]


def test_the_operator_selects_the_monitor_and_the_rules_by_its_release_label(program):
    for type_ in (SERVICE_MONITOR, PROMETHEUS_RULE):
        assert _one(program, type_)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    renamed = run_program(KUBERNETES | {"prometheusOperatorRelease": "monitoring"})
    assert _one(renamed, SERVICE_MONITOR)["metadata"]["labels"]["release"] == "monitoring"


@pytest.mark.parametrize("engine", ["grafana", "prometheus", "both"])
def test_prometheus_rule_groups_equal_the_docker_rule_files(engine):
    base = GRAFANA if engine == "grafana" else KUBERNETES  # Grafana-only alerts need the Grafana API
    program = run_program(base | {"alertEngine": engine, "latencyP95Seconds": "0.75"})
    docker = run_program({"alertEngine": engine, "latencyP95Seconds": "0.75"})
    uploads = docker.one(CONTAINER, "prometheus-config").plain_inputs["uploads"]
    rule_files = sorted((u["file"], u["content"]) for u in uploads if "/rules/" in u["file"])
    docker_groups = [g for _, text in rule_files for g in yaml.safe_load(text)["groups"]]
    groups = _one(program, PROMETHEUS_RULE)["spec"]["groups"]
    # The same rules but ModelEndpointDown: the Docker target's gateway has no Kubernetes counterpart
    # (a Service balances there).
    without_gateway = [
        {**g, "rules": [r for r in g["rules"] if r.get("alert") != alerts.ALERT_ENDPOINT_DOWN]}
        for g in docker_groups
    ]
    assert groups == without_gateway
    names = {r.get("alert") for g in groups for r in g["rules"]} - {None}
    expected = {a.name for a in alert_definitions(AlertSettings(latency_p95_seconds=0.75))}
    assert alerts.ALERT_ENDPOINT_DOWN not in expected
    assert names == (set() if engine == "grafana" else expected)
    docker_names = {r.get("alert") for g in docker_groups for r in g["rules"]} - {None}
    assert docker_names == (set() if engine == "grafana" else expected | {alerts.ALERT_ENDPOINT_DOWN})
    assert {r.get("record") for g in groups for r in g["rules"]} - {None}  # recording rules always
    # The files are the ones `python -m dashboards export` writes: one function builds both.
    docker_settings = AlertSettings(latency_p95_seconds=0.75, gateway=True)
    exported = prometheus_rule_files(docker_settings, alert_rules=engine != "grafana")
    assert sorted(exported.values()) == sorted(text for _, text in rule_files)


def test_the_autoscaler_targets_the_deployment(program):
    deployment, hpa = _one(program, DEPLOYMENT), _one(program, HPA)
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert target == {"apiVersion": deployment["apiVersion"], "kind": "Deployment", "name": "model-server"}
    assert target["name"] == deployment["metadata"]["name"]
    assert program.one(DEPLOYMENT).urn in program.one(HPA).depends_on
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"] == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    assert deployment["spec"]["replicas"] == 2


def test_disruption_budget_selects_the_pods(program):
    pdb = _one(program, PDB)
    pod_labels = _one(program, DEPLOYMENT)["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1


def test_probes_hit_the_contract_paths_on_the_named_port(program):
    container = _container(program)
    assert container["readinessProbe"]["httpGet"] == {"path": contract.READY_PATH, "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": contract.HEALTH_PATH, "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == contract.HEALTH_PATH


def test_rolling_updates_keep_every_replica_and_pods_run_locked_down(program):
    deployment = _one(program, DEPLOYMENT)
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container = _container(program)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["runAsUser"] == 10001  # the Dockerfile's USER
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["WEB_CONCURRENCY"] == "2"
    assert env["MODEL_CHAOS_ENABLED"] == "false"
    # The multiprocess metrics directory is writable: an emptyDir mounted there.
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts[env["PROMETHEUS_MULTIPROC_DIR"]]]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }


def test_resources_replicas_and_workers_come_from_config():
    program = run_program(
        KUBERNETES
        | {
            "modelServerReplicas": "3",
            "modelServerMaxReplicas": "10",
            "modelServerCpuTargetPercent": "60",
            "modelServerWorkers": "4",
            "modelServerCpuRequest": "500m",
            "modelServerCpuLimit": "2",
            "modelServerMemoryRequest": "1Gi",
            "modelServerMemoryLimit": "1Gi",
        }
    )
    hpa = _one(program, HPA)["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    container = _container(program)
    assert {e["name"]: e["value"] for e in container["env"]}["WEB_CONCURRENCY"] == "4"
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}


def test_the_image_is_built_from_the_repository_pushed_and_run_by_its_pushed_digest(program):
    image = program.one(IMAGE)
    assert image.inputs["skipPush"] is False
    assert image.inputs["imageName"] == f"{REGISTRY}/model-monitoring-dev-model-server:latest"
    assert image.inputs["registry"]["server"] == "registry.example.com"
    assert image.inputs["build"]["args"] == {"BASE_IMAGE": "python:3.11-slim"}
    pushed = image.outputs["repoDigest"]
    assert pushed.startswith(f"{REGISTRY}/model-monitoring-dev-model-server@sha256:")
    assert _container(program)["image"] == pushed
    assert program.outputs["modelServerImage"] == pushed
    assert image.urn in program.one(DEPLOYMENT).depends_on


def test_registry_credentials_are_secrets_and_become_the_pull_secret(installed):
    image = installed.one(IMAGE)
    assert contains_secret(image.inputs["registry"])
    assert image.plain_inputs["registry"] == {
        "server": "registry.example.com",
        "username": "robot",
        "password": "registry-pass",
    }
    secrets = {r.name: r for r in installed.of_type(K8S_SECRET)}
    pull = secrets["model-server-pull-secret"]
    assert pull.inputs["type"] == "kubernetes.io/dockerconfigjson"
    assert contains_secret(pull.inputs["stringData"])
    config = json.loads(manifest(pull)["stringData"][".dockerconfigjson"])
    assert config["auths"]["registry.example.com"]["username"] == "robot"
    pod = _one(installed, DEPLOYMENT)["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": manifest(pull)["metadata"]["name"]}]


def test_without_grafana_url_the_dashboard_and_its_data_source_go_to_the_sidecars(program):
    maps = {r.name: manifest(r) for r in program.of_type(CONFIG_MAP)}
    dashboard, datasource = maps["monitoring-dashboard"], maps["monitoring-datasource"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert datasource["metadata"]["labels"]["grafana_datasource"] == "1"
    (text,) = dashboard["data"].values()
    assert text == dashboard_json(DATASOURCE_UID, AlertSettings())  # the Docker target's dashboard
    (provisioning,) = yaml.safe_load(next(iter(datasource["data"].values())))["datasources"]
    assert provisioning["uid"] == DATASOURCE_UID  # the UID every panel names
    assert provisioning["url"] == "http://kube-prometheus-stack-prometheus.model-monitoring.svc:9090"
    assert provisioning["jsonData"]["timeInterval"] == "15s"
    assert provisioning["isDefault"] is False


def test_with_grafana_url_the_same_grafana_content_goes_through_its_api():
    program = run_program(GRAFANA)
    assert not program.of_type(CONFIG_MAP)
    provider = program.one(GRAFANA_PROVIDER)
    assert provider.inputs["url"] == "https://grafana.example.com"
    assert is_secret(provider.inputs["auth"])
    assert provider.plain_inputs["auth"] == "admin:grafana-pass"
    source = program.one(DATA_SOURCE)
    assert source.inputs["uid"] == DATASOURCE_UID
    assert source.inputs["url"] == "http://kube-prometheus-stack-prometheus.model-monitoring.svc:9090"
    dashboard = program.one(DASHBOARD, "grafana-content-dashboard")
    assert dashboard.inputs["configJson"] == dashboard_json(DATASOURCE_UID, AlertSettings())
    assert program.of_type(RULE_GROUP)  # alertEngine both: Grafana-managed rules too
    assert program.outputs["dashboardUrl"].startswith("https://grafana.example.com/d/")


def test_grafana_prometheus_url_overrides_the_derived_service():
    program = run_program(
        GRAFANA | {"grafanaPrometheusUrl": "http://prometheus-operated.monitoring.svc:9090"}
    )
    assert program.one(DATA_SOURCE).inputs["url"] == "http://prometheus-operated.monitoring.svc:9090"


def test_installing_the_operator_pins_kube_prometheus_stack_with_the_sidecars_and_remote_write(installed):
    release = installed.one(HELM_RELEASE)
    inputs = release.plain_inputs
    assert inputs["chart"] == "kube-prometheus-stack"
    assert inputs["version"] == manifests.CHART_VERSION == "88.5.3"
    assert inputs["name"] == "kube-prometheus-stack"  # the release label the CRs carry
    assert inputs["namespace"] == "model-monitoring"
    assert inputs["repositoryOpts"]["repo"] == manifests.CHART_REPO
    values = inputs["values"]
    sidecar = values["grafana"]["sidecar"]
    assert sidecar["dashboards"]["enabled"] is True
    assert (sidecar["dashboards"]["label"], sidecar["dashboards"]["labelValue"]) == ("grafana_dashboard", "1")
    assert sidecar["dashboards"]["searchNamespace"] == sidecar["datasources"]["searchNamespace"] == "ALL"
    assert (sidecar["datasources"]["label"], sidecar["datasources"]["labelValue"]) == (
        "grafana_datasource",
        "1",
    )
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["scrapeInterval"] == spec["evaluationInterval"] == "15s"
    assert spec["retention"] == "15d"
    (remote,) = spec["remoteWrite"]
    assert remote["url"] == "https://mimir.example.com/api/v1/push"
    secret = manifest(installed.one(K8S_SECRET, "prometheus-operator-remote-write"))
    assert remote["basicAuth"]["username"] == {"name": secret["metadata"]["name"], "key": "username"}
    assert secret["stringData"] == {"username": "tenant-1", "password": "remote-write-pass"}
    assert contains_secret(installed.one(K8S_SECRET, "prometheus-operator-remote-write").inputs["stringData"])
    assert "remote-write-pass" not in json.dumps(values)  # credentials only in the Secret
    # The custom resources wait for the release (it brings the CRDs).
    for type_ in (SERVICE_MONITOR, PROMETHEUS_RULE):
        assert release.urn in installed.one(type_).depends_on


def test_a_bearer_token_goes_to_the_secret_as_authorization():
    program = run_program(
        KUBERNETES
        | {
            "installPrometheusOperator": "true",
            "prometheusRemoteWriteUrl": "https://thanos.example.com/api/v1/receive",
            "prometheusRemoteWriteBearerToken": "tok-123",
        }
    )
    (remote,) = program.one(HELM_RELEASE).plain_inputs["values"]["prometheus"]["prometheusSpec"][
        "remoteWrite"
    ]
    assert remote["authorization"]["type"] == "Bearer"
    assert manifest(program.one(K8S_SECRET))["stringData"] == {"token": "tok-123"}


def test_kubeconfig_and_context_reach_the_provider_and_the_kubeconfig_stays_secret():
    program = run_program(
        KUBERNETES | {"kubeconfig": "apiVersion: v1\nkind: Config\n", "kubernetesContext": "prod"}
    )
    provider = program.one(K8S_PROVIDER)
    assert is_secret(provider.inputs["kubeconfig"])
    assert provider.inputs["context"] == "prod"
    ambient = run_program(KUBERNETES).one(K8S_PROVIDER)
    assert "kubeconfig" not in ambient.inputs
    assert "context" not in ambient.inputs


def test_namespace_from_config():
    program = run_program(KUBERNETES | {"kubernetesNamespace": "ml-prod"})
    assert _one(program, NAMESPACE)["metadata"]["name"] == "ml-prod"
    assert {manifest(r)["metadata"]["namespace"] for r in program.of_type(DEPLOYMENT)} == {"ml-prod"}


def test_two_runs_declare_identical_objects(program):
    again = run_program(KUBERNETES)
    # Registration order is asynchronous; what is declared, and with which inputs, is not.
    assert {(r.type_, r.name): r.inputs for r in again.resources} == {
        (r.type_, r.name): r.inputs for r in program.resources
    }
    assert len(again.resources) == len(program.resources)
    assert again.outputs == program.outputs


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"target": "kubernetes"}, "imageRegistry is required for target kubernetes"),
        (KUBERNETES | {"bindAddress": "0.0.0.0"}, "bindAddress applies only to target docker"),
        (KUBERNETES | {"grafanaHostPort": "3001"}, "grafanaHostPort applies only to target docker"),
        ({"imageRegistry": REGISTRY}, "imageRegistry applies only to target kubernetes"),
        (
            {"installPrometheusOperator": "true"},
            "installPrometheusOperator applies only to target kubernetes",
        ),
        (KUBERNETES | {"retention": "30d"}, "retention reaches the operator's Prometheus only when"),
        (
            KUBERNETES | {"grafanaUrl": "https://g.example.com"},
            "grafanaUrl needs model-monitoring:grafanaAuth",
        ),
        (KUBERNETES | {"alertEngine": "grafana"}, "alertEngine = 'grafana' needs grafanaUrl"),
        (KUBERNETES | {"imageRegistry": "Registry.example.com/x:1"}, "imageRegistry = "),
        (KUBERNETES | {"kubernetesNamespace": "Model_Monitoring"}, "kubernetesNamespace = "),
        (KUBERNETES | {"modelServerMaxReplicas": "1"}, "below modelServerReplicas = 2"),
        (KUBERNETES | {"modelServerCpuRequest": "2"}, "above modelServerCpuLimit = 1"),
        (KUBERNETES | {"modelServerMemoryLimit": "128Mi"}, "above modelServerMemoryLimit = 128Mi"),
        (KUBERNETES | {"modelServerMemoryRequest": "lots"}, "modelServerMemoryRequest = 'lots' is invalid"),
    ],
)
def test_invalid_kubernetes_config_is_refused_before_any_resource(config, message):
    with pytest.raises(ConfigError, match="invalid stack configuration") as error:
        run_program(config)
    assert message in str(error.value)


def test_invalid_config_creates_no_resources(monkeypatch):
    from tests.support import pulumi_mocks

    registered = []
    original = pulumi_mocks.RecordingMocks.new_resource
    monkeypatch.setattr(
        pulumi_mocks.RecordingMocks,
        "new_resource",
        lambda self, args: registered.append(args.typ) or original(self, args),
    )
    with pytest.raises(ConfigError):
        run_program({"target": "kubernetes", "bindAddress": "0.0.0.0"})
    assert registered == []


def test_the_listed_defaults_of_the_docker_keys_do_not_block_the_switch():
    """Pulumi.dev.yaml spells out every key: `target kubernetes` plus a registry is all it takes."""
    program = run_program({"target": "kubernetes", "imageRegistry": REGISTRY})  # dev stack file as defaults
    assert program.one(DEPLOYMENT)
    assert alert_definitions(AlertSettings())  # sanity: the same alerts exist to be rendered


_DECLARE = """
import json
from tests.infra.kubernetes.test_program import OPERATOR_INSTALLED
from tests.infra.test_program import _declared
from tests.support.pulumi_mocks import run_program
program = run_program(OPERATOR_INSTALLED)
print(json.dumps({"resources": _declared(program), "outputs": program.outputs}, sort_keys=True, default=str))
"""


def test_declared_objects_do_not_depend_on_the_hash_seed():
    """Set or dict ordering leaking into a manifest would churn every preview (and every rollout)."""
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


def test_chaos_reads_its_token_from_a_secret():
    program = run_program(KUBERNETES | {"chaosEnabled": "true"})
    secret = program.one(K8S_SECRET, "model-server-chaos-secret")
    assert contains_secret(secret.inputs["stringData"])
    token = program.outputs["chaosToken"]
    assert manifest(secret)["stringData"] == {manifests.CHAOS_TOKEN_KEY: token}
    assert "chaosToken" in program.secret_outputs
    (container,) = _one(program, DEPLOYMENT)["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["MODEL_CHAOS_ENABLED"]["value"] == "true"
    secret_name = manifest(secret)["metadata"]["name"]
    assert env["MODEL_CHAOS_TOKEN"] == {
        "name": "MODEL_CHAOS_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": secret_name, "key": manifests.CHAOS_TOKEN_KEY}},
    }
    assert token not in json.dumps(_one(program, DEPLOYMENT))  # only the reference, never the value
    assert program.one(K8S_SECRET, "model-server-chaos-secret").urn in program.one(DEPLOYMENT).depends_on
    assert "chaosToken" not in run_program(KUBERNETES).outputs
