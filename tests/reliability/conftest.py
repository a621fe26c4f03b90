"""Raw-socket clients for the reliability suite: what a hostile or broken client does, byte by byte.

Every socket has a timeout, so a server that never answers fails the test instead of hanging it.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from server import contract
from tests.support.net import scrape


def connect(url: str, timeout: float) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def request_head(path: str = contract.HEALTH_PATH, method: str = "GET", extra: bytes = b"") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + extra


def answer(sock: socket.socket) -> tuple[int | None, float]:
    """Read until the server closes: (the status of the first response or None if nothing came back,
    seconds waited). A reset counts as closed; a socket timeout propagates (the server held on)."""
    start = time.monotonic()
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    elapsed = time.monotonic() - start
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else None
    return status, elapsed


def read_response(sock: socket.socket) -> int:
    """Read one response with a Content-Length body off a keep-alive connection; its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(v)
        for k, _, v in (line.partition(b":") for line in head.split(b"\r\n"))
        if k.lower() == b"content-length"
    )
    while len(body) < length:
        body += sock.recv(65536)
    assert len(body) == length, "more than one response read"
    return int(head.split(b" ", 2)[1])


def send_all(sock: socket.socket, data: bytes) -> bool:
    """Send everything, or stop when the server closes the connection (False)."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def rejected(url: str, reason: str) -> float:
    return scrape(url)[(contract.HTTP_REJECTED_TOTAL, (("reason", reason),))]
