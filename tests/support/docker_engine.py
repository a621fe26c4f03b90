"""A Docker engine and the local base images for the e2e test (no image registry is reachable here).

`ensure_engine()` starts dockerd in the background when none answers (scripts/docker-engine.sh);
`ensure_base_images()` builds, once, a Debian python base image and Prometheus, Alertmanager and HAProxy
(gateway) images from Debian packages (scripts/e2e-images.sh; cached by tag + recipe label).
`local_ca_pem()` fills the program's optional `modelServerBuildCaFile` from the host's locally added CAs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import docker

from tests.support import PROJECT_ROOT

ENGINE_SCRIPT = PROJECT_ROOT / "scripts" / "docker-engine.sh"
IMAGES_SCRIPT = PROJECT_ROOT / "scripts" / "e2e-images.sh"
# Debian's place for certificate authorities an administrator added (e.g. a TLS-intercepting proxy).
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")

PYTHON_BASE_IMAGE = "model-monitoring/debian-python:bookworm"
PROMETHEUS_IMAGE = "model-monitoring/prometheus:bookworm"
ALERTMANAGER_IMAGE = "model-monitoring/alertmanager:bookworm"
GATEWAY_IMAGE = "model-monitoring/haproxy:bookworm"


class EngineUnavailable(RuntimeError):
    """No Docker engine answers and none could be started."""


@dataclass(frozen=True)
class BaseImages:
    python: str  # the Dockerfile's BASE_IMAGE
    prometheus: str  # ENTRYPOINT prometheus, runs as nobody, ships wget
    alertmanager: str  # ENTRYPOINT alertmanager, runs as nobody, ships wget
    gateway: str  # ENTRYPOINT haproxy, runs as haproxy, ships bash


def _run(script: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    # A process group of its own: on a timeout or an interrupt the script's children (debootstrap,
    # docker import) end with it, and SIGTERM first lets the script's and debootstrap's exit traps
    # unmount and remove their work directories. dockerd is started with setsid and outlives it.
    with subprocess.Popen(
        [str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _end_group(process)
            raise RuntimeError(f"{script.name} did not finish within {timeout:.0f}s") from exc
        except BaseException:
            _end_group(process)
            raise
    output = (stdout + stderr).strip()
    if process.returncode != 0:
        raise RuntimeError(f"{script.name} failed ({process.returncode}):\n{output}")
    return output


def _end_group(process: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds, and reap the script."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def ensure_engine(timeout: float = 120) -> docker.DockerClient:
    """A client of a Docker engine that answers, starting dockerd when needed; EngineUnavailable if not."""
    try:
        _run(ENGINE_SCRIPT, timeout)
    except RuntimeError as exc:
        raise EngineUnavailable(str(exc)) from exc
    client = docker.from_env(version="auto", timeout=300)
    client.ping()
    return client


def ensure_base_images(timeout: float = 900) -> tuple[BaseImages, str]:
    """The local base images (built when missing or stale) and what the build script said."""
    images = BaseImages(
        python=PYTHON_BASE_IMAGE,
        prometheus=PROMETHEUS_IMAGE,
        alertmanager=ALERTMANAGER_IMAGE,
        gateway=GATEWAY_IMAGE,
    )
    env = {
        "E2E_PYTHON_IMAGE": images.python,
        "E2E_PROMETHEUS_IMAGE": images.prometheus,
        "E2E_ALERTMANAGER_IMAGE": images.alertmanager,
        "E2E_GATEWAY_IMAGE": images.gateway,
    }
    return images, _run(IMAGES_SCRIPT, timeout, env)


def local_ca_pem(ca_dir: Path = LOCAL_CA_DIR) -> str:
    """The host's locally added CAs as one PEM text, or "" when there are none.

    Given to the program's `modelServerBuildCaFile` key, only pip inside the image build uses them
    (server/Dockerfile's BUILD_CA_CERTS); elsewhere this is empty.
    """
    pems = [path.read_text().strip() for path in sorted(ca_dir.glob("**/*.crt")) if path.is_file()]
    pem = "\n".join(p for p in pems if "BEGIN CERTIFICATE" in p)
    return pem + "\n" if pem else ""
