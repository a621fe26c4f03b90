"""``python -m server --host H --port P --workers N``: serve ``server.app:create_app`` with uvicorn.

With more than one worker (or ``PROMETHEUS_MULTIPROC_DIR`` set) metrics run in prometheus-client's
multiprocess mode: the directory is emptied before the workers start (stale files would be summed),
and a temporary one is created and removed afterwards when none is given.

The server's settings (``server.settings``, from the environment) are checked before anything starts: a bad
value is one line on stderr and exit code 2. The connection limits among them are handed to uvicorn and to
the bounded HTTP protocol (``server.protocol``).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile

import uvicorn

from server.contract import SERVER_PORT
from server.settings import ServerSettings

log = logging.getLogger("server")
# A string: uvicorn imports it in each worker (server.metrics must not be imported here before
# PROMETHEUS_MULTIPROC_DIR is set).
HTTP_PROTOCOL = "server.protocol:BoundedHttpToolsProtocol"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m server", description="Serve the instrumented model.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=SERVER_PORT)
    parser.add_argument(
        "--workers",
        type=int,
        # A string default goes through `type`, so a bad WEB_CONCURRENCY is a usage error, not a traceback.
        default=os.environ.get("WEB_CONCURRENCY") or "1",
        help="worker processes, metrics summed over them (default: $WEB_CONCURRENCY or 1)",
    )
    levels = ["critical", "error", "warning", "info", "debug"]
    parser.add_argument("--log-level", default="info", choices=levels)
    parser.add_argument(
        "--access-log", action="store_true", help="log every request (off: /metrics already counts them)"
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    return args


def load_settings() -> ServerSettings:
    """The settings from the environment, or exit 2 with one line naming the bad value."""
    try:
        return ServerSettings.from_env()
    except ValueError as error:
        print(f"python -m server: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def uvicorn_options(settings: ServerSettings) -> dict[str, object]:
    """The uvicorn arguments the settings decide: the bounded protocol and the connection limits."""
    return {
        "http": HTTP_PROTOCOL,
        "ws": "none",  # no WebSocket routes: an Upgrade request is served as a plain one
        "timeout_keep_alive": settings.keep_alive,
        "limit_concurrency": settings.limit_concurrency,
        "timeout_graceful_shutdown": settings.graceful_shutdown,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = load_settings()
    created = None
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if args.workers > 1 and not multiproc_dir:
        multiproc_dir = created = tempfile.mkdtemp(prefix="model-server-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir  # inherited by the spawned workers
    if multiproc_dir:
        # Before the import: it creates this process's first metric file in the directory.
        os.makedirs(multiproc_dir, exist_ok=True)
        # Imported only now: prometheus-client reads the variable when it is first imported.
        from server.metrics import prepare_multiproc_dir

        prepare_multiproc_dir(multiproc_dir)
    try:
        uvicorn.run(
            "server.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=args.log_level,
            access_log=args.access_log,
            **uvicorn_options(settings),  # type: ignore[arg-type]
        )
    finally:
        if created:
            shutil.rmtree(created, ignore_errors=True)


if __name__ == "__main__":
    main()
