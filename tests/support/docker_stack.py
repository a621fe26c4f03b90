"""Realize the Docker resources a Pulumi program declared (recorded by tests/support/pulumi_mocks.py)
on a real engine, the way the pulumi-docker provider would: build the declared image (and push it when
it is not `skipPush`, to a registry without login), create the
declared networks and volumes, create each container from its declared inputs, copy its uploads in,
start it and wait for it to be healthy when it says `wait`. A container declared without a name is
auto-named as Pulumi does (resource name + random suffix); removing one honours `destroyGraceSeconds`
(SIGTERM, then that long before the kill), as the provider does.

Inputs are read in the provider's shape (camelCase, pulumi-docker 4/5; memory in MiB). An input the
realizer does not know makes it fail instead of silently running something else than what was declared.
A container whose image is neither built here nor present on the engine is skipped and reported (no
registry is reachable).
Everything created is labelled and removed again by `close()` (built image tags too, keeping the layers
as build cache).
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, BuildError, ImageNotFound, NotFound
from docker.models import containers as _containers
from docker.models.containers import Container
from docker.types import Mount, Ulimit

from tests.support.pulumi_mocks import CONTAINER, IMAGE, NETWORK, REMOTE_IMAGE, VOLUME, Program, Resource

# The engine API and docker-py's low-level create take a stop timeout; its high-level create does not
# pass it through yet (docker-py 7), so let it.
if "stop_timeout" not in _containers.RUN_CREATE_KWARGS:
    _containers.RUN_CREATE_KWARGS.append("stop_timeout")

# Put on every object created here: `docker ps -a --filter label=org.model-monitoring.e2e` finds leftovers.
LABEL = "org.model-monitoring.e2e"

_IMAGE_INPUTS = {"imageName", "build", "skipPush", "buildOnPreview", "registry"}
_REGISTRY_INPUTS = {"server"}  # a login (username/password) is not realized here
_REMOTE_IMAGE_INPUTS = {"name", "keepLocally", "platform"}
_BUILD_INPUTS = {"context", "dockerfile", "args", "builderVersion", "platform", "target"}
_NETWORK_INPUTS = {"name", "driver", "internal", "attachable", "labels", "options", "checkDuplicate"}
_VOLUME_INPUTS = {"name", "driver", "driverOpts", "labels"}
_CONTAINER_INPUTS = {
    "name", "image", "envs", "command", "entrypoints", "user", "workingDir", "hostname", "labels",
    "networksAdvanced", "ports", "volumes", "uploads", "healthcheck", "restart", "maxRetryCount",
    "wait", "waitTimeout", "mustRun", "start", "init", "readOnly", "stopSignal", "stopTimeout",
    "destroyGraceSeconds", "tmpfs", "capabilities", "securityOpts", "memory", "memorySwap", "ulimits",
}  # fmt: skip
_CAPABILITIES_INPUTS = {"adds", "drops"}

BUILD_TIMEOUT = 600  # seconds, a fresh build downloads the runtime dependencies

_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_NANOSECONDS = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}


def go_duration_ns(text: str) -> int:
    """Nanoseconds in a Go duration such as "10s", "1m30s" or "500ms" (the provider's healthcheck format)."""
    if text in ("0", ""):
        return 0
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return int(sum(float(n) * _NANOSECONDS[u] for n, u in parts))


def buildkit_cli() -> str | None:
    """A docker CLI that builds with BuildKit here: one with buildx, or a 20.x/22.x one (built in)."""
    for cli in dict.fromkeys(filter(None, (shutil.which("docker"), "/usr/bin/docker"))):
        if not os.access(cli, os.X_OK):
            continue
        buildx = subprocess.run([cli, "buildx", "version"], capture_output=True, timeout=60, check=False)
        if buildx.returncode == 0:
            return cli
        version = subprocess.run(
            [cli, "version", "--format", "{{.Client.Version}}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout.strip()
        if version[:2].isdigit() and int(version[:2]) < 23:  # buildx became mandatory in 23.0
            return cli
    return None


def _unsupported(resource: Resource, known: set[str], values: Mapping[str, Any]) -> None:
    unknown = sorted(k for k, v in values.items() if k not in known and v not in (None, [], {}))
    if unknown:
        raise NotImplementedError(
            f"{resource.type_} {resource.name!r} declares {unknown}: the e2e realizer does not apply "
            "them yet, so it refuses to run something other than what was declared"
        )


def _upload_archive(uploads: list[dict]) -> bytes:
    """A tar of the declared uploads (content, contentBase64 or source file), paths from the root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for upload in uploads:
            if upload.get("content") is not None:
                data = upload["content"].encode()
            elif upload.get("contentBase64") is not None:
                data = base64.b64decode(upload["contentBase64"])
            elif upload.get("source"):
                data = Path(upload["source"]).read_bytes()
            else:
                raise ValueError(f"upload {upload.get('file')!r} has no content")
            info = tarfile.TarInfo(upload["file"].lstrip("/"))
            info.size = len(data)
            info.mode = 0o755 if upload.get("executable") else 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class Skipped:
    resource: Resource
    reason: str


@dataclass
class RealizedStack:
    """What one realization created; `close()` removes all of it."""

    program: Program
    client: docker.DockerClient
    log: Callable[[str], None] = print
    run_label: str = field(default_factory=lambda: f"{time.time_ns():x}")

    images: dict[str, str] = field(default_factory=dict)  # declared reference (digest/name) -> image id
    image_names: dict[str, str] = field(default_factory=dict)  # RemoteImage's declared id -> its name
    built_tags: list[str] = field(default_factory=list)
    pushed: dict[str, str] = field(default_factory=dict)  # declared imageName -> pushed "<repo>@sha256:..."
    networks: dict[str, Any] = field(default_factory=dict)  # declared name -> Network
    volumes: dict[str, Any] = field(default_factory=dict)  # declared name -> Volume
    containers: dict[str, Container] = field(default_factory=dict)  # resource name -> Container
    skipped: list[Skipped] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    # --- realize ---------------------------------------------------------------------------------------

    def up(self) -> RealizedStack:
        """Realize every declared Docker resource, dependencies first (images, networks, volumes)."""
        handled = {IMAGE, REMOTE_IMAGE, NETWORK, VOLUME, CONTAINER}
        other = sorted({r.type_ for r in self.program.resources if r.type_.startswith("docker:")} - handled)
        if other:
            raise NotImplementedError(f"the e2e realizer cannot create {other} yet")
        for resource in self.program.of_type(IMAGE):
            self._timed(f"build {resource.name}", self._build, resource)
        for resource in self.program.of_type(REMOTE_IMAGE):
            self._remote_image(resource)
        for resource in self.program.of_type(NETWORK):
            self._network(resource)
        for resource in self.program.of_type(VOLUME):
            self._volume(resource)
        # Like the Pulumi engine: containers start concurrently, each once the containers it depends on
        # are up (healthy, for those that `wait`).
        containers = self.program.of_type(CONTAINER)
        with ThreadPoolExecutor(max_workers=len(containers) or 1) as pool:
            started: dict[str, Future[None]] = {}

            def start(resource: Resource) -> None:
                for urn in resource.depends_on:
                    if urn in started:
                        started[urn].result()
                self._timed(f"start {resource.name}", self.start_container, resource)

            for resource in containers:  # recorded order: dependencies register first
                started[resource.urn] = pool.submit(start, resource)
            for future in started.values():
                future.result()
        return self

    def _timed(self, what: str, action: Callable[[Resource], Any], resource: Resource) -> None:
        start = time.monotonic()
        action(resource)
        self.timings[what] = time.monotonic() - start

    def _labels(self, declared: Any = None) -> dict[str, str]:
        labels = {item["label"]: item["value"] for item in declared or []}
        return {**labels, LABEL: self.run_label}

    def _build(self, resource: Resource) -> None:
        inputs = resource.plain_inputs
        _unsupported(resource, _IMAGE_INPUTS, inputs)
        build = inputs.get("build") or {}
        _unsupported(resource, _BUILD_INPUTS, build)
        context = Path(build["context"])
        dockerfile = Path(build.get("dockerfile") or context / "Dockerfile")
        if not dockerfile.is_absolute():
            dockerfile = context / dockerfile
        args = build.get("args") or {}
        tag = inputs["imageName"]
        # pulumi-docker builds with BuildKit unless told BuilderV1; do the same when a CLI can.
        cli = None if build.get("builderVersion") == "BuilderV1" else buildkit_cli()
        self.log(
            f"building {tag} from {context} with {dockerfile.relative_to(context)} "
            f"({'BuildKit via ' + cli if cli else 'classic builder'}), declared build args {sorted(args)}"
        )
        if cli:
            image_id = self._build_with_cli(cli, context, dockerfile, tag, args, build)
        else:
            try:
                image, _ = self.client.images.build(
                    path=str(context),
                    dockerfile=str(dockerfile.relative_to(context)),
                    buildargs=args,
                    tag=tag,
                    target=build.get("target"),
                    platform=build.get("platform"),
                    rm=True,
                    forcerm=True,
                    pull=False,
                )
            except BuildError as exc:
                lines = "".join(str(item.get("stream") or item.get("error") or "") for item in exc.build_log)
                raise RuntimeError(f"building {tag} failed: {exc.msg}\n{lines[-4000:]}") from exc
            image_id = image.id
        self.built_tags.append(tag)
        if not inputs.get("skipPush"):
            self._push(resource, tag)
        # Containers refer to the image by the Image's outputs (repoDigest under mocks) or by its name.
        for reference in (resource.outputs.get("repoDigest"), tag):
            if reference:
                self.images[reference] = image_id

    def _push(self, resource: Resource, tag: str) -> None:
        """Push like the provider does after a build; the pushed digest is what the registry answers."""
        registry = resource.plain_inputs.get("registry") or {}
        _unsupported(resource, _REGISTRY_INPUTS, {k: v for k, v in registry.items() if v is not None})
        repository, _, image_tag = tag.rpartition(":")
        if not repository.startswith(registry.get("server", "") + "/"):
            raise RuntimeError(f"{tag} is not in the declared registry {registry.get('server')!r}")
        errors = [
            line["error"]
            for line in self.client.images.push(repository, image_tag, stream=True, decode=True)
            if "error" in line
        ]
        if errors:
            raise RuntimeError(f"pushing {tag} failed: {errors}")
        digests = [
            d for d in self.client.images.get(tag).attrs["RepoDigests"] if d.startswith(repository + "@")
        ]
        if not digests:
            raise RuntimeError(f"pushing {tag} left no repo digest")
        self.pushed[tag] = digests[0]
        self.log(f"pushed {tag} as {digests[0]}")

    @staticmethod
    def _build_with_cli(
        cli: str, context: Path, dockerfile: Path, tag: str, args: Mapping[str, str], build: Mapping[str, Any]
    ) -> str:
        with tempfile.TemporaryDirectory(prefix="e2e-build-") as tmp:
            iidfile = Path(tmp) / "iid"
            command = [cli, "build", "--file", str(dockerfile), "--tag", tag, "--iidfile", str(iidfile)]
            command += [f"--build-arg={key}={value}" for key, value in args.items()]
            command += [f"--{key}={build[key]}" for key in ("target", "platform") if build.get(key)]
            done = subprocess.run(
                [*command, "--progress=plain", str(context)],
                env={**os.environ, "DOCKER_BUILDKIT": "1"},
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"building {tag} failed ({done.returncode}):\n{done.stderr[-4000:]}")
            return iidfile.read_text().strip()

    def _network(self, resource: Resource) -> None:
        inputs = resource.plain_inputs
        _unsupported(resource, _NETWORK_INPUTS, inputs)
        name = inputs["name"]
        self.networks[name] = self.client.networks.create(
            name,
            driver=inputs.get("driver") or "bridge",
            internal=bool(inputs.get("internal")),
            attachable=inputs.get("attachable"),
            options=inputs.get("options"),
            labels=self._labels(inputs.get("labels")),
        )
        self.log(f"created network {name}")

    def _volume(self, resource: Resource) -> None:
        inputs = resource.plain_inputs
        _unsupported(resource, _VOLUME_INPUTS, inputs)
        name = inputs["name"]
        self.volumes[name] = self.client.volumes.create(
            name=name,
            driver=inputs.get("driver") or "local",
            driver_opts=inputs.get("driverOpts"),
            labels=self._labels(inputs.get("labels")),
        )
        self.log(f"created volume {name}")

    def _remote_image(self, resource: Resource) -> None:
        """The provider would pull it; no registry is reachable here, so it must already be local."""
        inputs = resource.plain_inputs
        _unsupported(resource, _REMOTE_IMAGE_INPUTS, inputs)
        declared_id = resource.outputs["imageId"]  # what the containers name (mocked)
        self.image_names[declared_id] = inputs["name"]
        image_id = self._image_id(inputs["name"])
        if image_id is None:
            self.log(f"image {inputs['name']} is not on this engine and cannot be pulled here")
        else:
            self.images[declared_id] = image_id

    def _image_id(self, reference: str) -> str | None:
        if reference in self.images:
            return self.images[reference]
        try:
            return self.client.images.get(reference).id
        except ImageNotFound:
            return None

    def start_container(self, resource: Resource) -> Container | None:
        """Create, fill and start one declared container; None when its image is not available here."""
        inputs = resource.plain_inputs
        _unsupported(resource, _CONTAINER_INPUTS, inputs)
        image_id = self._image_id(inputs["image"])
        if image_id is None:
            image = self.image_names.get(inputs["image"], inputs["image"])
            reason = f"image {image!r} is not on this engine and no registry is reachable"
            self.skipped.append(Skipped(resource, reason))
            self.log(f"SKIPPED container {inputs.get('name') or resource.name}: {reason}")
            return None

        networks = inputs.get("networksAdvanced") or []
        first, *others = networks or [None]
        kwargs: dict[str, Any] = {
            # Pulumi's auto-naming: the resource name and a random suffix, new for every replacement.
            "name": inputs.get("name") or f"{resource.name}-{os.urandom(4).hex()[:7]}",
            "command": inputs.get("command"),
            "entrypoint": inputs.get("entrypoints"),
            "environment": inputs.get("envs"),
            "user": inputs.get("user"),
            "working_dir": inputs.get("workingDir"),
            "hostname": inputs.get("hostname"),
            "init": inputs.get("init"),
            "read_only": inputs.get("readOnly"),
            "stop_signal": inputs.get("stopSignal"),
            "labels": self._labels(inputs.get("labels")),
            "ports": {
                f"{int(p['internal'])}/{p.get('protocol') or 'tcp'}": (
                    p.get("ip") or "0.0.0.0",
                    int(p["external"]) if p.get("external") else None,
                )
                for p in inputs.get("ports") or []
            },
            "mounts": [
                Mount(
                    target=v["containerPath"],
                    source=v.get("volumeName") or v.get("hostPath"),
                    type="volume" if v.get("volumeName") else "bind",
                    read_only=bool(v.get("readOnly")),
                )
                for v in inputs.get("volumes") or []
            ],
        }
        capabilities = inputs.get("capabilities") or {}
        _unsupported(resource, _CAPABILITIES_INPUTS, capabilities)
        kwargs |= {
            "cap_add": capabilities.get("adds"),
            "cap_drop": capabilities.get("drops"),
            "security_opt": inputs.get("securityOpts"),
            "tmpfs": inputs.get("tmpfs"),
            "ulimits": [
                Ulimit(name=u["name"], soft=int(u["soft"]), hard=int(u["hard"]))
                for u in inputs.get("ulimits") or []
            ],
        }
        # The provider's memory inputs are MiB (memorySwap -1: unlimited swap).
        for declared, kwarg in (("memory", "mem_limit"), ("memorySwap", "memswap_limit")):
            if inputs.get(declared):
                value = int(inputs[declared])
                kwargs[kwarg] = value * 2**20 if value > 0 else value
        if inputs.get("stopTimeout") is not None:
            kwargs["stop_timeout"] = int(inputs["stopTimeout"])
        if inputs.get("restart") and inputs["restart"] != "no":
            policy: dict[str, Any] = {"Name": inputs["restart"]}
            if inputs["restart"] == "on-failure":
                policy["MaximumRetryCount"] = int(inputs.get("maxRetryCount") or 0)
            kwargs["restart_policy"] = policy
        if health := inputs.get("healthcheck"):
            kwargs["healthcheck"] = {
                "test": health["tests"],
                "interval": go_duration_ns(health.get("interval") or "0s"),
                "timeout": go_duration_ns(health.get("timeout") or "0s"),
                "start_period": go_duration_ns(health.get("startPeriod") or "0s"),
                "retries": int(health.get("retries") or 0),
            }
        if first is not None:
            kwargs["network"] = first["name"]
            kwargs["networking_config"] = {
                first["name"]: self.client.api.create_endpoint_config(aliases=first.get("aliases"))
            }
        given = {k: v for k, v in kwargs.items() if v is not None}
        container = self.client.containers.create(image_id, **given)
        self.containers[resource.name] = container
        for network in others:
            self.client.networks.get(network["name"]).connect(container, aliases=network.get("aliases"))
        if uploads := inputs.get("uploads"):
            container.put_archive("/", _upload_archive(uploads))
        if inputs.get("start", True) is False:
            return container
        container.start()
        if inputs.get("wait"):
            self.wait_healthy(resource, timeout=float(inputs.get("waitTimeout") or 60))
        elif inputs.get("mustRun", True):
            container.reload()
            if container.status != "running":
                raise RuntimeError(f"{container.name} is {container.status}:\n{self.logs(resource)}")
        self.log(f"started container {container.name} ({', '.join(self._describe(inputs))})")
        return container

    @staticmethod
    def _describe(inputs: Mapping[str, Any]) -> list[str]:
        aliases = [a for n in inputs.get("networksAdvanced") or [] for a in n.get("aliases") or []]
        declared = inputs.get("ports") or []
        ports = [f"{p.get('ip')}:{int(p['external'])}->{int(p['internal'])}" for p in declared]
        return [f"aliases {aliases}", f"ports {ports}", f"{len(inputs.get('uploads') or [])} uploads"]

    def wait_healthy(self, resource: Resource, timeout: float) -> None:
        """Wait until the container's healthcheck says healthy (running, when it has none)."""
        container = self.containers[resource.name]
        deadline = time.monotonic() + timeout
        while True:
            container.reload()
            state = container.attrs["State"]
            health = (state.get("Health") or {}).get("Status")
            if health == "healthy" or (health is None and state["Status"] == "running"):
                return
            if state["Status"] in ("exited", "dead") or health == "unhealthy":
                raise RuntimeError(f"{container.name} is {health or state['Status']}:\n{self.logs(resource)}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{container.name} not healthy after {timeout:.0f}s ({health}):\n{self.logs(resource)}"
                )
            time.sleep(0.5)

    def recreate(self, resource: Resource) -> Container | None:
        """Remove the container and create it again from its declaration (a delete-before-replace)."""
        self._remove(resource, self.containers.pop(resource.name))
        return self.start_container(resource)

    def replace(self, resource: Resource, **changed: Any) -> Container | None:
        """A create-before-delete replacement, as Pulumi does for an auto-named container whose inputs
        changed (`changed`, e.g. image=<new id>): the new container starts and, when it `wait`s, is
        healthy before the old one is removed."""
        old = self.containers.pop(resource.name)
        try:
            new = self.start_container(replace(resource, inputs={**resource.inputs, **changed}))
        except Exception:
            self.containers[resource.name] = old
            raise
        self._remove(resource, old)
        return new

    @staticmethod
    def _remove(resource: Resource, container: Container) -> None:
        """What the provider does on delete: stop with `destroyGraceSeconds` (when set), then remove."""
        grace = resource.plain_inputs.get("destroyGraceSeconds")
        if grace:
            container.stop(timeout=int(grace))
        container.remove(force=True)

    # --- inspect ---------------------------------------------------------------------------------------

    def logs(self, resource: Resource, tail: int = 40) -> str:
        container = self.containers.get(resource.name)
        if container is None:
            return "(no container)"
        try:
            return container.logs(tail=tail).decode(errors="replace")
        except APIError as exc:
            return f"(no logs: {exc})"

    def health(self, resource: Resource) -> str | None:
        container = self.containers[resource.name]
        container.reload()
        return (container.attrs["State"].get("Health") or {}).get("Status")

    def all_logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{self.logs(self.program.one(CONTAINER, name))}" for name in self.containers
        )

    # --- clean up --------------------------------------------------------------------------------------

    def close(self) -> list[str]:
        """Remove every container, network and volume created here and the built tags; returns errors."""
        errors: list[str] = []

        def attempt(what: str, action: Callable[[], Any]) -> None:
            try:
                action()
            except NotFound:
                pass
            except APIError as exc:
                errors.append(f"{what}: {exc}")

        for container in self.containers.values():
            attempt(f"container {container.name}", lambda c=container: c.remove(force=True, v=True))
        for name, network in self.networks.items():
            attempt(f"network {name}", network.remove)
        for name, volume in self.volumes.items():
            attempt(f"volume {name}", lambda v=volume: v.remove(force=True))
        for tag in self.built_tags:
            # noprune: the untagged layers stay as build cache for the next run.
            attempt(f"image {tag}", lambda t=tag: self.client.images.remove(t, noprune=True))
        self.containers.clear()
        self.networks.clear()
        self.volumes.clear()
        self.built_tags.clear()
        return errors

    def leftovers(self) -> list[str]:
        """Objects labelled with this run that still exist (empty after a clean `close()`)."""
        return [what for what, _, _ in _labelled(self.client, f"{LABEL}={self.run_label}")]


def _labelled(
    client: docker.DockerClient, label: str
) -> Iterator[tuple[str, Mapping[str, str] | None, Callable[[], Any]]]:
    """(description, labels, remove) of each container, network and volume carrying `label`, in an
    order they can be removed in (a network or volume in use cannot go before its containers)."""
    selector = {"label": label}
    for c in client.containers.list(all=True, filters=selector):
        yield f"container {c.name}", c.labels, lambda c=c: c.remove(force=True, v=True)
    for n in client.networks.list(filters=selector):
        yield f"network {n.name}", n.attrs.get("Labels"), n.remove
    for v in client.volumes.list(filters=selector):
        yield f"volume {v.name}", v.attrs.get("Labels"), lambda v=v: v.remove(force=True)


def remove_stale(client: docker.DockerClient, max_age_s: float = 1800) -> list[str]:
    """Remove what e2e runs that died left behind: objects with the e2e label whose run started more than
    `max_age_s` ago (a killed run's containers would otherwise come back with the engine: restart policy).
    Returns what was removed."""
    now = time.time_ns()

    def stale(labels: Mapping[str, str] | None) -> bool:
        try:
            return (now - int((labels or {}).get(LABEL, ""), 16)) / 1e9 > max_age_s
        except ValueError:
            return False

    removed = []
    for what, labels, remove in _labelled(client, LABEL):
        if stale(labels):
            remove()
            removed.append(what)
    return removed
