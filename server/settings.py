"""Server settings, read once from the environment into a frozen dataclass.

``PROMETHEUS_MULTIPROC_DIR`` is not here: prometheus-client reads it when it is imported, so
``server.metrics`` reads it at the same moment (one source of truth for "multiprocess mode").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MODEL_PATH = Path(__file__).with_name("model") / "model.json"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")

# Allowed (minimum, maximum) of the integer settings.
BATCH_SIZE_RANGE = (1, 10_000)
BODY_BYTES_RANGE = (1024, 64 * 1024 * 1024)
DRAIN_SECONDS_RANGE = (0, 300)
HEADER_BYTES_RANGE = (1024, 1024 * 1024)
READ_TIMEOUT_RANGE = (1, 300)
KEEP_ALIVE_RANGE = (1, 300)
CONCURRENCY_RANGE = (1, 100_000)
GRACEFUL_SHUTDOWN_RANGE = (0, 300)
# A chaos token shorter than this is refused: it is all that stands between a client and a faked outage.
CHAOS_TOKEN_MIN_LENGTH = 16


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
    chaos_token: ``MODEL_CHAOS_TOKEN``; with chaos on, the chaos headers count only on a request that
        carries this value in ``X-Chaos-Token``; chaos on without a token (or a short one) is refused.
    max_batch_size: ``MODEL_MAX_BATCH_SIZE``, most rows in one ``{"instances": [...]}`` request.
    max_body_bytes: ``MODEL_MAX_BODY_BYTES``, larger request bodies get 413.
    shutdown_drain_seconds: ``MODEL_SHUTDOWN_DRAIN_SECONDS``: on SIGTERM, /ready answers 503 for this
        long while requests are still served (a load balancer takes the replica out, Prometheus scrapes
        its last counts), then the server shuts down. 0: shut down at once.

    Connection limits (enforced by ``server.protocol`` and uvicorn, per worker process):

    max_header_bytes: ``MODEL_MAX_HEADER_BYTES``, request line + headers; more gets 431 and the connection
        is closed before the rest is buffered.
    read_timeout: ``MODEL_READ_TIMEOUT_SECONDS``, a request (line, headers and body) must arrive within
        this many seconds of the connection opening or of its first byte; else the connection is closed.
    keep_alive: ``MODEL_KEEP_ALIVE_SECONDS``, an idle keep-alive connection is closed after this long.
    limit_concurrency: ``MODEL_LIMIT_CONCURRENCY``, open connections or in-flight requests beyond which
        new requests get 503.
    graceful_shutdown: ``MODEL_GRACEFUL_SHUTDOWN_SECONDS``, after SIGTERM in-flight requests get this
        long to finish, then they are cancelled and the worker exits. Keep it below the container's stop
        timeout (Docker's default is 10 s), or the container is killed mid-request.
    """

    model_path: Path = DEFAULT_MODEL_PATH
    chaos_enabled: bool = False
    chaos_token: str = field(default="", repr=False)
    max_batch_size: int = 100
    max_body_bytes: int = 64 * 1024
    shutdown_drain_seconds: int = 0
    max_header_bytes: int = 16 * 1024
    read_timeout: int = 10
    keep_alive: int = 5
    limit_concurrency: int = 512
    graceful_shutdown: int = 8

    def __post_init__(self) -> None:
        for name, (minimum, maximum) in _RANGES.items():
            value = getattr(self, name)
            if not minimum <= value <= maximum:
                raise ValueError(f"{name}={value} is out of range; allowed: {minimum}..{maximum}")
        if self.chaos_enabled and len(self.chaos_token) < CHAOS_TOKEN_MIN_LENGTH:
            raise ValueError(
                "MODEL_CHAOS_ENABLED is on but MODEL_CHAOS_TOKEN is "
                + ("unset" if not self.chaos_token else "too short")
                + f": set it to a secret of at least {CHAOS_TOKEN_MIN_LENGTH} characters"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerSettings:
        env = os.environ if env is None else env
        return cls(
            model_path=Path(env.get("MODEL_PATH") or DEFAULT_MODEL_PATH),
            chaos_enabled=_bool(env, "MODEL_CHAOS_ENABLED", cls.chaos_enabled),
            chaos_token=env.get("MODEL_CHAOS_TOKEN", "").strip(),
            **{name: _int(env, key, getattr(cls, name), *_RANGES[name]) for name, key in _INT_KEYS.items()},
        )


# Every integer setting: its environment variable and its allowed range.
_INT_KEYS = {
    "max_batch_size": "MODEL_MAX_BATCH_SIZE",
    "max_body_bytes": "MODEL_MAX_BODY_BYTES",
    "max_header_bytes": "MODEL_MAX_HEADER_BYTES",
    "read_timeout": "MODEL_READ_TIMEOUT_SECONDS",
    "keep_alive": "MODEL_KEEP_ALIVE_SECONDS",
    "limit_concurrency": "MODEL_LIMIT_CONCURRENCY",
    "graceful_shutdown": "MODEL_GRACEFUL_SHUTDOWN_SECONDS",
    "shutdown_drain_seconds": "MODEL_SHUTDOWN_DRAIN_SECONDS",
}
_RANGES = {
    "max_batch_size": BATCH_SIZE_RANGE,
    "max_body_bytes": BODY_BYTES_RANGE,
    "max_header_bytes": HEADER_BYTES_RANGE,
    "read_timeout": READ_TIMEOUT_RANGE,
    "keep_alive": KEEP_ALIVE_RANGE,
    "limit_concurrency": CONCURRENCY_RANGE,
    "graceful_shutdown": GRACEFUL_SHUTDOWN_RANGE,
    "shutdown_drain_seconds": DRAIN_SECONDS_RANGE,
}
