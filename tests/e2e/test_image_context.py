"""The model-server image's build context, as the real builder (BuildKit, honouring .dockerignore) sends it:
exactly the tracked files under server/, so a README, test or infra edit cannot change the image."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import uuid

import docker

from tests.support import PROJECT_ROOT
from tests.support.docker_stack import LABEL, buildkit_cli
from tests.support.pulumi_mocks import IMAGE, run_program


def test_the_build_context_is_the_server_package_only(docker_client: docker.DockerClient) -> None:
    build = run_program().one(IMAGE).plain_inputs["build"]
    cli = buildkit_cli()
    assert cli, "no docker CLI that builds with BuildKit"
    tag = f"model-monitoring-context-probe:{uuid.uuid4().hex[:8]}"
    # FROM scratch needs no base image: the image holds the context and nothing else.
    probe = f'FROM scratch\nLABEL {LABEL}="context-probe"\nCOPY . /context/\n'
    done = subprocess.run(
        [cli, "build", "-q", "-t", tag, "-f", "-", build["context"]],
        input=probe,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    try:
        container = docker_client.containers.create(tag, command="none")
        try:
            archive = io.BytesIO(b"".join(container.export()))
        finally:
            container.remove()
    finally:
        docker_client.images.remove(tag, force=True)
    with tarfile.open(fileobj=archive) as tar:
        sent = sorted(m.name.removeprefix("context/") for m in tar.getmembers() if m.isfile())
    sent = [name for name in sent if not name.startswith((".dockerenv", "dev/", "etc/", "proc/", "sys/"))]
    tracked = subprocess.run(
        ["git", "ls-files", "server"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "README.md" not in sent
    assert "pyproject.toml" not in sent
    assert sent == sorted(tracked)
