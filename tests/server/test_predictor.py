"""Serving a user model: reference.json checked against the artifact, instances validated per feature,
predictions equal to the library's own, and every value binned as the reference counted it."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingClassifier

from server.loaders import load_model_dir
from server.model import ModelLoadError
from server.predictor import InputError, load_predictor
from server.reference import build_reference, read_data, render
from tests.support import user_models as um

BUILDERS = {
    "binary": um.binary_pipeline,
    "multiclass": um.multiclass_array,
    "regression": um.regressor,
    "categorical": um.categorical_pipeline,
    "onnx": um.onnx_multiclass,
    "mlflow": um.mlflow_binary,
    "onnx-categorical": um.onnx_categorical,
    "mlflow-pyfunc": um.mlflow_pyfunc_classifier,
}


def _write_reference(user: um.UserModel, task: str | None = None) -> None:
    model = load_model_dir(user.model_dir)
    if task:
        model = model.with_task(task)
    frame = read_data(user.data_csv, user.categorical)
    reference = build_reference(model, frame, um.TARGET, user.categorical, source=user.data_csv.name)
    (user.model_dir / "reference.json").write_text(render(reference))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    out = {}
    for key, build in BUILDERS.items():
        user = build(root)
        _write_reference(user)
        out[key] = (user, load_predictor(user.model_dir))
    return out


def _expected(user: um.UserModel, predictor, rows):
    x = rows if predictor.model.feature_names else rows.to_numpy()
    if predictor.task == "regression":
        return user.estimator.predict(x), None
    proba = user.estimator.predict_proba(x)
    return proba, user.estimator.predict(x)


def _as_arrays(predictor, predictions):
    if predictor.task == "multiclass":
        labels = [label for label, _ in predictions]
        classes = [str(c) for c in predictor.model.classes]
        return np.array([[p[c] for c in classes] for _, p in predictions]), labels
    return np.array(predictions), None


@pytest.mark.parametrize("key", BUILDERS)
@pytest.mark.parametrize("form", ["positional", "named"])
def test_predictions_equal_the_librarys_own(served, key, form):
    user, predictor = served[key]
    records = user.test[list(predictor.feature_names)].to_dict("records")
    instances = [list(r.values()) for r in records] if form == "positional" else records
    predictions = predictor.predict(predictor.parse_many(instances))
    got, labels = _as_arrays(predictor, predictions)
    expected, expected_labels = _expected(user, predictor, user.test)
    tolerance = 1e-6
    if key.startswith("onnx"):
        tolerance = 1e-5  # a float32 graph: its oracle is onnxruntime (test_loaders.py); scikit-learn is near
    if predictor.task == "binary":
        np.testing.assert_allclose(got, expected[:, 1], rtol=0, atol=tolerance)
    elif predictor.task == "multiclass":
        np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance)
        classes = [str(c) for c in predictor.model.classes]
        assert labels == [classes[list(user.estimator.classes_).index(v)] for v in expected_labels]
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance)
    assert len(predictions) == len(user.test)


@pytest.mark.parametrize("key", BUILDERS)
def test_binning_the_training_rows_reproduces_the_reference_shares(served, key):
    """The server's bins and the reference builder's agree: the training data lands on its stored shares."""
    user, predictor = served[key]
    train = read_data(user.data_csv, user.categorical)  # the rows as the reference read them
    rows = predictor.parse_many(train[list(predictor.feature_names)].to_dict("records"))
    counts = [Counter() for _ in predictor.features]
    for row in rows:
        for c, b in zip(counts, predictor.bins(row), strict=True):
            c[b] += 1
    for feature, c in zip(predictor.features, counts, strict=True):
        assert set(c) <= set(feature.bins)
        for b in feature.bins:
            assert c[b] / len(rows) == pytest.approx(feature.reference_share[b], abs=1e-12), (feature.name, b)


def test_bins_follow_less_or_equal_cut_points_and_fold_unseen_levels(served):
    _, predictor = served["categorical"]
    age = predictor.features[predictor.feature_names.index("age")]
    band = predictor.features[predictor.feature_names.index("bmi_band")]
    assert [age.bin(age.cuts[0]), age.bin(math.nextafter(age.cuts[0], math.inf)), age.bin(1e9)] == [
        "0",
        "1",
        "9",
    ]
    assert age.bin(-1e9) == "0"
    assert [band.bin("over"), band.bin("never-seen"), band.bin(None)] == ["over", "other", "missing"]


def test_an_unseen_or_missing_category_is_predicted(served):
    user, predictor = served["categorical"]
    records = user.test.head(4).to_dict("records")
    records[0]["bmi_band"] = "never-seen"
    del records[1]["sex"]
    records[2]["sex"] = None
    rows = predictor.parse_many(records)
    assert predictor.bins(rows[0])[predictor.feature_names.index("bmi_band")] == "other"
    assert predictor.bins(rows[1])[predictor.feature_names.index("sex")] == "missing"
    frame = user.test.head(4).astype({"sex": object})
    frame.loc[0, "bmi_band"] = "never-seen"
    frame.loc[[1, 2], "sex"] = None
    np.testing.assert_allclose(predictor.predict(rows), user.estimator.predict_proba(frame)[:, 1], atol=1e-6)


@pytest.mark.parametrize(
    ("instance", "feature", "message"),
    [
        ({"age": 50, "colour": "red"}, "colour", "unknown feature 'colour'"),
        ([50.0, "f"], None, r"expected 10 feature values \(age, sex, bp"),
        ({"age": "fifty"}, "age", "feature 'age' is numeric: expected a number, got str"),
        ({"age": True}, "age", "feature 'age' is numeric: expected a number, got bool"),
        ({"age": float("nan")}, "age", "feature 'age' must be a finite number"),
        ({"age": float("inf")}, "age", "feature 'age' must be a finite number"),
        ({"age": 10**400}, "age", "feature 'age' must be a finite number"),
        ({"sex": 1}, "sex", "feature 'sex' is categorical: expected a string, got int"),
        ("age=50", None, "an instance is a list of feature values or an object"),
    ],
)
def test_invalid_instances_name_the_feature(served, instance, feature, message):
    _, predictor = served["categorical"]
    with pytest.raises(InputError, match=message) as info:
        predictor.parse(instance)
    assert info.value.feature == feature


def test_the_position_of_a_bad_instance_in_a_batch_is_kept(served):
    _, predictor = served["binary"]
    good = [0.0] * len(predictor.feature_names)
    with pytest.raises(InputError) as info:
        predictor.parse_many([good, good, [*good[:-1], "x"]])
    assert (info.value.index, info.value.feature) == (2, "worst fractal dimension")


def test_a_missing_value_the_model_refuses_is_the_inputs_fault(served):
    _, predictor = served["binary"]
    row = predictor.parse({"mean radius": None} | dict.fromkeys(predictor.feature_names[1:], 1.0))
    with pytest.raises(
        InputError, match="feature 'mean radius' is missing and the model does not accept"
    ) as info:
        predictor.predict([row])
    assert info.value.feature == "mean radius"
    _, onnx = served["onnx"]  # onnxruntime: whether NaN is accepted is not known up front; it is tried
    assert onnx.model.accepts_missing is None
    assert len(onnx.predict([onnx.parse([None, 3.0, 1.4, 0.2])])) == 1


def test_a_model_that_takes_missing_values_gets_them(tmp_path):
    """Histogram gradient boosting handles NaN itself: a missing numeric value is predicted, not refused."""
    user = um.binary_pipeline(tmp_path)
    train = user.train.copy()
    train.loc[train.index[::5], "mean radius"] = np.nan
    features = train.drop(columns=um.TARGET)
    estimator = HistGradientBoostingClassifier(max_iter=15, random_state=um.SEED).fit(
        features, train[um.TARGET]
    )
    joblib.dump(estimator, user.model_dir / "model.joblib")
    train.to_csv(user.data_csv, index=False)
    _write_reference(user)
    predictor = load_predictor(user.model_dir)
    assert predictor.features[0].reference_share["missing"] == pytest.approx(0.2, abs=0.01)
    test = user.test.head(20).copy()
    test.loc[test.index[:10], "mean radius"] = np.nan
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in test.to_dict("records")
    ]
    got = predictor.predict(predictor.parse_many(records))
    np.testing.assert_allclose(got, estimator.predict_proba(test)[:, 1], atol=1e-6)
    assert predictor.bins(predictor.parse(records[0]))[0] == "missing"


def test_a_reference_built_with_task_multiclass_serves_labels(served, tmp_path):
    user, _ = served["binary"]
    copy = tmp_path / "as-multiclass"
    shutil.copytree(user.model_dir, copy)
    user = um.UserModel(copy, user.estimator, user.train, user.test, user.data_csv)
    _write_reference(user, task="multiclass")
    predictor = load_predictor(copy)
    (label, probabilities), *_ = predictor.predict(predictor.parse_many(user.test.head(3).to_dict("records")))
    assert predictor.task == "multiclass"
    assert label == str(user.estimator.predict(user.test.head(1))[0])
    assert probabilities == pytest.approx(
        dict(zip(["0", "1"], user.estimator.predict_proba(user.test.head(1))[0], strict=True))
    )


def _tamper(user: um.UserModel, tmp_path, edit) -> str:
    copy = tmp_path / f"tampered-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(user.model_dir, copy)
    reference = json.loads((copy / "reference.json").read_text())
    edit(reference)
    (copy / "reference.json").write_text(json.dumps(reference))
    with pytest.raises(ModelLoadError) as info:
        load_predictor(copy)
    return str(info.value)


def test_a_reference_that_does_not_match_its_model_is_refused(served, tmp_path):
    user, _ = served["categorical"]
    assert "rebuild it with python -m server.reference" in _tamper(
        user, tmp_path, lambda r: r["model"].update(version="0123456789ab")
    )
    assert "built for model.joblib version 0123456789ab, but the model is model.joblib version" in _tamper(
        user, tmp_path, lambda r: r["model"].update(version="0123456789ab")
    )
    assert "differ from the model's" in _tamper(user, tmp_path, lambda r: r["features"].reverse())
    assert "feature 'age': reference_share must add up to 1" in _tamper(
        user, tmp_path, lambda r: r["features"][0]["reference_share"].update({"0": 0.5})
    )
    assert "feature 'age': cuts must be 9 ascending finite numbers" in _tamper(
        user, tmp_path, lambda r: r["features"][0]["cuts"].reverse()
    )
    assert "feature 'sex' is numeric, the model takes it as categorical" not in _tamper(
        user, tmp_path, lambda r: r.update(classes=[0, 2])
    )
    assert "classes [0, 2] differ from the model's [0, 1]" in _tamper(
        user, tmp_path, lambda r: r.update(classes=[0, 2])
    )
    assert "task regression: " in _tamper(user, tmp_path, lambda r: r.update(task="regression"))
    onnx, _ = served["onnx"]
    # A one-tensor ONNX graph takes numbers only: a reference calling a feature categorical is refused.
    assert "feature 'sepal_length' is categorical, the model takes it as numeric" in _tamper(
        onnx,
        tmp_path,
        lambda r: r["features"][0].update(
            type="categorical", levels=["a"], reference_share={"a": 1.0, "other": 0.0, "missing": 0.0}
        ),
    )


def test_no_reference_says_how_to_build_it(served, tmp_path):
    user, _ = served["regression"]
    copy = tmp_path / "no-reference"
    shutil.copytree(user.model_dir, copy)
    (copy / "reference.json").unlink()
    with pytest.raises(
        ModelLoadError, match=r"no reference; build it with python -m server\.reference --model"
    ):
        load_predictor(copy)


def test_a_pyfunc_classifier_with_string_classes_is_referenced_and_served(tmp_path):
    user = um.mlflow_pyfunc_classifier(tmp_path)
    _write_reference(user)
    reference = json.loads((user.model_dir / "reference.json").read_text())
    assert reference["classes"] == ["setosa", "versicolor", "virginica"]
    predicted = Counter(user.estimator.predict(user.train[user.features]))
    shares = reference["prediction"]["class_share"]
    assert [shares[c] for c in reference["classes"]] == pytest.approx(
        [predicted[i] / len(user.train) for i in range(3)]
    )
    predictor = load_predictor(user.model_dir)
    labels = [label for label, _ in predictor.predict(predictor.parse_many(user.test.to_dict("records")))]
    assert labels == [reference["classes"][i] for i in user.estimator.predict(user.test)]


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_json_instance_is_a_prediction_or_an_input_error(served, data):
    """Never anything else for client input: the library layer's half of "never a 500"."""
    user, predictor = served["categorical"]
    names = list(predictor.feature_names)
    base = user.test.iloc[0].to_dict()
    form = data.draw(st.sampled_from(["named", "positional", "anything"]))
    if form == "named":
        keys = data.draw(st.lists(st.sampled_from([*names, "colour"]), unique=True, max_size=4))
        instance = base | {k: data.draw(JSON_VALUES) for k in keys}
    elif form == "positional":
        instance = [base[n] for n in names]
        for i in data.draw(st.lists(st.integers(0, len(names) - 1), unique=True, max_size=3)):
            instance[i] = data.draw(JSON_VALUES)
        instance = instance[: data.draw(st.integers(len(names) - 1, len(names)))]
    else:
        instance = data.draw(JSON_VALUES)
    try:
        row = predictor.parse(instance)
        out = predictor.predict([row])
    except InputError as e:
        refused = e
    else:
        assert len(row) == len(names)
        assert 0.0 <= out[0] <= 1.0
        return
    # The error names a feature of the model, or the unknown key the instance used, or none (wrong shape).
    assert refused.feature is None or refused.feature in names or refused.feature in instance
