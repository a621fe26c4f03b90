"""The model server: FastAPI app with /predict, /health, /ready and /metrics.

``create_app()`` is the factory (``uvicorn --factory server.app:create_app``, as ``python -m server``
runs it): importing this module builds nothing.
"""

import asyncio
import hmac
import logging
import math
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from server import contract, metrics
from server.contract import (
    CHAOS_DELAY_HEADER,
    CHAOS_MAX_DELAY_SECONDS,
    CHAOS_STATUS_HEADER,
    CHAOS_STATUSES,
    CHAOS_TOKEN_HEADER,
)
from server.model import Model
from server.predictor import load_served_model
from server.settings import ServerSettings

# uvicorn configures its "uvicorn.error" logger (its general log): our lines appear beside its own.
log = logging.getLogger("uvicorn.error")

# strict: "0.5" or true are not numbers; NaN/inf (also 1e999, which JSON decodes to inf) are refused.
Feature = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class Prediction(BaseModel):
    prediction: float = Field(ge=0.0, le=1.0, description="Probability of the positive class.")
    model_version: str


class BatchPrediction(BaseModel):
    predictions: list[float] = Field(description="One probability per instance, in request order.")
    model_version: str


def request_schema(feature_names: tuple[str, ...], max_batch_size: int) -> Any:
    """The /predict body type for this model: one row, or a bounded batch of rows."""
    n = len(feature_names)
    Row = Annotated[
        list[Feature],
        Field(min_length=n, max_length=n, description=f"Values of {', '.join(feature_names)}"),
    ]

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"features": [0.5] * n}})
        features: Row

    class BatchPredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        instances: Annotated[list[Row], Field(min_length=1, max_length=max_batch_size)]

    def kind(body: Any) -> str:
        return "batch" if isinstance(body, Mapping) and "instances" in body else "single"

    return Annotated[
        Annotated[PredictRequest, Tag("single")] | Annotated[BatchPredictRequest, Tag("batch")],
        Discriminator(kind),
        Body(),
    ]


class BodySizeLimit:
    """Pure ASGI: refuse request bodies over ``max_bytes`` with 413.

    Enforced in ``receive``, i.e. when a route reads its body: the route is matched by then, so the
    413 is counted under the route's handler label, and FastAPI turns the exception into JSON. A body
    with an acceptable Content-Length passes untouched (the HTTP server holds it to that length); only
    chunked bodies are counted as they arrive.
    """

    def __init__(self, app: Callable[..., Any], max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> HTTPException:
        return HTTPException(413, f"request body larger than {self.max_bytes} bytes")

    def __call__(self, scope: dict, receive: Callable, send: Callable) -> Awaitable[None]:
        # Not a coroutine: it hands back the wrapped app's awaitable, so this layer costs no
        # coroutine object of its own on every request.
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit():
                    if int(value) > self.max_bytes:
                        return self.app(scope, self._refuse, send)
                    break
            else:
                receive = self._counting(receive)
        return self.app(scope, receive, send)

    async def _refuse(self) -> dict:
        raise self._too_large()

    def _counting(self, receive: Callable) -> Callable:
        received = 0

        async def counting_receive() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise self._too_large()
            return message

        return counting_receive


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    # The default handler echoes the input, which can hold NaN (not JSON) and blow up into a 500.
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


def _chaos_error(message: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": ["header"], "msg": message, "type": "chaos_header"}]}, 422)


async def _chaos(headers: Mapping[str, str]) -> JSONResponse | None:
    """Honour the chaos headers: sleep, then maybe answer with an injected error (None: carry on)."""
    status = None
    raw_status = headers.get(CHAOS_STATUS_HEADER)
    if raw_status is not None:
        if not raw_status.strip().isdigit() or int(raw_status) not in CHAOS_STATUSES:
            return _chaos_error(f"{CHAOS_STATUS_HEADER} must be one of {CHAOS_STATUSES}")
        status = int(raw_status)
    raw_delay = headers.get(CHAOS_DELAY_HEADER)
    if raw_delay is not None:
        try:
            delay = float(raw_delay)
        except ValueError:
            delay = math.nan
        if not 0.0 <= delay <= CHAOS_MAX_DELAY_SECONDS:
            return _chaos_error(f"{CHAOS_DELAY_HEADER} must be a number in [0, {CHAOS_MAX_DELAY_SECONDS:g}]")
        await asyncio.sleep(delay)
    if status is not None:
        return JSONResponse({"detail": f"chaos: injected {status}"}, status_code=status)
    return None


@dataclass(slots=True)
class ServerState:
    """Everything one app holds, in one place (``app.state.server``); slots: the request path reads it."""

    settings: ServerSettings
    model: Model
    registry: CollectorRegistry
    recorder: metrics.PredictionRecorder | None = None  # set at start-up
    ready: bool = False
    draining: bool = False  # SIGTERM received: /ready says 503, requests are still served


def _drain_on_sigterm(state: ServerState, seconds: int) -> None:
    """Put a drain in front of the shutdown uvicorn's SIGTERM handler starts: /ready turns 503 at once and
    the handler runs `seconds` later, so a load balancer's health check moves traffic away first and
    in-flight and late requests still get answers. A second SIGTERM shuts down at once. Only the main
    thread can hold signal handlers (uvicorn installs its own there before the lifespan starts)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        return
    shutdown = signal.getsignal(signal.SIGTERM)
    if not callable(shutdown):
        return
    loop = asyncio.get_running_loop()

    def on_sigterm(signum: int, frame: Any) -> None:
        if state.draining:
            shutdown(signum, frame)
            return
        state.draining = True
        log.info("SIGTERM: draining for %ss (/ready answers 503) before shutting down", seconds)
        loop.call_soon_threadsafe(loop.call_later, seconds, shutdown, signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def create_app(settings: ServerSettings | None = None, model: Model | None = None) -> FastAPI:
    """Build the app. The model is loaded now (it shapes the request schema); metrics series are
    created in the lifespan start-up, after which /ready answers 200."""
    settings = settings or ServerSettings.from_env()
    model = model or load_served_model(settings.model_path)
    state = ServerState(settings, model, metrics.build_registry())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        metrics.mark_dead_workers()
        metrics.create_rejection_series()
        state.recorder = metrics.PredictionRecorder(model)
        state.ready = True
        _drain_on_sigterm(state, settings.shutdown_drain_seconds)
        try:
            yield
        finally:
            state.ready = False
            metrics.mark_worker_exit()

    app = FastAPI(
        title="model-monitoring model server",
        version=model.version,
        description=f"Serves {model.name} {model.version} and exports Prometheus metrics at /metrics.",
        lifespan=lifespan,
    )
    app.state.server = state
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(metrics.MetricsMiddleware)  # outermost: sees every response, 413s included

    PredictBody = request_schema(model.feature_names, settings.max_batch_size)
    version = model.version

    async def predict(body: PredictBody) -> Any:  # type: ignore[valid-type]
        """Predict one row (`features`) or a batch (`instances`)."""
        single = hasattr(body, "features")
        rows = [body.features] if single else body.instances
        predictions = model.predict(rows)
        state.recorder.record(rows, predictions)  # type: ignore[union-attr]
        if single:
            return {"prediction": predictions[0], "model_version": version}
        return {"predictions": predictions, "model_version": version}

    responses: dict[int | str, dict[str, Any]] = {
        413: {"description": "Request body too large"},
        422: {"description": "Invalid input; `detail` says which field and why"},
    }
    if settings.chaos_enabled:
        responses.update({code: {"description": "Injected by chaos"} for code in CHAOS_STATUSES})

        token = settings.chaos_token.encode()

        async def predict_chaos(body: PredictBody, request: Request) -> Any:  # type: ignore[valid-type]
            """Predict; with the right X-Chaos-Token, honours X-Chaos-Delay-Seconds (0..5) and
            X-Chaos-Status (500|503)."""
            supplied = request.headers.get(CHAOS_TOKEN_HEADER)
            # Constant time: the comparison must not tell a client how much of a guess was right.
            if supplied is not None and hmac.compare_digest(supplied.encode(), token):
                injected = await _chaos(request.headers)
                if injected is not None:
                    return injected
            return await predict(body)

        endpoint = predict_chaos
    else:
        endpoint = predict  # as is: chaos off costs no wrapper call per request
    app.post(contract.PREDICT_HANDLER, response_model=Prediction | BatchPrediction, responses=responses)(
        endpoint
    )

    @app.get(contract.HEALTH_PATH)
    async def health() -> dict[str, str]:
        """The process is alive and serving."""
        return {"status": "ok"}

    @app.get(contract.READY_PATH, responses={503: {"description": "Starting up, or draining"}})
    async def ready() -> JSONResponse:
        """The model is loaded and its metrics series exist, and no shutdown is under way."""
        if state.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        if not state.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ready", "model": model.name, "version": version})

    @app.get(contract.METRICS_PATH, response_class=Response)
    async def prometheus_metrics() -> Response:
        """Prometheus text exposition (summed over workers in multiprocess mode)."""
        return Response(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)

    return app
