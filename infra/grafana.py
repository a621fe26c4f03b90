"""Grafana: the container (admin credentials from config or generated, read from files: never in its
environment as `docker inspect` shows it), a generated secret key, its data volume and healthcheck."""

from dataclasses import dataclass
from pathlib import PurePosixPath

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from infra.containers import ContainerLimits, service_container, service_image

PORT = 3000
ALIAS = "grafana"
DATA_DIR = "/var/lib/grafana"
HEALTH_PATH = "/api/health"
# The image's entrypoint reads GF_<KEY>__FILE into GF_<KEY>: the secrets come as files in this directory.
SECRETS_DIR = PurePosixPath("/etc/grafana/secrets")
ADMIN_PASSWORD_FILE = SECRETS_DIR / "admin-password"
SECRET_KEY_FILE = SECRETS_DIR / "secret-key"
# Official images are Alpine (busybox wget) or Ubuntu based (curl): accept either tool.
_HEALTHCHECK = (
    f"wget -q -O /dev/null http://127.0.0.1:{PORT}{HEALTH_PATH} "
    f"|| curl -fsS -o /dev/null http://127.0.0.1:{PORT}{HEALTH_PATH}"
)
# Quiet, closed defaults: no anonymous access, no sign-up, no phoning home; logs to the console only
# (the root is read-only).
_STATIC_ENV = (
    "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES=false",
    "GF_ANALYTICS_CHECK_FOR_UPDATES=false",
    "GF_ANALYTICS_REPORTING_ENABLED=false",
    "GF_AUTH_ANONYMOUS_ENABLED=false",
    "GF_LOG_MODE=console",
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
    limits: ContainerLimits


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
        # Signs Grafana's stored secrets (data source credentials); generated once per stack, kept.
        secret_key = random.RandomPassword(f"{name}-secret-key", length=40, special=False, opts=child)
        secrets = [
            docker.ContainerUploadArgs(file=str(ADMIN_PASSWORD_FILE), content=self.admin_password),
            docker.ContainerUploadArgs(
                file=str(SECRET_KEY_FILE), content=pulumi.Output.secret(secret_key.result)
            ),
        ]

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
                f"GF_SECURITY_ADMIN_PASSWORD__FILE={ADMIN_PASSWORD_FILE}",
                f"GF_SECURITY_SECRET_KEY__FILE={SECRET_KEY_FILE}",
                f"GF_SERVER_ROOT_URL={args.url}",
            ],
            limits=args.limits,
            tmpfs=["/tmp"],
            config_dir=SECRETS_DIR,
            uploads=secrets,
            volumes=[docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=DATA_DIR)],
        )

        self.register_outputs({"containerName": self.container.name, "volumeName": self.volume.name})
