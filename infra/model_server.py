"""ModelServer: the model-server image built from this checkout and N replicas on the monitoring network."""

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from infra.config import PROJECT_ROOT
from infra.containers import ContainerLimits, service_container
from server import contract

# Build inputs resolved from the project root, never from the working directory (Pulumi runs us from infra/).
DOCKERFILE = PROJECT_ROOT / "server" / "Dockerfile"

# Replica i answers on the network as "model-server-i": the names Prometheus discovers the replicas by and
# the gateway balances over. While a replica is replaced, its old and new container both hold the name.
ALIAS_PREFIX = "model-server"
# After the drain, uvicorn's own graceful shutdown (MODEL_GRACEFUL_SHUTDOWN_SECONDS): in-flight requests
# finish (chaos delays are <= 5 s); Docker waits 2 s more before it kills.
GRACEFUL_SHUTDOWN_SECONDS = 8
SHUTDOWN_GRACE_SECONDS = GRACEFUL_SHUTDOWN_SECONDS + 2

# The image ships Python, so the healthcheck needs no curl/wget.
_HEALTHCHECK = (
    "import sys, urllib.request; "
    f"url = 'http://127.0.0.1:{contract.SERVER_PORT}{contract.HEALTH_PATH}'; "
    "response = urllib.request.urlopen(url, timeout=3); "
    "sys.exit(response.status != 200)"
)


def model_server_image(
    resource_name: str,
    *,
    image_name: str,
    base_image: str,
    build_ca_certs: str,
    parent: pulumi.Resource,
    registry: docker.RegistryArgs | None = None,
) -> docker.Image:
    """The model-server image built from this checkout: kept local (`registry` None) or pushed to
    `registry` (then `image_name` is a reference in it). Either way dependants run its `repo_digest`, so
    a new build replaces what runs it."""
    return docker.Image(
        resource_name,
        image_name=image_name,
        build=docker.DockerBuildArgs(
            context=str(PROJECT_ROOT),
            dockerfile=str(DOCKERFILE),
            # BUILD_CA_CERTS only when given, so the usual build declares exactly BASE_IMAGE.
            args={"BASE_IMAGE": base_image} | ({"BUILD_CA_CERTS": build_ca_certs} if build_ca_certs else {}),
        ),
        skip_push=registry is None,
        registry=registry,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def chaos_token(resource_name: str, *, parent: pulumi.Resource) -> pulumi.Output[str]:
    """The per-stack secret a request must carry (X-Chaos-Token) for the replicas to honour its chaos
    headers: generated once and kept in the stack state, so a client that can reach the API cannot fake
    an outage."""
    token = random.RandomPassword(
        resource_name, length=32, special=False, opts=pulumi.ResourceOptions(parent=parent)
    )
    return pulumi.Output.secret(token.result)


def replica_alias(index: int) -> str:
    return f"{ALIAS_PREFIX}-{index}"


@dataclass(frozen=True)
class ModelServerArgs:
    name_prefix: str  # Docker object names start with it ("model-monitoring-dev")
    network_name: pulumi.Input[str]
    base_image: str  # the Dockerfile's BASE_IMAGE build arg
    replicas: int
    bind_address: str
    debug_host_port: int | None  # replica i publishes its port on debug_host_port + i; None: not at all
    workers: int  # uvicorn workers per replica (WEB_CONCURRENCY)
    chaos_enabled: bool
    drain_seconds: int  # MODEL_SHUTDOWN_DRAIN_SECONDS: how long a stopping replica stays unready first
    limits: ContainerLimits
    build_ca_certs: str = ""  # PEM text pip trusts during the build (the Dockerfile's BUILD_CA_CERTS)


class ModelServer(pulumi.ComponentResource):
    """Builds the image and runs `replicas` containers of it, each with a stable network alias.

    A new image (or any other change) replaces the replicas one after the other, each replacement healthy
    before the next starts and every old container removed only after that (auto-named containers, so
    old and new coexist); a removed replica drains first (/ready 503 while it still answers), so the
    gateway moves traffic away and Prometheus scrapes its last counts."""

    image: docker.Image
    containers: list[docker.Container]
    aliases: list[str]
    image_digest: pulumi.Output[str]
    chaos_token: pulumi.Output[str] | None  # None: chaos off

    def __init__(self, name: str, args: ModelServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("model-monitoring:index:ModelServer", name, None, opts)

        self.image = model_server_image(
            f"{name}-image",
            image_name=f"{args.name_prefix}-{name}:latest",
            base_image=args.base_image,
            build_ca_certs=args.build_ca_certs,
            parent=self,
        )
        # With skip_push, repo_digest is the local image id: a new build replaces the containers.
        self.image_digest = self.image.repo_digest

        self.chaos_token = chaos_token(f"{name}-chaos-token", parent=self) if args.chaos_enabled else None
        chaos_env = (
            [] if self.chaos_token is None else [pulumi.Output.concat("MODEL_CHAOS_TOKEN=", self.chaos_token)]
        )
        self.aliases = [replica_alias(i) for i in range(args.replicas)]
        stop_seconds = args.drain_seconds + SHUTDOWN_GRACE_SECONDS
        self.containers = []
        for i, alias in enumerate(self.aliases):
            self.containers.append(
                service_container(
                    f"{name}-{i}",
                    parent=self,
                    network_name=args.network_name,
                    alias=alias,
                    port=contract.SERVER_PORT,
                    host_port=None if args.debug_host_port is None else args.debug_host_port + i,
                    bind_address=args.bind_address,
                    healthcheck=["CMD", "python", "-c", _HEALTHCHECK],
                    rolling=True,
                    # One replica at a time: the next replacement starts once this one is healthy.
                    depends_on=self.containers[-1:],
                    image=self.image_digest,
                    limits=args.limits,
                    tmpfs=["/tmp"],  # the multiprocess metrics directory (python -m server makes it)
                    envs=[
                        f"MODEL_CHAOS_ENABLED={'true' if args.chaos_enabled else 'false'}",
                        f"WEB_CONCURRENCY={args.workers}",
                        f"MODEL_SHUTDOWN_DRAIN_SECONDS={args.drain_seconds}",
                        f"MODEL_GRACEFUL_SHUTDOWN_SECONDS={GRACEFUL_SHUTDOWN_SECONDS}",
                        *chaos_env,
                    ],
                    # Removal (a replacement, `pulumi destroy`) and `docker stop` send SIGTERM and wait
                    # this long for the drain and the graceful shutdown before they kill.
                    destroy_grace_seconds=stop_seconds,
                    stop_timeout=stop_seconds,
                )
            )

        self.register_outputs({"imageDigest": self.image_digest, "aliases": self.aliases})
