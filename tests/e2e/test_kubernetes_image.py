"""The kubernetes target's image and pod spec on a real Docker engine (no cluster runs here): the image the
program declares is built and pushed to a real registry (Debian's docker-registry on 127.0.0.1), and its
pushed digest runs under the constraints the Deployment declares — its user, a read-only root
filesystem with the declared emptyDirs as the only writable paths, no capabilities, the declared memory
and CPU limits, the declared environment — and answers the declared probes and /metrics (workers summed).
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
import yaml

from infra.config import cpu_millicores, memory_bytes
from server import contract
from tests.support import docker_engine
from tests.support.docker_stack import LABEL, RealizedStack
from tests.support.kubernetes import manifest
from tests.support.net import free_port, wait_for
from tests.support.pulumi_mocks import DEPLOYMENT, IMAGE, run_program
from tests.support.tools import require_binary

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry on a free 127.0.0.1 port (the engine pushes to loopback registries over plain HTTP)."""
    binary = require_binary("docker-registry", package="docker-registry")
    directory = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    config_path = directory / "config.yml"
    config_path.write_text(yaml.safe_dump(config))
    with (directory / "registry.log").open("wb") as log:
        process = subprocess.Popen([binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 200,
            30,
            what="registry",
        )
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)


def _docker_size(quantity: str) -> str:
    return f"{memory_bytes(quantity) // 2**20}m"


def test_the_pushed_image_runs_as_the_deployment_declares(
    docker_client: docker.DockerClient, base_images: docker_engine.BaseImages, registry: str, tmp_path: Path
) -> None:
    config = {
        "target": "kubernetes",
        "imageRegistry": f"{registry}/team",
        "modelServerBaseImage": base_images.python,
        "modelServerWorkers": "2",
    }
    if pem := docker_engine.local_ca_pem():
        ca_file = tmp_path / "local-ca.pem"
        ca_file.write_text(pem)
        config["modelServerBuildCaFile"] = str(ca_file)
    program = run_program(config, stack=f"e2e-{uuid.uuid4().hex[:8]}")
    realized = RealizedStack(program, docker_client)
    container = None
    try:
        realized.up()  # builds and pushes the image; the kubernetes objects are not Docker's to create
        image_name = program.one(IMAGE).plain_inputs["imageName"]
        pushed = realized.pushed[image_name]
        repository = image_name.rpartition(":")[0]
        assert pushed.startswith(f"{repository}@sha256:")
        # The registry has it: the manifest of the pushed digest answers.
        path = repository.removeprefix(f"{registry}/")
        digest = pushed.rpartition("@")[2]
        response = httpx.head(
            f"http://{registry}/v2/{path}/manifests/{digest}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                     "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"},
            timeout=10,
        )  # fmt: skip
        assert response.status_code == 200, response.text

        pod = manifest(program.one(DEPLOYMENT))["spec"]["template"]["spec"]
        (spec,) = pod["containers"]
        security = spec["securityContext"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        tmpfs = {}
        for mount in spec["volumeMounts"]:
            empty_dir = volumes[mount["name"]]["emptyDir"]  # the only volume kind the pod uses
            tmpfs[mount["mountPath"]] = f"size={_docker_size(empty_dir['sizeLimit'])},mode=1777"
        (port,) = spec["ports"]
        host_port = free_port()
        limits = spec["resources"]["limits"]
        container = docker_client.containers.run(
            pushed,  # what the Deployment runs: the pushed reference (here with its real digest)
            detach=True,
            name=f"{program.stack}-pod",
            labels={LABEL: realized.run_label},
            environment={e["name"]: e["value"] for e in spec["env"]},
            user=f"{security['runAsUser']}:{security['runAsGroup']}",
            read_only=security["readOnlyRootFilesystem"],
            tmpfs=tmpfs,
            cap_drop=security["capabilities"]["drop"],
            security_opt=["no-new-privileges"],
            mem_limit=_docker_size(limits["memory"]),
            nano_cpus=int(cpu_millicores(limits["cpu"]) * 1_000_000),
            ports={f"{port['containerPort']}/tcp": ("127.0.0.1", host_port)},
        )
        url = f"http://127.0.0.1:{host_port}"

        def probe(key: str) -> bool:
            container.reload()
            if container.status == "exited":
                raise RuntimeError(f"the pod's container exited:\n{container.logs().decode()[-4000:]}")
            return httpx.get(url + spec[key]["httpGet"]["path"], timeout=3).status_code == 200

        startup = spec["startupProbe"]
        wait_for(
            lambda: probe("startupProbe"),
            startup["periodSeconds"] * startup["failureThreshold"],
            what="startup",
        )
        assert probe("readinessProbe")
        assert probe("livenessProbe")

        rng = random.Random(13)
        for _ in range(20):
            body = {"features": [round(rng.uniform(-2, 2), 3) for _ in range(3)]}
            assert httpx.post(url + contract.PREDICT_HANDLER, json=body, timeout=10).status_code == 200
        metrics = httpx.get(url + contract.METRICS_PATH, timeout=10).text
        assert f"{contract.MODEL_INFO}{{" in metrics
        served = [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith(f"{contract.PREDICTION_VALUE}_count")
        ]
        assert served == [20.0]  # both workers' counts summed through the emptyDir
        # Nothing but the emptyDirs is writable, and the process is not root.
        assert container.exec_run(["python", "-c", "open('/opt/x', 'w')"]).exit_code != 0
        assert container.exec_run(["id", "-u"]).output.decode().strip() == str(security["runAsUser"])
    except Exception:
        if container is not None:
            print(container.logs().decode()[-4000:])
        raise
    finally:
        if container is not None:
            container.remove(force=True)
        for reference in realized.pushed.values():
            with contextlib.suppress(docker.errors.APIError):
                docker_client.images.remove(reference, noprune=True)
        errors = realized.close()
        assert not errors, errors
