"""The one way this stack runs a long-lived container: on the monitoring network under a stable alias,
one port published on the bind address, healthchecked, restarted, and created only once healthy."""

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
    host_port: int,
    bind_address: str,
    healthcheck: list[str],
    start_period: str = "10s",
    retries: int = 3,
    wait_timeout: int = 120,
    **inputs: Any,
) -> docker.Container:
    """A `docker.Container` with the shared network, port, healthcheck and lifecycle settings; `inputs`
    are the remaining Container arguments (name, image, command, envs, volumes, uploads, ...)."""
    return docker.Container(
        resource_name,
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network_name, aliases=[alias])],
        ports=[docker.ContainerPortArgs(internal=port, external=host_port, ip=bind_address)],
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=healthcheck, interval="10s", timeout="5s", start_period=start_period, retries=retries
        ),
        restart="unless-stopped",
        # Dependants (the Grafana provider, `pulumi up` itself) go on only once the container is healthy.
        wait=True,
        wait_timeout=wait_timeout,
        # Container names are fixed, so the old container must go before its replacement starts.
        opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=True),
        **inputs,
    )
