import json
import math
import subprocess
import sys

import pytest

from server.model import LogisticRegression, Model, ModelLoadError, load_model
from server.settings import DEFAULT_MODEL_PATH
from tests.support import PROJECT_ROOT


def test_packaged_artifact_loads_and_satisfies_the_protocol():
    model = load_model(DEFAULT_MODEL_PATH)
    assert isinstance(model, Model)
    assert model.feature_names == ("f0", "f1", "f2")
    assert all(len(cuts) == 9 and list(cuts) == sorted(cuts) for cuts in model.reference_deciles)


def test_predictions_are_probabilities_and_follow_the_weights():
    model = load_model(DEFAULT_MODEL_PATH)
    rows = [[0.5, 0.3, 0.7], [0.0, 0.0, 0.0], [1e6, -1e6, 1e6], [-1e6, 1e6, -1e6]]
    p = model.predict(rows)
    assert all(0.0 <= x <= 1.0 for x in p)
    z = sum(x * w for x, w in zip(rows[0], model.weights, strict=True)) + model.bias
    assert p[0] == pytest.approx(1 / (1 + math.exp(-z)))
    assert p[2] == pytest.approx(1.0)  # extreme inputs saturate instead of overflowing
    assert p[3] == pytest.approx(0.0)


def test_products_that_overflow_a_float_still_give_a_probability():
    model = load_model(DEFAULT_MODEL_PATH)
    # Found by schemathesis: each product overflows to +-inf and a naive sum gives inf - inf = nan.
    cancelling = [0.0, 6.03892491092851e307, 9.93560724142184e307]
    huge = [1.7e308, -1.7e308, 1.7e308]
    p_cancel, p_huge, p_low = model.predict([cancelling, huge, [-x for x in huge]])
    assert 0.0 <= p_cancel <= 1.0
    assert (p_huge, p_low) == (1.0, 0.0)


def test_training_reproduces_the_shipped_artifact(tmp_path):
    out = tmp_path / "model.json"
    subprocess.run([sys.executable, "server/model/train.py", "--out", str(out)], cwd=PROJECT_ROOT, check=True)
    assert out.read_text() == DEFAULT_MODEL_PATH.read_text()
    # The fit recovers the generating process (weights 4, -3, 2; bias -1.8) reasonably well.
    model = load_model(out)
    assert model.weights == pytest.approx((4.0, -3.0, 2.0), abs=0.5)
    assert model.bias == pytest.approx(-1.8, abs=0.5)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"weights": [1.0, 2.0]}, "'weights' must be a list of 3 finite numbers"),
        ({"bias": "x"}, "'bias' must be a list of 1 finite numbers"),
        ({"name": ""}, "'name' must be a non-empty string"),
        ({"feature_names": []}, "'feature_names' must be a non-empty list"),
        ({"reference_deciles": {"f0": [0.1] * 9}}, "'reference_deciles' must map every feature name"),
        ({"kind": "forest"}, "'kind' must be 'logistic_regression'"),
    ],
)
def test_malformed_artifacts_name_the_key(tmp_path, patch, message):
    data = json.loads(DEFAULT_MODEL_PATH.read_text()) | patch
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match=message):
        load_model(path)


def test_unsorted_deciles_and_missing_file_are_refused(tmp_path):
    data = json.loads(DEFAULT_MODEL_PATH.read_text())
    data["reference_deciles"]["f1"] = list(reversed(data["reference_deciles"]["f1"]))
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match=r"reference_deciles\.f1' must be ascending"):
        load_model(path)
    with pytest.raises(ModelLoadError, match="MODEL_PATH"):
        load_model(tmp_path / "absent.json")


def test_a_custom_model_plugs_in():
    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.settings import ServerSettings

    class Constant:
        name, version, feature_names = "constant", "7", ("a", "b")
        reference_deciles = (tuple(float(i) for i in range(1, 10)),) * 2

        def predict(self, rows):
            return [0.25 for _ in rows]

    model = Constant()
    assert isinstance(model, Model)
    with TestClient(create_app(ServerSettings(), model=model)) as client:
        assert client.post("/predict", json={"features": [1, 2]}).json() == {
            "prediction": 0.25,
            "model_version": "7",
        }
        assert client.post("/predict", json={"features": [1, 2, 3]}).status_code == 422
        assert (
            client.app.state.server.registry.get_sample_value(
                "model_info", {"model": "constant", "version": "7"}
            )
            == 1
        )


def test_logistic_regression_is_a_plain_dataclass():
    m = LogisticRegression("m", "1", ("x",), (2.0,), 0.0, ((0.0,) * 9,))
    assert m.predict([[0.0]]) == [0.5]
