"""Alertmanager: the notifications of Prometheus-evaluated alerts, routed like Grafana's (one routing,
dashboards/notifications.py), its silences and notification log on a named volume."""

from dataclasses import dataclass
from pathlib import PurePosixPath

import pulumi
import pulumi_docker as docker

from dashboards.notifications import Routing, alertmanager_yaml
from infra.containers import ContainerLimits, service_container, service_image

PORT = 9093
ALIAS = "alertmanager"  # its name on the monitoring network (Prometheus' alerting config uses it)
CONFIG_FILE = PurePosixPath("/etc/alertmanager/alertmanager.yml")
DATA_DIR = "/alertmanager"


def internal_target() -> str:
    """host:port of Alertmanager as Prometheus reaches it on the network."""
    return f"{ALIAS}:{PORT}"


@dataclass(frozen=True)
class AlertmanagerArgs:
    name_prefix: str  # Docker object names start with it
    network_name: pulumi.Input[str]
    image: str
    bind_address: str
    host_port: int
    url: str  # how users reach it (--web.external-url: the links in its notifications)
    routing: Routing
    limits: ContainerLimits


class Alertmanager(pulumi.ComponentResource):
    """Alertmanager in a container: the generated config uploaded as a secret (its webhook URLs carry
    tokens), data on a named volume, a single instance (no cluster gossip)."""

    config_yaml: str
    image: docker.RemoteImage
    volume: docker.Volume
    container: docker.Container

    def __init__(self, name: str, args: AlertmanagerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("model-monitoring:index:Alertmanager", name, None, opts)
        self.config_yaml = alertmanager_yaml(args.routing)
        self.image = service_image(f"{name}-image", args.image, parent=self)
        self.volume = docker.Volume(
            f"{name}-data", name=f"{args.name_prefix}-{name}-data", opts=pulumi.ResourceOptions(parent=self)
        )
        self.container = service_container(
            name,
            parent=self,
            network_name=args.network_name,
            alias=ALIAS,
            port=PORT,
            host_port=args.host_port,
            bind_address=args.bind_address,
            healthcheck=["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{PORT}/-/healthy"],
            name=f"{args.name_prefix}-{name}",
            image=self.image.image_id,
            # Explicit arguments: any image whose entrypoint is the alertmanager binary works.
            command=[
                f"--config.file={CONFIG_FILE}",
                f"--storage.path={DATA_DIR}",
                f"--web.listen-address=:{PORT}",
                f"--web.external-url={args.url}",
                "--cluster.listen-address=",  # one instance: no gossip port, no peers to wait for
            ],
            limits=args.limits,
            config_dir=CONFIG_FILE.parent,
            uploads=[
                docker.ContainerUploadArgs(
                    file=str(CONFIG_FILE), content=pulumi.Output.secret(self.config_yaml)
                )
            ],
            volumes=[docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=DATA_DIR)],
        )
        self.register_outputs({"containerName": self.container.name, "volumeName": self.volume.name})
