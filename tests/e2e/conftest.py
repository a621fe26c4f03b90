"""Fixtures of the Docker e2e test: an engine (started when needed), the local base images, and the stack
the Pulumi program declares (run under mocks) realized on that engine, removed again afterwards."""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest

from tests.support import docker_engine
from tests.support.docker_stack import RealizedStack, remove_stale
from tests.support.net import free_port
from tests.support.pulumi_mocks import CONTAINER, DASHBOARD, IMAGE, Program, Resource, run_program

SCRAPE_INTERVAL = "1s"
REPLICAS = 2


def _say(config: pytest.Config, line: str) -> None:
    """A line on the terminal even while pytest captures output."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    capture = config.pluginmanager.getplugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line, yellow=True, bold=True)


@pytest.fixture(scope="session")
def docker_client(pytestconfig: pytest.Config) -> docker.DockerClient:
    try:
        return docker_engine.ensure_engine()
    except docker_engine.EngineUnavailable as exc:
        reason = f"NO DOCKER ENGINE, the e2e test did not run: {exc}"
        _say(pytestconfig, reason)
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI must prove the stack on a real engine, not skip it
        pytest.skip(reason)


@pytest.fixture(scope="session")
def base_images(docker_client: docker.DockerClient, pytestconfig: pytest.Config) -> docker_engine.BaseImages:
    start = time.monotonic()
    images, output = docker_engine.ensure_base_images()
    _say(pytestconfig, f"e2e base images ({time.monotonic() - start:.0f}s): {output.splitlines()[-1]}")
    return images


@dataclass(frozen=True)
class Stack:
    program: Program
    realized: RealizedStack
    prometheus_url: str
    alertmanager_url: str
    model_api_url: str  # the gateway: the one endpoint clients use
    scrape_interval_s: float

    def model_server_containers(self) -> list[Resource]:
        """The declared containers running the image the program builds."""
        digest = self.program.one(IMAGE).outputs["repoDigest"]
        return [c for c in self.program.of_type(CONTAINER) if c.plain_inputs["image"] == digest]

    def dashboard(self) -> dict:
        return json.loads(self.program.one(DASHBOARD, "grafana-content-dashboard").plain_inputs["configJson"])


@pytest.fixture(scope="module")
def stack(
    docker_client: docker.DockerClient,
    base_images: docker_engine.BaseImages,
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    if stale := remove_stale(docker_client):
        _say(pytestconfig, f"removed what earlier e2e runs left behind: {stale}")
    config = {
        # The program's own image keys point at the local images: no special code path for the test.
        "prometheusImage": base_images.prometheus,
        "alertmanagerImage": base_images.alertmanager,
        "gatewayImage": base_images.gateway,
        "modelServerBaseImage": base_images.python,
        "modelServerReplicas": str(REPLICAS),
        "modelServerHostPort": str(free_port()),
        "prometheusHostPort": str(free_port()),
        "grafanaHostPort": str(free_port()),
        "alertmanagerHostPort": str(free_port()),
        "bindAddress": "127.0.0.1",
        "scrapeInterval": SCRAPE_INTERVAL,
        # Prometheus evaluates the alert rules too, so the test sees them load and evaluate.
        "alertEngine": "both",
    }
    # This machine intercepts TLS to PyPI: pip in the image build trusts the host's CAs through the
    # program's own optional key (empty, and unset here, on a machine without local CAs).
    if pem := docker_engine.local_ca_pem():
        ca_file = tmp_path_factory.mktemp("ca") / "local-ca.pem"
        ca_file.write_text(pem)
        config["modelServerBuildCaFile"] = str(ca_file)
    # A stack name of its own: every Docker object name derives from it, so runs never collide.
    program = run_program(config, stack=f"e2e-{uuid.uuid4().hex[:8]}")
    realized = RealizedStack(program, docker_client, log=lambda line: _say(pytestconfig, line))
    try:
        realized.up()
        for skipped in realized.skipped:
            message = (
                f"E2E: container {skipped.resource.name} NOT STARTED ({skipped.reason}); "
                "its part of the stack is not covered by this test"
            )
            _say(pytestconfig, message)
            warnings.warn(message, stacklevel=1)
        timings = ", ".join(f"{what} {seconds:.1f}s" for what, seconds in realized.timings.items())
        _say(pytestconfig, f"e2e stack up: {timings}")
        outputs = program.outputs
        yield Stack(
            program=program,
            realized=realized,
            prometheus_url=outputs["prometheusUrl"],
            alertmanager_url=outputs["alertmanagerUrl"],
            model_api_url=outputs["modelServerUrl"],
            scrape_interval_s=float(SCRAPE_INTERVAL.removesuffix("s")),
        )
    except Exception:
        _say(pytestconfig, f"e2e container logs:\n{realized.all_logs()}")
        raise
    finally:
        errors = realized.close()
        leftovers = realized.leftovers()
        if errors or leftovers:
            raise RuntimeError(f"e2e clean-up incomplete: {errors + leftovers}")
