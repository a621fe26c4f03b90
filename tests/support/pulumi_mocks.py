"""Run the real Pulumi program (infra/__main__.py) under Pulumi mocks and record every resource.

The program runs the way `pulumi up` runs it: working directory infra/, only that directory (plus the
installed packages) on sys.path, config from Pulumi.dev.yaml overridden by the caller. Each resource is
recorded with the inputs the provider would receive (camelCase keys; secrets stay wrapped, see
`is_secret` / `reveal`), its parent, explicit dependencies and provider, so tests can assert on the
declared stack and the Docker e2e can realise the declared containers on a real engine.

    program = run_program({"modelServerReplicas": "3"})
    for c in program.of_type(CONTAINER): ...
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import runpy
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func

from tests.support import PROJECT_ROOT

PROGRAM_DIR = PROJECT_ROOT / "infra"
PROJECT = yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())["name"]
DEFAULT_STACK = "dev"

# Type tokens, so tests don't spell them out.
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
IMAGE = "docker:index/image:Image"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
CONTAINER = "docker:index/container:Container"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
GRAFANA_PROVIDER = "pulumi:providers:grafana"
DATA_SOURCE = "grafana:oss/dataSource:DataSource"
FOLDER = "grafana:oss/folder:Folder"
DASHBOARD = "grafana:oss/dashboard:Dashboard"
RULE_GROUP = "grafana:alerting/ruleGroup:RuleGroup"
CONTACT_POINT = "grafana:alerting/contactPoint:ContactPoint"
NOTIFICATION_POLICY = "grafana:alerting/notificationPolicy:NotificationPolicy"
K8S_PROVIDER = "pulumi:providers:kubernetes"
NAMESPACE = "kubernetes:core/v1:Namespace"
K8S_SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
# Keys whose values a test passes as `pulumi config set --secret` values (unless it says otherwise).
SECRET_KEYS = frozenset(
    {
        "grafanaAdminPassword",
        "webhookUrl",
        "pagerWebhookUrl",
        "ticketWebhookUrl",
        "prometheusRemoteWritePassword",
        "prometheusRemoteWriteBearerToken",
        "kubeconfig",
        "imageRegistryPassword",
        "grafanaAuth",
    }
)


def is_secret(value: Any) -> bool:
    """True when `value` is a wrapped secret as the engine receives it."""
    return rpc.is_rpc_secret(value)


def reveal(value: Any) -> Any:
    """`value` with every wrapped secret (at any depth) replaced by its plain value."""
    if rpc.is_rpc_secret(value):
        return reveal(value["value"])
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def contains_secret(value: Any) -> bool:
    """True when a wrapped secret appears anywhere in `value`."""
    if rpc.is_rpc_secret(value):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False


@dataclass
class Resource:
    """One registered resource (component or custom) as the engine saw it."""

    type_: str
    name: str
    urn: str
    inputs: dict[str, Any]  # camelCase keys, secrets wrapped
    outputs: dict[str, Any]  # what the mocks answered (inputs + computed values)
    id: str | None
    custom: bool
    parent: str | None  # parent URN (None for the stack itself)
    depends_on: list[str]  # explicit + implicit dependency URNs
    provider: str | None  # provider reference "urn::id" (explicit providers only)
    options: dict[str, Any] = field(default_factory=dict)  # deleteBeforeReplace, ...

    @property
    def plain_inputs(self) -> dict[str, Any]:
        return reveal(self.inputs)


@dataclass
class Program:
    """Everything one run of the program declared."""

    resources: list[Resource]
    outputs: dict[str, Any]  # stack exports, plain values
    secret_outputs: frozenset[str]  # names of the exports that are secrets
    config: dict[str, str]  # the config the run used (key without namespace -> value)
    stack: str

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type_ == type_]

    def one(self, type_: str, name: str | None = None) -> Resource:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} named {name!r}, found {[r.name for r in found]}")
        return found[0]

    def by_urn(self, urn: str) -> Resource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise LookupError(urn)

    def provider_of(self, resource: Resource) -> Resource | None:
        """The provider resource a custom resource is bound to (None: the default provider)."""
        if not resource.provider:
            return None
        return self.by_urn(resource.provider.rsplit("::", 1)[0])

    def children(self, parent: Resource) -> list[Resource]:
        return [r for r in self.resources if r.parent == parent.urn]


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class RecordingMocks(pulumi_mocks.Mocks):
    """Answers like the providers would: inputs echoed back plus the computed outputs dependants read."""

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        plain = reveal(inputs)
        computed: dict[str, Any] = {}
        if args.typ in (NETWORK, VOLUME, CONTAINER):
            computed["name"] = plain.get("name") or args.name
        if args.typ == IMAGE:
            # With skip_push the digest is the local image id: a function of what is built; after a
            # push it is the pushed reference "<repository>@sha256:..." (tag dropped).
            digest = "sha256:" + _digest(plain.get("imageName"), plain.get("build"))
            if plain.get("skipPush"):
                computed["repoDigest"] = digest
            else:
                computed["repoDigest"] = plain["imageName"].rsplit(":", 1)[0] + "@" + digest
            build = plain.get("build") or {}
            computed.update(context=build.get("context"), dockerfile=build.get("dockerfile"))
        if args.typ == REMOTE_IMAGE:
            # The pulled image's id: a function of the reference.
            computed["imageId"] = "sha256:" + _digest(plain.get("name"))
            computed["repoDigest"] = f"{plain.get('name')}@{computed['imageId']}"
        if args.typ == RANDOM_PASSWORD:
            computed["result"] = "mock-" + _digest(args.name)[:27]
        if args.typ == FOLDER:
            computed["uid"] = plain.get("uid") or args.name
        if args.typ == DASHBOARD:
            computed["uid"] = json.loads(plain["configJson"]).get("uid") or args.name
        if args.typ == CONTACT_POINT:
            computed["name"] = plain.get("name") or args.name
        return f"{args.name}-id", {**inputs, **computed}

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, also remembering parent, dependencies, provider and options of each resource."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Resource] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = rpc.deserialize_properties(request.object)
        outputs = self.resources[response.urn].state
        self.recorded.append(
            Resource(
                type_=request.type,
                name=request.name,
                urn=response.urn,
                inputs=inputs,
                outputs=dict(outputs),
                id=response.id or None,
                custom=bool(request.custom),
                parent=request.parent or None,
                depends_on=sorted(set(request.dependencies)),
                provider=request.provider or None,
                options={
                    "deleteBeforeReplace": bool(request.deleteBeforeReplace),
                    "additionalSecretOutputs": list(request.additionalSecretOutputs),
                    "protect": bool(request.protect) if request.HasField("protect") else False,
                },
            )
        )
        return response


def stack_config(stack: str = DEFAULT_STACK) -> dict[str, str]:
    """The project's config from Pulumi.<stack>.yaml, key without namespace -> string value."""
    document = yaml.safe_load((PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}
    prefix = f"{PROJECT}:"
    values = {}
    for key, value in (document.get("config") or {}).items():
        if not key.startswith(prefix):
            continue
        if isinstance(value, dict):  # {secure: ...} cannot be decrypted here
            raise ValueError(f"{key} is an encrypted secret; pass its value in run_program(config=...)")
        values[key[len(prefix) :]] = str(value).lower() if isinstance(value, bool) else str(value)
    return values


@contextlib.contextmanager
def _like_pulumi() -> Iterator[None]:
    """cwd infra/ and, like the language host, no repository root on sys.path (only installed packages)."""
    saved_cwd, saved_path = os.getcwd(), list(sys.path)
    root = str(PROJECT_ROOT)
    sys.path[:] = [p for p in sys.path if p not in ("", ".", root) and os.path.abspath(p) != root]
    os.chdir(PROGRAM_DIR)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path


def run_program(
    config: Mapping[str, str] | None = None,
    *,
    stack: str = DEFAULT_STACK,
    secret_keys: frozenset[str] | set[str] = SECRET_KEYS,
    defaults_from: str | None = DEFAULT_STACK,
    preview: bool = False,
) -> Program:
    """Run infra/__main__.py under mocks; returns what it declared. Exceptions from the program propagate.

    config: overrides (key with or without the `model-monitoring:` namespace -> string value);
    stack: the stack name the program sees (Docker object names derive from it);
    secret_keys: which of the given keys count as `pulumi config set --secret` values;
    defaults_from: the stack file supplying the other values (None: only `config`).
    """
    values = stack_config(defaults_from) if defaults_from else {}
    prefix = f"{PROJECT}:"
    for key, value in (config or {}).items():
        values[key.removeprefix(prefix)] = value
    full_config = {prefix + k: v for k, v in values.items()}
    secrets = [prefix + k for k in values if k in secret_keys or prefix + k in secret_keys]

    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi_settings.SETTINGS.rpc_manager.clear()
        pulumi_settings.SETTINGS.outputs.clear()
        pulumi_settings.ROOT.set(None)
        # As the language host hands a program its config: the PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS
        # environment (what infra/config.py lists the keys from), and the runtime's own config map.
        os.environ["PULUMI_CONFIG"] = json.dumps(full_config)
        os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secrets)
        pulumi.runtime.set_all_config(full_config, secrets)
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
        root = pulumi_settings.get_root_resource()

        def program() -> None:
            # A directory, as the language host passes it: its __main__.py runs with it on sys.path.
            runpy.run_path(str(PROGRAM_DIR), run_name="__main__")

        # Resources register asynchronously: keep the program's environment until every RPC is done.
        with _like_pulumi():
            loop.run_until_complete(run_pulumi_func(program))
        outputs, secret_outputs = loop.run_until_complete(_resolve_outputs(root.outputs))
    finally:
        os.environ.pop("PULUMI_CONFIG", None)
        os.environ.pop("PULUMI_CONFIG_SECRET_KEYS", None)
        pulumi.runtime.set_all_config({}, [])
        pulumi_settings.ROOT.set(None)
        loop.close()
        asyncio.set_event_loop(None)
    return Program(
        resources=list(monitor.recorded),
        outputs=outputs,
        secret_outputs=frozenset(secret_outputs),
        config=values,
        stack=stack,
    )


async def _resolve_outputs(exports: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    values, secret = {}, set()
    for name, value in exports.items():
        output = pulumi.Output.from_input(value)
        values[name] = await output.future()
        if await output.is_secret():
            secret.add(name)
    return values, secret
