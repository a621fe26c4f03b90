"""Long-term metrics: one remote_write destination, rendered for a plain Prometheus config (the Docker
target) and for the Prometheus Operator's `remoteWrite` spec (the kubernetes target).

Every series is sent, recording rules' outputs included (no write_relabel_configs): the long-term store
answers the same dashboard queries. Credentials never enter the rendered config: Prometheus reads them
from a file (Docker) or the operator from a Secret (kubernetes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.config import StackSettings

# The queue's name in Prometheus' own metrics (prometheus_remote_storage_*{remote_name=...}).
NAME = "long-term"
PASSWORD_KEY = "password"
USERNAME_KEY = "username"
TOKEN_KEY = "token"


@dataclass(frozen=True)
class RemoteWrite:
    url: str
    username: str = ""  # basic auth (with password)
    password: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)

    @property
    def secret_value(self) -> str | None:
        """The one credential Prometheus must read (password or token), None without auth."""
        return self.password if self.username else self.bearer_token

    def prometheus_config(self, credentials_file: str) -> dict:
        """A `remote_write` entry of prometheus.yml; the credential is read from `credentials_file`."""
        entry: dict = {"url": self.url, "name": NAME}
        if self.username:
            entry["basic_auth"] = {"username": self.username, "password_file": credentials_file}
        elif self.bearer_token:
            entry["authorization"] = {"type": "Bearer", "credentials_file": credentials_file}
        return entry

    def secret_data(self) -> dict[str, str]:
        """The keys of the Kubernetes Secret the operator reads (empty without auth)."""
        if self.username:
            return {USERNAME_KEY: self.username, PASSWORD_KEY: self.password or ""}
        if self.bearer_token:
            return {TOKEN_KEY: self.bearer_token}
        return {}

    def operator_spec(self, secret_name: str) -> dict:
        """A `Prometheus.spec.remoteWrite` item (monitoring.coreos.com/v1) reading `secret_name`."""
        entry: dict = {"url": self.url, "name": NAME}
        if self.username:
            entry["basicAuth"] = {
                "username": {"name": secret_name, "key": USERNAME_KEY},
                "password": {"name": secret_name, "key": PASSWORD_KEY},
            }
        elif self.bearer_token:
            entry["authorization"] = {
                "type": "Bearer",
                "credentials": {"name": secret_name, "key": TOKEN_KEY},
            }
        return entry


def from_settings(settings: StackSettings) -> RemoteWrite | None:
    """The configured destination, None when prometheusRemoteWriteUrl is empty."""
    if not settings.prometheus_remote_write_url:
        return None
    return RemoteWrite(
        url=settings.prometheus_remote_write_url,
        username=settings.prometheus_remote_write_username,
        password=settings.prometheus_remote_write_password,
        bearer_token=settings.prometheus_remote_write_bearer_token,
    )
