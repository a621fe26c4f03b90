"""A real `python -m server` for tests: started on a free 127.0.0.1 port, ready when every worker has
finished its start-up, always stopped with its whole process group.

    with running_server(tmp_path, workers=2, env=CHAOS_ENV) as server:
        httpx.post(f"{server.url}/predict", json=..., headers={CHAOS_TOKEN_HEADER: CHAOS_TOKEN, ...})
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import PROJECT_ROOT
from tests.support.net import free_port, wait_for

# uvicorn logs this once per worker, after the app's lifespan start-up (metrics series created).
STARTUP_COMPLETE = "Application startup complete."
LOG_TAIL = 4000  # characters of the server log put into failure messages
# Chaos on, with the token a client must send (X-Chaos-Token) for the chaos headers to count.
CHAOS_TOKEN = "test-chaos-token-0123456789"
CHAOS_ENV = {"MODEL_CHAOS_ENABLED": "1", "MODEL_CHAOS_TOKEN": CHAOS_TOKEN}


@dataclass(frozen=True)
class RunningServer:
    url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    multiproc_dir: Path | None  # PROMETHEUS_MULTIPROC_DIR given to the server (None: not set by the test)
    log_path: Path  # the server's stdout + stderr

    @property
    def target(self) -> str:
        """host:port, as a Prometheus scrape config names it."""
        return self.url.removeprefix("http://")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self) -> str:
        return self.log()[-LOG_TAIL:]


def server_env(env: Mapping[str, str] | None = None, multiproc_dir: Path | None = None) -> dict[str, str]:
    """This environment without the server's own settings (MODEL_*, PROMETHEUS_MULTIPROC_DIR), so what the
    caller's shell has set cannot change the test, plus `env` and the multiprocess directory."""
    own = ("MODEL_", "PROMETHEUS_MULTIPROC_DIR")
    out = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    out.update(env or {})
    if multiproc_dir is not None:
        out["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)
    return out


@contextmanager
def running_server(
    tmp_path: Path,
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    multiproc_dir: Path | None = None,
    startup_timeout: float = 60.0,
    stop_timeout: float = 15.0,
    port: int | None = None,
) -> Iterator[RunningServer]:
    """`python -m server --workers N` on a free port, its log in `tmp_path`; yields once /ready answers
    and every worker logged its start-up; on exit SIGTERM (uvicorn stops its workers cleanly), SIGKILL to
    the process group after `stop_timeout` seconds and to whatever of the group is left. `port`: a given
    one (a replacement where a load balancer expects it), else a free one."""
    port = port or free_port()
    command = [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=server_env(env, multiproc_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers are stopped with it
        )
    server = RunningServer(f"http://127.0.0.1:{port}", process, multiproc_dir, log_path)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{server.log_tail()}")
            started = server.log().count(STARTUP_COMPLETE)
            return started >= workers and httpx.get(f"{server.url}/ready", timeout=2).status_code == 200

        try:
            wait_for(ready, startup_timeout, interval=0.1, what=f"the server ({workers} workers)")
        except TimeoutError as error:
            raise TimeoutError(f"{error}; its log:\n{server.log_tail()}") from None
        try:
            yield server
        except Exception:
            print(f"--- server log ({log_path}) ---\n{server.log_tail()}")  # shown with the failure
            raise
    finally:
        _stop(process, stop_timeout)


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):  # nothing left of the group: the usual case
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=timeout)
