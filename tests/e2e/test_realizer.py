"""The e2e realizer's translations from pulumi-docker inputs to Docker API values (no engine needed), and
its clean-up of what killed runs left (engine needed)."""

from __future__ import annotations

import contextlib
import io
import tarfile
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.support import docker_engine
from tests.support.docker_engine import local_ca_pem
from tests.support.docker_stack import LABEL, _upload_archive, go_duration_ns, remove_stale


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("10s", 10_000_000_000),
        ("1m30s", 90_000_000_000),
        ("500ms", 500_000_000),
        ("0s", 0),
        ("1.5s", 1_500_000_000),
    ],
)
def test_go_durations(text: str, nanoseconds: int) -> None:
    assert go_duration_ns(text) == nanoseconds


@pytest.mark.parametrize("text", ["10", "10 s", "s", "1d", "10s5"])
def test_malformed_go_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="Go duration"):
        go_duration_ns(text)


def test_uploads_become_one_archive_rooted_at_slash(tmp_path: Path) -> None:
    source = tmp_path / "script.sh"
    source.write_bytes(b"#!/bin/sh\necho hi\n")
    archive = _upload_archive(
        [
            {"file": "/etc/prometheus/prometheus.yml", "content": "global: {}\n"},
            {"file": "/etc/prometheus/rules/a.yml", "contentBase64": "Z3JvdXBzOiBbXQo="},
            {"file": "/usr/local/bin/hello", "source": str(source), "executable": True},
        ]
    )
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {
            "etc/prometheus/prometheus.yml",
            "etc/prometheus/rules/a.yml",
            "usr/local/bin/hello",
        }
        assert tar.extractfile("etc/prometheus/rules/a.yml").read() == b"groups: []\n"
        assert tar.extractfile("usr/local/bin/hello").read() == source.read_bytes()
    assert members["etc/prometheus/prometheus.yml"].mode == 0o644
    assert members["usr/local/bin/hello"].mode == 0o755


def test_an_upload_without_content_is_refused() -> None:
    with pytest.raises(ValueError, match="no content"):
        _upload_archive([{"file": "/etc/x"}])


def test_local_ca_pem_carries_only_certificates(tmp_path: Path) -> None:
    assert local_ca_pem(tmp_path) == ""
    (tmp_path / "notes.crt").write_text("not a certificate\n")
    assert local_ca_pem(tmp_path) == ""
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "proxy.crt").write_text(pem + "\n")
    assert local_ca_pem(tmp_path) == pem + "\n"


@pytest.mark.e2e
def test_remove_stale_takes_only_what_dead_runs_left(docker_client: docker.DockerClient) -> None:
    """A killed run's objects (labelled long ago) go; a running run's (labelled now) stay."""
    suffix = f"{time.time_ns():x}"
    old = f"{time.time_ns() - 2 * 3600 * 10**9:x}"
    stale_network = docker_client.networks.create(f"e2e-stale-{suffix}", labels={LABEL: old})
    stale_volume = docker_client.volumes.create(f"e2e-stale-{suffix}", labels={LABEL: old})
    live_volume = docker_client.volumes.create(f"e2e-live-{suffix}", labels={LABEL: suffix})
    try:
        removed = remove_stale(docker_client)
        assert f"network {stale_network.name}" in removed
        assert f"volume {stale_volume.name}" in removed
        assert f"volume {live_volume.name}" not in removed
        assert docker_client.volumes.get(live_volume.name)
    finally:
        for cleanup in (stale_network.remove, stale_volume.remove, live_volume.remove):
            with contextlib.suppress(docker.errors.NotFound):
                cleanup()


@pytest.mark.e2e
def test_uploads_into_a_read_only_root_are_refused_but_reach_a_volume_through_a_carrier(
    docker_client: docker.DockerClient, base_images: docker_engine.BaseImages
) -> None:
    """Why infra/containers.py has config carriers: the provider copies uploads to "/", which the engine
    refuses for a read-only root; a created-only container's volume takes them, and a read-only service
    reads them from that volume."""
    labels = {LABEL: f"{time.time_ns():x}"}
    image = base_images.gateway
    archive = _upload_archive([{"file": "/config/app.cfg", "content": "declared\n"}])
    volume = docker_client.volumes.create(f"e2e-carrier-{labels[LABEL]}", labels=labels)
    containers = []
    try:
        read_only = docker_client.containers.create(image, read_only=True, labels=labels)
        containers.append(read_only)
        with pytest.raises(docker.errors.APIError, match="rootfs is marked read-only"):
            read_only.put_archive("/", archive)
        mounted = {volume.name: {"bind": "/config", "mode": "rw"}}
        carrier = docker_client.containers.create(image, volumes=mounted, labels=labels)
        containers.append(carrier)
        assert carrier.put_archive("/", archive)
        service = docker_client.containers.run(
            image,
            entrypoint=["sh", "-c", "cat /config/app.cfg; touch /config/x 2>&1 || true"],
            read_only=True,
            volumes={volume.name: {"bind": "/config", "mode": "ro"}},
            labels=labels,
            detach=True,
        )
        containers.append(service)
        service.wait(timeout=30)
        output = service.logs().decode()
        assert output.startswith("declared\n"), output
        assert "Read-only file system" in output
    finally:
        for container in containers:
            container.remove(force=True)
        volume.remove(force=True)
