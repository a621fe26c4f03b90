"""Every object the kubernetes target would apply, validated offline: built-in kinds with
`kubernetes-validate --strict` against a pinned Kubernetes version, the ServiceMonitor and PrometheusRule
against the Prometheus Operator's CRD schemas (kube-prometheus-stack 88.5.3 = operator v0.93.1, vendored),
the remote_write entries against the Prometheus CRD's `remoteWrite` schema, and the rule groups with
`promtool check rules`."""

import copy
import json
import subprocess

import jsonschema
import pytest
import yaml

from infra.kubernetes import manifests
from tests.infra.kubernetes.test_program import GRAFANA, KUBERNETES, OPERATOR_INSTALLED
from tests.support.kubernetes import (
    BUILTIN_TYPES,
    CRD_DIR,
    CUSTOM_TYPES,
    KUBERNETES_VERSION,
    crd_errors,
    crd_validator,
    kubernetes_validate,
    manifest,
    strict_schema,
)
from tests.support.pulumi_mocks import HELM_RELEASE, PROMETHEUS_RULE, SERVICE_MONITOR, run_program
from tests.support.tools import require_binary

CONFIGS = {
    "sidecar": KUBERNETES,
    "grafana-api": GRAFANA,
    "operator-installed": OPERATOR_INSTALLED,
    "bearer": KUBERNETES
    | {
        "installPrometheusOperator": "true",
        "prometheusRemoteWriteUrl": "https://thanos.example.com/api/v1/receive",
        "prometheusRemoteWriteBearerToken": "tok-123",
        "alertEngine": "prometheus",
        "modelServerReplicas": "1",
        "scrapeInterval": "30s",
    },
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def program(request):
    return run_program(CONFIGS[request.param])


def test_built_in_objects_pass_kubernetes_validate_strict(program, tmp_path):
    objects = [manifest(r) for r in program.resources if r.type_ in BUILTIN_TYPES]
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    result = kubernetes_validate(objects, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # One "validated" line per object: nothing skipped for want of a schema.
    minor = KUBERNETES_VERSION.rsplit(".", 1)[0]
    assert result.stdout.count("passed for resource") == len(objects), result.stdout
    assert result.stdout.count(f"against version {minor}\n") == len(objects), result.stdout


def test_kubernetes_validate_rejects_what_the_api_server_would(tmp_path):
    """The check can fail: a misspelt field and a wrong type in the program's own Deployment."""
    program = run_program(KUBERNETES)
    (deployment,) = [manifest(r) for r in program.resources if r.type_.endswith(":Deployment")]
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = typo["spec"]["template"]["spec"][
        "containers"
    ][0].pop("readinessProbe")
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    for broken in (typo, wrong_type):
        result = kubernetes_validate([broken], tmp_path)
        assert result.returncode != 0, result.stdout


def test_custom_resources_match_the_operator_crd_schemas(program):
    for type_, plural in CUSTOM_TYPES.items():
        obj = manifest(program.one(type_))
        assert crd_errors(obj, plural) == [], (type_, crd_errors(obj, plural))


def test_the_crd_check_can_fail():
    program = run_program(KUBERNETES)
    monitor = manifest(program.one(SERVICE_MONITOR))
    monitor["spec"]["endpoints"][0]["interval"] = "fifteen seconds"  # not a Prometheus duration
    assert crd_errors(monitor, "servicemonitors")
    monitor = manifest(program.one(SERVICE_MONITOR))
    monitor["spec"]["endpoints"][0]["targetPort"] = {"name": "http"}  # not int-or-string
    monitor["spec"]["endpoint"] = []  # unknown field
    assert len(crd_errors(monitor, "servicemonitors")) >= 2
    rule = manifest(program.one(PROMETHEUS_RULE))
    del rule["spec"]["groups"][0]["name"]  # required
    assert crd_errors(rule, "prometheusrules")


def test_vendored_crds_are_the_pinned_operator_version():
    for plural in CUSTOM_TYPES.values():
        text = (CRD_DIR / f"crd-{plural}.yaml").read_text()
        (crd,) = [d for d in yaml.safe_load_all(text) if d]
        assert crd["metadata"]["annotations"]["operator.prometheus.io/version"] == "0.93.1"
    remote_write = json.loads((CRD_DIR / "prometheus-remotewrite.schema.json").read_text())
    assert "kube-prometheus-stack-88.5.3" in remote_write["$comment"]
    assert manifests.CHART_VERSION == "88.5.3"


def test_remote_write_entries_match_the_prometheus_crd():
    schema = json.loads((CRD_DIR / "prometheus-remotewrite.schema.json").read_text())
    validator = crd_validator(strict_schema(schema))
    for name in ("operator-installed", "bearer"):
        program = run_program(CONFIGS[name])
        spec = program.one(HELM_RELEASE).plain_inputs["values"]["prometheus"]["prometheusSpec"]
        entries = spec["remoteWrite"]
        assert entries
        errors = [e.message for e in validator.iter_errors(entries)]
        assert errors == [], (name, errors)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate([{"url": "https://x.example.com", "basicAuth": {"username": "plain-text"}}])


def test_prometheus_rule_groups_pass_promtool_check_rules(program, tmp_path):
    promtool = require_binary("promtool", package="prometheus")
    groups = manifest(program.one(PROMETHEUS_RULE))["spec"]["groups"]
    path = tmp_path / "prometheusrule.yml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rules = sum(len(g["rules"]) for g in groups)
    assert f"SUCCESS: {rules} rules found" in result.stdout, result.stdout
