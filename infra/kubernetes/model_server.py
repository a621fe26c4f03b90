"""KubernetesModelServer: the model-server image pushed to the registry, and its Deployment, Service,
HorizontalPodAutoscaler and PodDisruptionBudget."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra.kubernetes import manifests
from infra.kubernetes.manifests import Labels, Resources
from infra.model_server import chaos_token, model_server_image

NAME = manifests.APP_NAME  # Deployment, Service, HPA and PDB share it


@dataclass(frozen=True)
class RegistryLogin:
    server: str  # host[:port]
    username: str
    password: str


@dataclass(frozen=True)
class KubernetesModelServerArgs:
    namespace: pulumi.Input[str]
    labels: Labels
    image_name: str  # the reference the image is pushed as (registry/repository:tag)
    registry_login: RegistryLogin | None  # None: a registry without login (push and pull)
    base_image: str
    build_ca_certs: str
    replicas: int  # the Deployment's initial replicas and the autoscaler's minimum
    max_replicas: int
    cpu_target_percent: int
    workers: int
    chaos_enabled: bool
    resources: Resources


def registry_server(image_registry: str) -> str:
    """The host[:port] part of `registry.example.com/team`."""
    return image_registry.split("/", 1)[0]


def _docker_config_json(login: RegistryLogin) -> str:
    token = base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
    auths = {login.server: {"username": login.username, "password": login.password, "auth": token}}
    return json.dumps({"auths": auths}, sort_keys=True)


class KubernetesModelServer(pulumi.ComponentResource):
    """The image, pushed; pods run it by digest, so a new build rolls the Deployment."""

    image: docker.Image
    image_digest: pulumi.Output[str]
    pull_secret: k8s.core.v1.Secret | None
    chaos_token: pulumi.Output[str] | None  # None: chaos off
    chaos_secret: k8s.core.v1.Secret | None
    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    autoscaler: k8s.autoscaling.v2.HorizontalPodAutoscaler
    disruption_budget: k8s.policy.v1.PodDisruptionBudget

    def __init__(
        self, name: str, args: KubernetesModelServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("model-monitoring:kubernetes:ModelServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        login = args.registry_login

        self.image = model_server_image(
            f"{name}-image",
            image_name=args.image_name,
            base_image=args.base_image,
            build_ca_certs=args.build_ca_certs,
            parent=self,
            registry=docker.RegistryArgs(
                server=login.server if login else registry_server(args.image_name),
                username=login.username if login else None,
                password=pulumi.Output.secret(login.password) if login else None,
            ),
        )
        # After a push, repo_digest is "<registry>/<repository>@sha256:...": what the cluster pulls.
        self.image_digest = self.image.repo_digest

        common = args.labels.common()
        self.pull_secret = None
        if login is not None:
            self.pull_secret = k8s.core.v1.Secret(
                f"{name}-pull-secret",
                metadata=manifests.metadata(f"{NAME}-registry", args.namespace, common),
                type="kubernetes.io/dockerconfigjson",
                string_data={".dockerconfigjson": pulumi.Output.secret(_docker_config_json(login))},
                opts=child,
            )

        self.chaos_token = None
        self.chaos_secret = None
        if args.chaos_enabled:
            self.chaos_token = chaos_token(f"{name}-chaos-token", parent=self)
            self.chaos_secret = k8s.core.v1.Secret(
                f"{name}-chaos-secret",
                metadata=manifests.metadata(f"{NAME}-chaos", args.namespace, common),
                string_data={manifests.CHAOS_TOKEN_KEY: self.chaos_token},
                opts=child,
            )

        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=manifests.metadata(NAME, args.namespace, common),
            spec=manifests.deployment_spec(
                labels=args.labels,
                image=self.image_digest,
                replicas=args.replicas,
                workers=args.workers,
                chaos_enabled=args.chaos_enabled,
                resources=args.resources,
                image_pull_secret=f"{NAME}-registry" if login else None,
                chaos_secret=f"{NAME}-chaos" if self.chaos_secret else None,
            ),
            # After creation the autoscaler owns the replica count; an update must not reset it.
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=["spec.replicas"],
                depends_on=[r for r in (self.pull_secret, self.chaos_secret) if r is not None],
            ),
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=manifests.metadata(NAME, args.namespace, common),
            spec=manifests.service_spec(args.labels),
            opts=child,
        )
        self.autoscaler = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-autoscaler",
            metadata=manifests.metadata(NAME, args.namespace, common),
            spec=manifests.hpa_spec(
                self.deployment.metadata.name,
                min_replicas=args.replicas,
                max_replicas=args.max_replicas,
                cpu_percent=args.cpu_target_percent,
            ),
            opts=child,
        )
        self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-disruption-budget",
            metadata=manifests.metadata(NAME, args.namespace, common),
            spec=manifests.pdb_spec(args.labels),
            opts=child,
        )

        self.register_outputs({"imageDigest": self.image_digest, "serviceName": self.service.metadata.name})
