"""Offline checks of the kubernetes target's objects: what the mocks recorded, turned back into manifests,
validated against a pinned Kubernetes version (kubernetes-validate --strict) and the Prometheus
Operator's CRD schemas (vendored from the pinned kube-prometheus-stack chart)."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.pulumi_mocks import (
    CONFIG_MAP,
    DEPLOYMENT,
    HPA,
    K8S_SECRET,
    NAMESPACE,
    PDB,
    PROMETHEUS_RULE,
    SERVICE,
    SERVICE_MONITOR,
    Program,
    Resource,
)

# The oldest Kubernetes minor still in wide support when this was written; kube-prometheus-stack 88.5.3
# needs >= 1.25.
KUBERNETES_VERSION = "1.33.0"
BUILTIN_TYPES = (NAMESPACE, K8S_SECRET, CONFIG_MAP, DEPLOYMENT, SERVICE, HPA, PDB)
CUSTOM_TYPES = {SERVICE_MONITOR: "servicemonitors", PROMETHEUS_RULE: "prometheusrules"}
CRD_DIR = Path(__file__).resolve().parents[1] / "infra" / "kubernetes" / "crds"


def _integral(value: Any) -> Any:
    """Numbers come through the mocks as floats; the API server's integer fields want 3, not 3.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def manifest(resource: Resource) -> dict:
    """The object as the provider would send it: apiVersion, kind, metadata, spec/data/..."""
    return _integral(resource.plain_inputs)


def manifests(program: Program, types: tuple[str, ...] = BUILTIN_TYPES) -> list[dict]:
    return [manifest(r) for r in program.resources if r.type_ in types]


def kubernetes_validate(objects: list[dict], directory: Path) -> subprocess.CompletedProcess[str]:
    """`kubernetes-validate --strict -k KUBERNETES_VERSION` on the objects (one multi-document file)."""
    path = directory / "objects.yaml"
    path.write_text(yaml.safe_dump_all(objects, sort_keys=True))
    executable = shutil.which("kubernetes-validate", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.fail("kubernetes-validate not installed: `make venv` (it is a dev dependency)", pytrace=False)
    return subprocess.run(
        [executable, "--strict", "-k", KUBERNETES_VERSION, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@functools.cache
def crd_schema(plural: str) -> dict:
    """The v1 openAPIV3Schema of the vendored CRD `crd-<plural>.yaml`."""
    (crd,) = [d for d in yaml.safe_load_all((CRD_DIR / f"crd-{plural}.yaml").read_text()) if d]
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def crd_validator(schema: dict) -> jsonschema.Validator:
    """A validator for an operator schema. No check_schema: the schemas hold Go regexes such as `(?i)`,
    which Python's `re` reads differently; `format` is not asserted (as the API server does)."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def crd_errors(obj: dict, plural: str) -> list[str]:
    """Every way `obj` breaks the CRD's schema, unknown fields included."""
    validator = crd_validator(strict_schema(crd_schema(plural)))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


def strict_schema(schema: Any) -> Any:
    """The schema with `additionalProperties: false` wherever it lists properties and says nothing else
    (the API server prunes unknown fields silently; the tests want them reported)."""
    if isinstance(schema, dict):
        out = {k: strict_schema(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict_schema(v) for v in schema]
    return schema
