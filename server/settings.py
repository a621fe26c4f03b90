"""Server settings, read once from the environment into a frozen dataclass.

``PROMETHEUS_MULTIPROC_DIR`` is not here: prometheus-client reads it when it is imported, so
``server.metrics`` reads it at the same moment (one source of truth for "multiprocess mode").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_PATH = Path(__file__).with_name("model") / "model.json"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")

# Allowed (minimum, maximum) of the integer settings.
BATCH_SIZE_RANGE = (1, 10_000)
BODY_BYTES_RANGE = (1024, 64 * 1024 * 1024)
DRAIN_SECONDS_RANGE = (0, 300)


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{key}={raw!r} is not a boolean; allowed: {', '.join(_TRUE + _FALSE[:-1])}")


def _int(env: Mapping[str, str], key: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{key}={raw!r} is not an integer; allowed: {minimum}..{maximum}") from None
    if not minimum <= value <= maximum:
        raise ValueError(f"{key}={value} is out of range; allowed: {minimum}..{maximum}")
    return value


@dataclass(frozen=True)
class ServerSettings:
    """Everything the app reads from its environment.

    model_path: ``MODEL_PATH``, the JSON artifact (default: the packaged example model).
    chaos_enabled: ``MODEL_CHAOS_ENABLED``; only then does POST /predict honour the
        ``X-Chaos-Delay-Seconds`` and ``X-Chaos-Status`` request headers.
    max_batch_size: ``MODEL_MAX_BATCH_SIZE``, most rows in one ``{"instances": [...]}`` request.
    max_body_bytes: ``MODEL_MAX_BODY_BYTES``, larger request bodies get 413.
    shutdown_drain_seconds: ``MODEL_SHUTDOWN_DRAIN_SECONDS``: on SIGTERM, /ready answers 503 for this
        long while requests are still served (a load balancer takes the replica out, Prometheus scrapes
        its last counts), then the server shuts down. 0: shut down at once.
    """

    model_path: Path = DEFAULT_MODEL_PATH
    chaos_enabled: bool = False
    max_batch_size: int = 100
    max_body_bytes: int = 64 * 1024
    shutdown_drain_seconds: int = 0

    def __post_init__(self) -> None:
        if self.max_batch_size < BATCH_SIZE_RANGE[0]:
            raise ValueError(f"max_batch_size={self.max_batch_size} must be >= {BATCH_SIZE_RANGE[0]}")
        if self.max_body_bytes < BODY_BYTES_RANGE[0]:
            raise ValueError(f"max_body_bytes={self.max_body_bytes} must be >= {BODY_BYTES_RANGE[0]}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerSettings:
        env = os.environ if env is None else env
        return cls(
            model_path=Path(env.get("MODEL_PATH") or DEFAULT_MODEL_PATH),
            chaos_enabled=_bool(env, "MODEL_CHAOS_ENABLED", cls.chaos_enabled),
            max_batch_size=_int(env, "MODEL_MAX_BATCH_SIZE", cls.max_batch_size, *BATCH_SIZE_RANGE),
            max_body_bytes=_int(env, "MODEL_MAX_BODY_BYTES", cls.max_body_bytes, *BODY_BYTES_RANGE),
            shutdown_drain_seconds=_int(
                env, "MODEL_SHUTDOWN_DRAIN_SECONDS", cls.shutdown_drain_seconds, *DRAIN_SECONDS_RANGE
            ),
        )
