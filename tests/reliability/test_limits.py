"""Issue 14's findings reproduced against a real `python -m server` on 127.0.0.1, and shown fixed: bounded
request heads, read deadlines for silent and slow clients, 503s beyond the concurrency limit, a bounded
graceful shutdown that still finishes the request in flight.

Small timeouts (seconds) keep the suite short; the bounds asserted are the ones the settings promise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from server import contract
from tests.support.server import CHAOS_ENV, CHAOS_TOKEN, RunningServer, running_server

from .conftest import answer, connect, read_response, rejected, request_head, rss_bytes, send_all

pytestmark = pytest.mark.live

READ_TIMEOUT = 2
KEEP_ALIVE = 1
LIMIT = 24
LIMITS = {
    "MODEL_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
    "MODEL_KEEP_ALIVE_SECONDS": str(KEEP_ALIVE),
    "MODEL_LIMIT_CONCURRENCY": str(LIMIT),
}
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One worker (its pid is the process's), the default 16 KiB head bound, short read timeouts."""
    with running_server(tmp_path_factory.mktemp("limits"), env=LIMITS) as server:
        yield server


def big_header_request(url: str, size: int) -> int | None:
    """A complete GET with one `size`-byte header: the status answered, or None (closed unanswered)."""
    with connect(url, timeout=10) as sock:
        send_all(sock, request_head(extra=b"X-Big: " + b"a" * size + b"\r\n\r\n"))
        return answer(sock)[0]


def test_a_1mb_header_is_refused_and_rss_stays_flat(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}{contract.HEALTH_PATH}").status_code == 200
    before_rss, before_count = rss_bytes(server.process.pid), rejected(server.url, "headers_too_large")
    with ThreadPoolExecutor(8) as pool:  # 8 at once, as in the issue (there 50 MB each)
        statuses = list(pool.map(lambda _: big_header_request(server.url, MB), range(8)))
    grown = rss_bytes(server.process.pid) - before_rss
    assert all(status in (431, None) for status in statuses), statuses
    assert grown < 20 * MB, f"worker RSS grew {grown / MB:.1f} MB"
    print(f"8 x 1 MB headers: {statuses}, RSS {before_rss / MB:.1f} MB {grown / MB:+.1f} MB")
    assert rejected(server.url, "headers_too_large") - before_count == 8
    # Below the bound is served, and the server is fine afterwards.
    assert big_header_request(server.url, 15 * 1024) == 200
    assert httpx.get(f"{server.url}{contract.HEALTH_PATH}").status_code == 200


def head_of(size: int, close: bool = False) -> bytes:
    """A complete GET head of exactly `size` bytes (request line, headers, the blank line)."""
    start = request_head(extra=b"Connection: close\r\n" if close else b"") + b"X-Pad: "
    end = b"\r\n\r\n"
    return start + b"p" * (size - len(start) - len(end)) + end


def test_the_bound_is_exact_and_pipelined_requests_still_work(server: RunningServer) -> None:
    bound = 16 * 1024  # the default
    for size, status in ((bound, 200), (bound + 1, 431)):
        with connect(server.url, timeout=10) as sock:
            send_all(sock, head_of(size, close=True))
            assert answer(sock)[0] == status, size
    # Five heads of the bound in one write (80 KiB together): each fits, each is answered.
    with connect(server.url, timeout=10) as sock:
        send_all(sock, head_of(bound) * 4 + head_of(bound, close=True))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 5, data[:300]
    # One after the other on a keep-alive connection: the bound is per request, not per connection.
    with connect(server.url, timeout=10) as sock:
        for _ in range(4):
            send_all(sock, head_of(bound // 2))
            assert read_response(sock) == 200


def test_a_413_then_the_rest_of_the_body_then_silence_is_closed_by_keep_alive(server: RunningServer) -> None:
    """The app answers 413 before reading the body; the body's bytes arrive after the response (they
    cancel uvicorn's keep-alive timer), then nothing: the connection must still be closed."""
    body = b"x" * 70_000  # over the 64 KiB body bound
    with connect(server.url, timeout=KEEP_ALIVE + 5) as sock:
        head = request_head(contract.PREDICT_HANDLER, "POST", b"Content-Length: %d\r\n\r\n" % len(body))
        send_all(sock, head)
        assert read_response(sock) == 413
        send_all(sock, body)
        _, waited = answer(sock)
    assert waited <= KEEP_ALIVE + 1, waited


def test_silent_and_slow_clients_are_closed_within_the_timeout(server: RunningServer) -> None:
    bound = READ_TIMEOUT + 1

    def silent() -> tuple[int | None, float]:
        with connect(server.url, timeout=bound + 2) as sock:
            return answer(sock)

    def slowloris() -> tuple[int | None, float]:
        # A header byte every 0.2 s: each one arrives well within any idle timeout.
        with connect(server.url, timeout=bound + 2) as sock:
            start = time.monotonic()
            head = request_head(extra=b"X-Slow: " + b"a" * 100)
            for i in range(len(head)):
                if not send_all(sock, head[i : i + 1]) or time.monotonic() - start > bound + 1:
                    break
                time.sleep(0.2)
            status, _ = answer(sock)
            return status, time.monotonic() - start

    def endless_body() -> tuple[int | None, float]:
        with connect(server.url, timeout=bound + 2) as sock:
            start = time.monotonic()
            head = request_head(contract.PREDICT_HANDLER, "POST", b"Content-Length: 60000\r\n\r\n")
            send_all(sock, head)
            while send_all(sock, b" ") and time.monotonic() - start < bound + 1:
                time.sleep(0.2)
            status, _ = answer(sock)
            return status, time.monotonic() - start

    def idle_keep_alive() -> tuple[int | None, float]:
        with connect(server.url, timeout=bound + 2) as sock:
            send_all(sock, request_head(extra=b"\r\n"))
            assert read_response(sock) == 200  # the connection stays open (keep-alive)
            _, waited = answer(sock)
            return 200, waited

    before = rejected(server.url, "read_timeout")
    with ThreadPoolExecutor(4) as pool:
        futures = {f.__name__: pool.submit(f) for f in (silent, slowloris, endless_body, idle_keep_alive)}
        results = {name: future.result() for name, future in futures.items()}
    # Nothing answered yet: 408. The endless body was the app's: closed without an answer.
    assert {name: status for name, (status, _) in results.items()} == {
        "silent": 408,
        "slowloris": 408,
        "endless_body": None,
        "idle_keep_alive": 200,
    }
    waited = {name: seconds for name, (_, seconds) in results.items()}
    assert all(waited[name] <= bound for name in ("silent", "slowloris", "endless_body")), waited
    assert waited["idle_keep_alive"] <= KEEP_ALIVE + 1, waited
    assert rejected(server.url, "read_timeout") - before == 3  # the idle keep-alive close is normal


def test_malformed_requests_are_counted(server: RunningServer) -> None:
    before = rejected(server.url, "malformed")
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00"):
        with connect(server.url, timeout=5) as sock:
            send_all(sock, junk)
            assert answer(sock)[0] == 400
    assert rejected(server.url, "malformed") - before == 2
    # The log line is rate-limited: one line for both (the second within the interval).
    assert server.log().count("Invalid HTTP request received.") == 1


def test_upgrade_requests_are_served_plain_and_logged_rate_limited(server: RunningServer) -> None:
    upgrade = b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    upgrade += b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    for _ in range(3):
        with connect(server.url, timeout=5) as sock:
            send_all(sock, request_head(extra=upgrade))
            assert read_response(sock) == 200
    assert server.log().count("Unsupported upgrade request") == 1


def test_a_flood_beyond_the_concurrency_limit_gets_503(server: RunningServer) -> None:
    before = rejected(server.url, "over_capacity")
    with ExitStack() as stack:
        for _ in range(LIMIT):
            stack.enter_context(connect(server.url, timeout=5))  # open, silent: each holds a slot
        time.sleep(0.2)  # accepted by the server
        for _ in range(3):
            assert httpx.get(f"{server.url}{contract.HEALTH_PATH}").status_code == 503
    assert rejected(server.url, "over_capacity") - before == 3
    assert server.log().count("Exceeded concurrency limit.") == 1  # rate-limited
    assert httpx.get(f"{server.url}{contract.HEALTH_PATH}").status_code == 200


def test_sigterm_with_slow_clients_exits_within_the_bound_and_finishes_in_flight(tmp_path: Path) -> None:
    graceful = 3
    env = {
        **CHAOS_ENV,
        "MODEL_GRACEFUL_SHUTDOWN_SECONDS": str(graceful),
        "MODEL_READ_TIMEOUT_SECONDS": "60",  # the read deadline must not be what ends the slow clients
    }
    with ExitStack() as clients, running_server(tmp_path, workers=2, env=env) as server:
        for i in range(30):  # 20 endless bodies (the app is waiting for them), 10 unfinished heads
            sock = clients.enter_context(connect(server.url, timeout=30))
            body_follows = request_head(contract.PREDICT_HANDLER, "POST", b"Content-Length: 60000\r\n\r\n")
            send_all(sock, body_follows if i < 20 else request_head())
        in_flight: dict[str, object] = {}

        def slow_request() -> None:
            headers = {contract.CHAOS_TOKEN_HEADER: CHAOS_TOKEN, contract.CHAOS_DELAY_HEADER: "1.5"}
            response = httpx.post(
                f"{server.url}{contract.PREDICT_HANDLER}", json={"features": [0.5, 0.3, 0.7]}, headers=headers
            )
            in_flight["status"] = response.status_code

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.5)  # the request is in the app, sleeping
        start = time.monotonic()
        server.process.terminate()
        server.process.wait(timeout=graceful + 10)
        exited = time.monotonic() - start
        thread.join(timeout=5)
    assert exited < graceful + 3, f"exited {exited:.1f} s after SIGTERM"
    print(f"SIGTERM with 30 slow clients: exited after {exited:.1f} s (graceful bound {graceful} s)")
    assert in_flight == {"status": 200}
