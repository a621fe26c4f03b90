"""MODEL_PATH=MODEL_DIR: a user's binary classifier with numeric features behind today's /predict contract.

A real scikit-learn Pipeline (joblib) and the same kind of model saved by MLflow, each with the
reference built from its training data, served by the real app: predictions equal predict_proba to
1e-6, every feature's ten reference bins on /metrics count the held-out rows as an independent binning
does, and model_info carries the artifact's content hash.
"""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.loaders import load_model_dir
from server.model import ModelLoadError, load_model
from server.settings import DEFAULT_MODEL_PATH, ServerSettings
from tests.server.conftest import value
from tests.support import user_models as um


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    root = tmp_path_factory.mktemp("served-app")
    return {
        "joblib": um.with_reference(um.binary_pipeline(root)),
        "mlflow": um.with_reference(um.mlflow_binary(root)),
        "multiclass": um.with_reference(um.multiclass_array(root)),
        "categorical": um.with_reference(um.categorical_pipeline(root)),
    }


def _independent_bins(x: np.ndarray, cuts: list[float]) -> list[int]:
    bounds = [-np.inf, *cuts, np.inf]
    return [int(np.sum((x > lo) & (x <= hi))) for lo, hi in itertools.pairwise(bounds)]


@pytest.mark.parametrize("key", ["joblib", "mlflow"])
def test_a_user_binary_classifier_is_served_with_its_reference_bins(users, key):
    user = users[key]
    model = load_model_dir(user.model_dir)
    with TestClient(create_app(ServerSettings(model_path=user.model_dir))) as client:
        before = {
            (f, b): value(client, "model_feature_bin_total", feature=f, bin=b)
            for f in user.features
            for b in map(str, range(10))
        }
        rows = user.test[user.features].to_numpy()
        single = client.post("/predict", json={"features": rows[0].tolist()})
        batches = [
            client.post("/predict", json={"instances": rows[i : i + 50].tolist()})
            for i in range(1, len(rows), 50)
        ]
        metrics = client.get("/metrics").text
        after = {k: value(client, "model_feature_bin_total", feature=k[0], bin=k[1]) for k in before}
        info = value(client, "model_info", model=user.model_dir.name, version=model.version)
    assert [r.status_code for r in (single, *batches)] == [200] * (1 + len(batches))
    assert {r.json()["model_version"] for r in (single, *batches)} == {model.version}
    expected = user.estimator.predict_proba(user.test[user.features])[:, 1]
    np.testing.assert_allclose(
        [single.json()["prediction"], *(p for r in batches for p in r.json()["predictions"])],
        expected,
        rtol=0,
        atol=1e-6,
    )
    assert info == 1.0
    reference = {f.name: f for f in model_predictor(user).features}
    for name in user.features:
        counts = _independent_bins(user.test[name].to_numpy(), list(reference[name].cuts))
        assert [after[(name, str(b))] - before[(name, str(b))] for b in range(10)] == counts, name
        assert f'model_feature_bin_total{{bin="9",feature="{name}"}}' in metrics


def model_predictor(user: um.UserModel):
    from server.predictor import load_predictor

    return load_predictor(user.model_dir)


def test_the_contract_still_refuses_bad_rows_by_position(users):
    user = users["joblib"]
    with TestClient(create_app(ServerSettings(model_path=user.model_dir))) as client:
        short = client.post("/predict", json={"features": [1.0] * 29})
        text = client.post("/predict", json={"features": ["x"] + [1.0] * 29})
    assert (short.status_code, text.status_code) == (422, 422)


def test_a_directory_holding_model_json_is_the_builtin_model(tmp_path):
    shutil.copy(DEFAULT_MODEL_PATH, tmp_path / "model.json")
    with TestClient(create_app(ServerSettings(model_path=tmp_path))) as client:
        r = client.post("/predict", json={"features": [0.5, 0.3, 0.7]})
    assert r.status_code == 200
    assert r.json()["prediction"] == load_model(DEFAULT_MODEL_PATH).predict([[0.5, 0.3, 0.7]])[0]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("multiclass", "serving a multiclass model is not supported yet"),
        ("categorical", r"serving categorical features \(sex, bmi_band\) is not supported yet"),
    ],
)
def test_what_the_contract_cannot_carry_yet_is_refused_at_start(users, key, message):
    with pytest.raises(ModelLoadError, match=message):
        create_app(ServerSettings(model_path=users[key].model_dir))


def test_a_model_directory_without_its_reference_does_not_start(users, tmp_path):
    copy = tmp_path / "no-reference"
    shutil.copytree(users["joblib"].model_dir, copy)
    (copy / "reference.json").unlink()
    with pytest.raises(ModelLoadError, match=r"no reference; build it with python -m server\.reference"):
        create_app(ServerSettings(model_path=copy))


@pytest.mark.live
def test_model_path_dir_python_m_server_serves_the_users_model(users, tmp_path):
    """Step 3 of the issue as a user runs it: MODEL_PATH=MODEL_DIR python -m server (two workers)."""
    import httpx

    from tests.support.server import running_server

    user = users["joblib"]
    rows = user.test[user.features].to_numpy()[:40]
    with running_server(tmp_path, workers=2, env={"MODEL_PATH": str(user.model_dir)}) as server:
        got = [
            httpx.post(f"{server.url}/predict", json={"features": row.tolist()}, timeout=10).json()[
                "prediction"
            ]
            for row in rows
        ]
        ready = httpx.get(f"{server.url}/ready", timeout=10).json()
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    np.testing.assert_allclose(
        got, user.estimator.predict_proba(user.test[user.features][:40])[:, 1], atol=1e-6
    )
    version = load_model_dir(user.model_dir).version
    assert ready == {"status": "ready", "model": "breast-cancer", "version": version}
    assert f'model_info{{model="breast-cancer",version="{version}"}} 1.0' in metrics
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("model_feature_bin_total{") and 'feature="mean radius"' in line
    )
    assert counted == 40
