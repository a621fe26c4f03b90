"""uvicorn's httptools protocol with the limits it lacks: a bounded request head and a read deadline.

uvicorn bounds neither the request line + headers (httptools concatenates a header's pieces however
long it grows) nor the time a client may take to send a request (its keep-alive timer only runs after a
response, so a silent or slowloris connection is held forever). This subclass adds, per connection:

- head bound: bytes of the request line + headers are counted as they arrive and never fed to the
  parser past ``max_header_bytes``; a longer head gets 431 and the connection is closed.
- read deadline: a request (line, headers and body) must be received within ``read_timeout`` seconds of
  the connection opening or of the request's first byte; else 408 (nothing answered yet) or a plain close.
- refusals (parser 400s, 431, read timeouts, 503s over ``limit_concurrency``; uvicorn's own check is
  taken over, so a flood is not one log line per 503) are counted in
  ``model_http_rejected_total{reason}`` and logged at most once per ``LOG_INTERVAL_SECONDS`` per reason.

The limits come from ``ServerSettings.from_env()`` (the worker's environment, as the app's do);
``python -m server`` runs uvicorn with it. It overrides a few methods of uvicorn's
``HttpToolsProtocol`` and uses its attributes (``parser``, ``cycle``, ``transport``...): the tests in
tests/reliability/ exercise each override against the uvicorn version installed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from time import monotonic
from typing import Any

import httptools
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from server import metrics
from server.settings import ServerSettings

LOG_INTERVAL_SECONDS = 10.0


@functools.cache
def _settings() -> ServerSettings:
    return ServerSettings.from_env()


class RateLimitedLog:
    """One warning line per reason per ``interval`` seconds; the next line says how many were dropped."""

    def __init__(self, logger: logging.Logger, interval: float = LOG_INTERVAL_SECONDS) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._dropped: dict[str, int] = {}

    def warning(self, reason: str, message: str) -> None:
        now = monotonic()
        last = self._last.get(reason)
        if last is not None and now - last < self.interval:
            self._dropped[reason] = self._dropped.get(reason, 0) + 1
            return
        self._last[reason] = now
        dropped = self._dropped.pop(reason, 0)
        suffix = f" ({dropped} more not logged in the last {self.interval:g} s)" if dropped else ""
        self.logger.warning("%s%s", message, suffix)


REJECTIONS_LOG = RateLimitedLog(logging.getLogger("uvicorn.error"))


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = _settings()
        self.max_header_bytes = settings.max_header_bytes
        self.read_timeout = settings.read_timeout
        self._head_open = True  # waiting for (the rest of) a request line + headers
        self._head_bytes = 0  # bytes of the open head fed to the parser so far
        self._heads = 0  # heads completed on this connection
        self._read_deadline: asyncio.TimerHandle | None = None
        # uvicorn's own check would log a line for every 503 of a flood: taken over, same test and answer.
        self.concurrency_limit, self.limit_concurrency = self.limit_concurrency, None

    # Protocol interface
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._head_open:
            if not self._responding():
                self._arm_read_deadline()  # any byte between requests starts the next one
            room = self.max_header_bytes - self._head_bytes
            if len(data) > room:
                heads = self._heads
                if not self._feed(data[:room]):
                    return
                if self._heads == heads:  # the same head is still open at the bound
                    message = f"Request line and headers over {self.max_header_bytes} bytes."
                    self._reject("headers_too_large", 431, message)
                    return
                # That head ended inside the first part; the rest starts the body or a pipelined request
                # (bytes of a head begun in it are not counted: the bound is exceeded by one read at most).
                data = data[room:]
            else:
                self._head_bytes += len(data)
        self._feed(data)

    def _feed(self, data: bytes) -> bool:
        """Feed the parser (uvicorn's data_received without its keep-alive reset); False once closing."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._reject("malformed", 400, "Invalid HTTP request received.")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:  # served as a plain request; uvicorn would log two lines for each one
                REJECTIONS_LOG.warning("upgrade", "Unsupported upgrade request (served without it).")
        return not self.transport.is_closing()

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._responding():
            self._arm_read_deadline()

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._heads += 1
        limit = self.concurrency_limit
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            metrics.HTTP_REJECTED.labels("over_capacity").inc()
            REJECTIONS_LOG.warning("over_capacity", "Exceeded concurrency limit.")
            app, self.app = self.app, service_unavailable  # what uvicorn runs instead of the app: a 503
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head_open = True
        self._head_bytes = 0
        self._cancel_read_deadline()
        super().on_message_complete()
        # Answered before its body was read (413): uvicorn armed its keep-alive timer at the response, and
        # the body's bytes cancelled it; without this, the connection would be idle with no timer at all.
        if (
            self.cycle is not None
            and self.cycle.response_complete
            and self.timeout_keep_alive_task is None
            and not self.pipeline
            and not self.transport.is_closing()
        ):
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    # Limits
    def _responding(self) -> bool:
        """A request of this connection is in the app's hands (its response not yet complete)."""
        return self.cycle is not None and not self.cycle.response_complete

    def _arm_read_deadline(self) -> None:
        if self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _cancel_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        message = f"Request not received within {self.read_timeout} s."
        if self._responding():  # the app waits for a body that does not come: nothing more to say
            metrics.HTTP_REJECTED.labels("read_timeout").inc()
            REJECTIONS_LOG.warning("read_timeout", message)
            self.transport.close()
        else:
            self._reject("read_timeout", 408, message)

    def _reject(self, reason: str, status: int, message: str) -> None:
        """Count, log (rate-limited), answer `status` with `message` and close the connection."""
        metrics.HTTP_REJECTED.labels(reason).inc()
        REJECTIONS_LOG.warning(reason, message)
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        body = message.encode("ascii")
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
