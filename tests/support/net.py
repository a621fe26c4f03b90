"""Generic helpers for tests that talk to real processes over 127.0.0.1: free ports, a bounded wait,
a scrape of a /metrics page."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from server import contract

T = TypeVar("T")


class ProbeError(RuntimeError):
    """A probe got an answer it cannot use yet; `wait_for` retries it (like a refused connection)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_range(count: int, attempts: int = 50) -> int:
    """First port of `count` consecutive TCP ports on 127.0.0.1 that were all free a moment ago."""
    for _ in range(attempts):
        first = free_port()
        if first + count <= 65535 and _ports_free(first, count):
            return first
    raise RuntimeError(f"no {count} consecutive free ports found")


def _ports_free(first: int, count: int) -> bool:
    with ExitStack() as stack:
        for port in range(first, first + count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def wait_for(
    probe: Callable[[], T | None], timeout: float, interval: float = 0.25, what: str = "condition"
) -> T:
    """Call `probe` until it returns something truthy (returned) or `timeout` seconds pass (TimeoutError
    naming `what` and the last exception, if any). HTTP, OS and ProbeError exceptions are retried;
    any other exception propagates at once (a probe raises one to give up early)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = probe()
            if result:
                return result
        except (httpx.HTTPError, ProbeError, OSError) as error:
            last_error = error
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of `url`/metrics (the model server's, HAProxy's, ...): (name, sorted labels) -> value."""
    text = httpx.get(f"{url}{contract.METRICS_PATH}", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
