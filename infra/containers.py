"""The one way this stack runs a long-lived container: on the monitoring network under stable aliases,
at most one port published on the bind address, healthchecked, restarted, created only once healthy,
and hardened (read-only root, every capability dropped, no privilege gain, memory and nofile bounded).

Docker refuses to copy files into a container whose root is read-only (the provider's `uploads` go to
"/"), so a container's uploaded configuration reaches it through a config volume: a carrier container
of the same image, created but never started, takes the uploads into the volume, which the service
mounts read-only; a change of the uploads replaces the carrier and so, by its id in a label, the service.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import pulumi
import pulumi_docker as docker

# The service container carries its config carrier's id: new uploads, a new carrier, a new service.
CONFIG_LABEL = "org.model-monitoring.config-carrier"
# Default tmpfs options: no executables, no setuid, bounded (tmpfs pages count against the memory limit).
TMPFS_OPTIONS = "rw,noexec,nosuid,size=64m"


@dataclass(frozen=True)
class ContainerLimits:
    """What one container may use: `memory_mb` MiB of memory (no swap beyond it), `nofile` open files."""

    memory_mb: int
    nofile: int


def service_image(resource_name: str, image: str, *, parent: pulumi.Resource) -> docker.RemoteImage:
    """A service's image, pulled once and kept on destroy; containers run its `image_id`, so a new tag
    replaces them."""
    return docker.RemoteImage(
        resource_name, name=image, keep_locally=True, opts=pulumi.ResourceOptions(parent=parent)
    )


def hardening(limits: ContainerLimits, tmpfs: Sequence[str] = ()) -> dict[str, Any]:
    """The Container inputs every service gets: read-only root with a tmpfs at each of `tmpfs` (the
    paths it writes outside its volumes), no capabilities, no-new-privileges, the limits."""
    return {
        "read_only": True,
        "tmpfs": dict.fromkeys(tmpfs, TMPFS_OPTIONS),
        "capabilities": docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        "security_opts": ["no-new-privileges:true"],
        "memory": limits.memory_mb,
        "memory_swap": limits.memory_mb,  # equal: no swap on top of the limit
        "ulimits": [docker.ContainerUlimitArgs(name="nofile", soft=limits.nofile, hard=limits.nofile)],
    }


def _config_volume(
    resource_name: str,
    *,
    parent: pulumi.Resource,
    name: str,
    image: pulumi.Input[str],
    config_dir: PurePosixPath,
    uploads: Sequence[docker.ContainerUploadArgs],
) -> tuple[docker.Volume, docker.Container]:
    """The config volume of a service and the carrier container that fills it with `uploads` (each
    under `config_dir`)."""
    for upload in uploads:
        if not PurePosixPath(upload.file).is_relative_to(config_dir):
            raise ValueError(f"{resource_name}: upload {upload.file} is not under {config_dir}")
    child = pulumi.ResourceOptions(parent=parent)
    volume = docker.Volume(f"{resource_name}-config", name=f"{name}-config", opts=child)
    carrier = docker.Container(
        f"{resource_name}-config",
        image=image,
        # Never started: it exists so the uploads have a writable root to land in (the volume).
        start=False,
        must_run=False,
        volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=str(config_dir))],
        uploads=list(uploads),
        opts=child,
    )
    return volume, carrier


def service_container(
    resource_name: str,
    *,
    parent: pulumi.Resource,
    network_name: pulumi.Input[str],
    alias: str,
    port: int,
    host_port: int | None,
    bind_address: str,
    healthcheck: list[str],
    limits: ContainerLimits,
    tmpfs: Sequence[str] = (),
    config_dir: PurePosixPath | None = None,
    uploads: Sequence[docker.ContainerUploadArgs] = (),
    start_period: str = "10s",
    retries: int = 3,
    wait_timeout: int = 120,
    rolling: bool = False,
    depends_on: Sequence[pulumi.Resource] = (),
    **inputs: Any,
) -> docker.Container:
    """A hardened `docker.Container` with the shared network, port, healthcheck and lifecycle settings;
    `inputs` are the remaining Container arguments (name, image, command, envs, volumes, ...).

    `host_port` None: reachable on the network only. `rolling`: a replacement starts (and is healthy)
    before the old container goes, so `inputs` must not fix a `name` (Pulumi auto-names it); otherwise
    the fixed name makes the old container go first. `uploads` (files under `config_dir`) go through the
    config volume "<name>-config", mounted read-only at `config_dir`."""
    if rolling and "name" in inputs:
        raise ValueError(f"{resource_name}: a rolling container is auto-named, it cannot fix a name")
    published = (
        []
        if host_port is None
        else [docker.ContainerPortArgs(internal=port, external=host_port, ip=bind_address)]
    )
    volumes = list(inputs.pop("volumes", []))
    labels = list(inputs.pop("labels", []))
    depends = list(depends_on)
    if uploads:
        if config_dir is None or "name" not in inputs:
            raise ValueError(f"{resource_name}: uploads need a config_dir and a fixed name")
        volume, carrier = _config_volume(
            resource_name,
            parent=parent,
            name=inputs["name"],
            image=inputs["image"],
            config_dir=config_dir,
            uploads=uploads,
        )
        mount = docker.ContainerVolumeArgs(
            volume_name=volume.name, container_path=str(config_dir), read_only=True
        )
        volumes.append(mount)
        labels.append(docker.ContainerLabelArgs(label=CONFIG_LABEL, value=carrier.id))
        depends.append(carrier)
    return docker.Container(
        resource_name,
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network_name, aliases=[alias])],
        ports=published,
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=healthcheck, interval="10s", timeout="5s", start_period=start_period, retries=retries
        ),
        restart="unless-stopped",
        # Dependants (the Grafana provider, `pulumi up` itself) go on only once the container is healthy.
        wait=True,
        wait_timeout=wait_timeout,
        volumes=volumes,
        labels=labels,
        **hardening(limits, tmpfs),
        # A fixed name must be free before the replacement can take it: the old container goes first.
        opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=not rolling, depends_on=depends),
        **inputs,
    )
