"""Grafana: the container (admin credentials from config or generated), its data volume and healthcheck."""

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from infra.containers import service_container, service_image

PORT = 3000
ALIAS = "grafana"
DATA_DIR = "/var/lib/grafana"
HEALTH_PATH = "/api/health"
# Official images are Alpine (busybox wget) or Ubuntu based (curl): accept either tool.
_HEALTHCHECK = (
    f"wget -q -O /dev/null http://127.0.0.1:{PORT}{HEALTH_PATH} "
    f"|| curl -fsS -o /dev/null http://127.0.0.1:{PORT}{HEALTH_PATH}"
)
# Quiet, closed defaults: no sign-up, no phoning home.
_STATIC_ENV = (
    "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES=false",
    "GF_ANALYTICS_CHECK_FOR_UPDATES=false",
    "GF_ANALYTICS_REPORTING_ENABLED=false",
    "GF_AUTH_ANONYMOUS_ENABLED=false",
    "GF_NEWS_NEWS_FEED_ENABLED=false",
    "GF_USERS_ALLOW_SIGN_UP=false",
)


@dataclass(frozen=True)
class GrafanaArgs:
    name_prefix: str  # Docker object names start with it
    network_name: pulumi.Input[str]
    image: str
    bind_address: str
    host_port: int
    url: str  # how users reach it (GF_SERVER_ROOT_URL, so links in notifications work)
    admin_user: str
    admin_password: pulumi.Input[str] | None  # None: generate one


class Grafana(pulumi.ComponentResource):
    """Grafana in a container; `wait=True` so dependants (the Grafana provider) start once it is healthy."""

    admin_password: pulumi.Output[str]
    image: docker.RemoteImage
    volume: docker.Volume
    container: docker.Container

    def __init__(self, name: str, args: GrafanaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("model-monitoring:index:Grafana", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        if args.admin_password is None:
            generated = random.RandomPassword(f"{name}-admin-password", length=32, special=False, opts=child)
            password = generated.result
        else:
            password = args.admin_password
        self.admin_password = pulumi.Output.secret(password)

        self.image = service_image(f"{name}-image", args.image, parent=self)
        self.volume = docker.Volume(f"{name}-data", name=f"{args.name_prefix}-{name}-data", opts=child)
        self.container = service_container(
            name,
            parent=self,
            network_name=args.network_name,
            alias=ALIAS,
            port=PORT,
            host_port=args.host_port,
            bind_address=args.bind_address,
            healthcheck=["CMD-SHELL", _HEALTHCHECK],
            start_period="20s",
            retries=5,
            wait_timeout=180,
            name=f"{args.name_prefix}-{name}",
            image=self.image.image_id,
            envs=[
                *_STATIC_ENV,
                f"GF_SECURITY_ADMIN_USER={args.admin_user}",
                pulumi.Output.concat("GF_SECURITY_ADMIN_PASSWORD=", self.admin_password),
                f"GF_SERVER_ROOT_URL={args.url}",
            ],
            volumes=[docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=DATA_DIR)],
        )

        self.register_outputs({"containerName": self.container.name, "volumeName": self.volume.name})
