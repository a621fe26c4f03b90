"""Prometheus: scrape config generated from the metric contract, rule files from dashboards/, TSDB volume."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import pulumi
import pulumi_docker as docker
import yaml

from infra.config import parse_duration
from infra.containers import ContainerLimits, service_container, service_image
from infra.remote_write import RemoteWrite
from server import contract

PORT = 9090
ALIAS = "prometheus"  # its name on the monitoring network (Grafana's data source URL uses it)
CONFIG_DIR = PurePosixPath("/etc/prometheus")
CONFIG_FILE = CONFIG_DIR / "prometheus.yml"
RULES_DIR = "rules"  # relative to the config file, so `promtool check config` works on a copy
DATA_DIR = "/prometheus"
# The remote_write credential (password or token), uploaded beside the config, never inside it.
REMOTE_WRITE_CREDENTIALS_FILE = CONFIG_DIR / "secrets" / "remote-write-credentials"
# Prometheus refuses a scrape timeout longer than the interval.
_MAX_SCRAPE_TIMEOUT_SECONDS = 10


def internal_url() -> str:
    """Prometheus as seen from other containers on the network."""
    return f"http://{ALIAS}:{PORT}"


def scrape_timeout(scrape_interval: str) -> str:
    """The scrape timeout for an interval: the interval itself, at most 10s."""
    if parse_duration(scrape_interval) <= _MAX_SCRAPE_TIMEOUT_SECONDS:
        return scrape_interval
    return f"{_MAX_SCRAPE_TIMEOUT_SECONDS}s"


def _model_server_job(targets: Sequence[str], scrape_interval: str, discover_by_dns: bool) -> dict:
    """The `model-server` job. Every target carries `replica`, its host name. With `discover_by_dns`,
    each host is looked up (A records) every scrape interval and every address behind it is a target of
    its own, so while a replica is replaced its old and new container are scraped apart (one static
    target would alternate between the two and make their counters look reset)."""
    job: dict = {"job_name": contract.JOB_NAME, "metrics_path": contract.METRICS_PATH}
    if not discover_by_dns:
        job["static_configs"] = [
            {"targets": [target], "labels": {"replica": target.rpartition(":")[0]}} for target in targets
        ]
        return job
    hosts, ports = zip(*(target.rpartition(":")[::2] for target in targets), strict=True)
    if len(set(ports)) != 1:
        raise ValueError(f"DNS discovery needs one port for every target, got {sorted(set(ports))}")
    job["dns_sd_configs"] = [
        {"names": list(hosts), "type": "A", "port": int(ports[0]), "refresh_interval": scrape_interval}
    ]
    job["relabel_configs"] = [
        {"source_labels": ["__meta_dns_name"], "target_label": "replica"},
        # "model-server-0@172.18.0.5:8000": which replica, and which of its containers during a rollout.
        {"source_labels": ["__meta_dns_name", "__address__"], "separator": "@", "target_label": "instance"},
    ]
    return job


def scrape_config(
    targets: Sequence[str],
    scrape_interval: str,
    rule_files: Sequence[str],
    remote_write: RemoteWrite | None = None,
    alertmanagers: Sequence[str] = (),
    gateways: Sequence[str] = (),
    discover_by_dns: bool = False,
) -> str:
    """prometheus.yml: the `model-server` job scraping `targets` (host:port; see _model_server_job), the
    `model-gateway` job scraping `gateways` (host:port of the load balancer's exporter), the rule files,
    the Alertmanagers (host:port) firing alerts go to, and the optional remote_write destination (its
    credential read from REMOTE_WRITE_CREDENTIALS_FILE)."""
    timeout = scrape_timeout(scrape_interval)
    jobs = [_model_server_job(targets, scrape_interval, discover_by_dns)]
    if gateways:
        jobs.append(
            {
                "job_name": contract.GATEWAY_JOB_NAME,
                "metrics_path": contract.METRICS_PATH,
                "static_configs": [{"targets": list(gateways)}],
            }
        )
    document = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": timeout,
            "evaluation_interval": scrape_interval,
        },
        "rule_files": [f"{RULES_DIR}/{name}" for name in sorted(rule_files)],
        "scrape_configs": jobs,
    }
    if alertmanagers:
        document["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    if remote_write is not None:
        document["remote_write"] = [remote_write.prometheus_config(str(REMOTE_WRITE_CREDENTIALS_FILE))]
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def checked_rule_files(rule_files: Mapping[str, str]) -> dict[str, str]:
    """The rule files sorted by name, each name a plain *.yml / *.yaml file name (no path)."""
    for name in rule_files:
        if PurePosixPath(name).name != name or not name.endswith((".yml", ".yaml")):
            raise ValueError(f"rule file name {name!r} must be a plain *.yml / *.yaml file name")
    return dict(sorted(rule_files.items()))


@dataclass(frozen=True)
class PrometheusArgs:
    name_prefix: str  # Docker object names start with it
    network_name: pulumi.Input[str]
    image: str
    bind_address: str
    host_port: int
    scrape_interval: str
    retention: str
    scrape_targets: Sequence[str]  # "alias:port" of every model-server replica (looked up by DNS)
    # File name -> rule file YAML: the recording rules, and the alerts when Prometheus evaluates them.
    rule_files: Mapping[str, str]
    limits: ContainerLimits
    remote_write: RemoteWrite | None = None  # long-term storage
    alertmanagers: Sequence[str] = ()  # "host:port" of the Alertmanagers alerts go to
    gateways: Sequence[str] = ()  # "host:port" of the gateway's exporter


class Prometheus(pulumi.ComponentResource):
    """Prometheus in a container: generated config and rules uploaded, TSDB on a named volume."""

    config_yaml: str
    rule_files: dict[str, str]
    image: docker.RemoteImage
    volume: docker.Volume
    container: docker.Container

    def __init__(self, name: str, args: PrometheusArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("model-monitoring:index:Prometheus", name, None, opts)

        self.rule_files = checked_rule_files(args.rule_files)
        self.config_yaml = scrape_config(
            args.scrape_targets,
            args.scrape_interval,
            list(self.rule_files),
            args.remote_write,
            args.alertmanagers,
            args.gateways,
            discover_by_dns=True,
        )
        uploads = [docker.ContainerUploadArgs(file=str(CONFIG_FILE), content=self.config_yaml)] + [
            docker.ContainerUploadArgs(file=str(CONFIG_DIR / RULES_DIR / file_name), content=text)
            for file_name, text in self.rule_files.items()
        ]
        if args.remote_write is not None and args.remote_write.secret_value is not None:
            uploads.append(
                docker.ContainerUploadArgs(
                    file=str(REMOTE_WRITE_CREDENTIALS_FILE),
                    content=pulumi.Output.secret(args.remote_write.secret_value),
                )
            )

        self.image = service_image(f"{name}-image", args.image, parent=self)
        self.volume = docker.Volume(
            f"{name}-data",
            name=f"{args.name_prefix}-{name}-data",
            opts=pulumi.ResourceOptions(parent=self),
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
            # Explicit arguments: any image whose entrypoint is the prometheus binary works.
            command=[
                f"--config.file={CONFIG_FILE}",
                f"--storage.tsdb.path={DATA_DIR}",
                f"--storage.tsdb.retention.time={args.retention}",
                f"--web.listen-address=:{PORT}",
            ],
            limits=args.limits,
            config_dir=CONFIG_DIR,
            uploads=uploads,
            volumes=[docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=DATA_DIR)],
        )

        self.register_outputs({"containerName": self.container.name, "volumeName": self.volume.name})
