"""The one way this stack runs a long-lived container: on the monitoring network under stable aliases,
at most one port published on the bind address, healthchecked, restarted, and created only once healthy."""

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_docker as docker


def service_image(resource_name: str, image: str, *, parent: pulumi.Resource) -> docker.RemoteImage:
    """A service's image, pulled once and kept on destroy; containers run its `image_id`, so a new tag
    replaces them."""
    return docker.RemoteImage(
        resource_name, name=image, keep_locally=True, opts=pulumi.ResourceOptions(parent=parent)
    )


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
    start_period: str = "10s",
    retries: int = 3,
    wait_timeout: int = 120,
    rolling: bool = False,
    depends_on: Sequence[pulumi.Resource] = (),
    **inputs: Any,
) -> docker.Container:
    """A `docker.Container` with the shared network, port, healthcheck and lifecycle settings; `inputs`
    are the remaining Container arguments (name, image, command, envs, volumes, uploads, ...).

    `host_port` None: reachable on the network only. `rolling`: a replacement starts (and is healthy)
    before the old container goes, so `inputs` must not fix a `name` (Pulumi auto-names it); otherwise
    the fixed name makes the old container go first."""
    if rolling and "name" in inputs:
        raise ValueError(f"{resource_name}: a rolling container is auto-named, it cannot fix a name")
    published = (
        []
        if host_port is None
        else [docker.ContainerPortArgs(internal=port, external=host_port, ip=bind_address)]
    )
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
        # A fixed name must be free before the replacement can take it: the old container goes first.
        opts=pulumi.ResourceOptions(
            parent=parent, delete_before_replace=not rolling, depends_on=list(depends_on)
        ),
        **inputs,
    )
