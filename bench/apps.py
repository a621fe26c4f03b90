"""The two comparison apps: the same model and request schema as ``server.app``, without our metrics.

Served with ``uvicorn --factory bench.apps:bare`` / ``bench.apps:instrumentator``.
"""

from typing import Any

from fastapi import FastAPI

from server import contract
from server.app import BatchPrediction, Prediction, request_schema
from server.model import load_model
from server.settings import ServerSettings


def bare() -> FastAPI:
    """The model behind a plain FastAPI route: the baseline a metrics layer is measured against."""
    settings = ServerSettings.from_env()
    model = load_model(settings.model_path)
    body_type = request_schema(model.feature_names, settings.max_batch_size)
    app = FastAPI()

    @app.post(contract.PREDICT_HANDLER, response_model=Prediction | BatchPrediction)
    async def predict(body: body_type) -> Any:  # type: ignore[valid-type]
        if hasattr(body, "features"):
            return {"prediction": model.predict([body.features])[0], "model_version": model.version}
        return {"predictions": model.predict(body.instances), "model_version": model.version}

    return app


def instrumentator() -> FastAPI:
    """The bare app with prometheus-fastapi-instrumentator's defaults, the usual off-the-shelf choice."""
    from prometheus_fastapi_instrumentator import Instrumentator

    app = bare()
    Instrumentator().instrument(app).expose(app)
    return app
