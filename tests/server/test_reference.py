"""``python -m server.reference``: reference.json from real models and their training data, checked against
an independent computation (numpy percentiles, explicit interval tests, pandas value counts)."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import shutil
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from server.contract import PREDICTION_VALUE_BUCKETS
from server.loaders import load_model_dir
from server.reference import main
from tests.support import PROJECT_ROOT
from tests.support import user_models as um

BUILDERS = {
    "binary": um.binary_pipeline,
    "multiclass": um.multiclass_array,
    "regression": um.regressor,
    "categorical": um.categorical_pipeline,
    "onnx": um.onnx_multiclass,
    "mlflow": um.mlflow_binary,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every user model with its reference built by the CLI; (user model, reference, printed summary)."""
    root = tmp_path_factory.mktemp("reference")
    out = {}
    for key, build in BUILDERS.items():
        user = build(root)
        argv = ["--model", str(user.model_dir), "--data", str(user.data_csv), "--target", um.TARGET]
        if user.categorical:
            argv += ["--categorical", ",".join(user.categorical)]
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            assert main(argv) == 0
        reference = json.loads((user.model_dir / "reference.json").read_text())
        out[key] = (user, reference, stdout.getvalue())
    return out


def _independent_decile_shares(x: np.ndarray, cuts: list[float]) -> list[float]:
    """Share of values in each bin, by explicit interval tests: (-inf, c0], (c0, c1], ..., (c8, inf)."""
    bounds = [-np.inf, *cuts, np.inf]
    return [float(np.mean((x > lo) & (x <= hi))) for lo, hi in itertools.pairwise(bounds)]


@pytest.mark.parametrize("key", BUILDERS)
def test_numeric_features_keep_their_training_deciles_and_bin_shares(built, key):
    user, reference, _ = built[key]
    features = {f["name"]: f for f in reference["features"]}
    assert list(features) == user.features  # the model's order (the CSV's when the model has no names)
    numeric = [n for n in user.features if n not in user.categorical]
    assert numeric
    for name in numeric:
        f = features[name]
        x = user.train[name].to_numpy(dtype=float)
        assert f["type"] == "numeric"
        np.testing.assert_allclose(
            f["cuts"], np.percentile(x, [10, 20, 30, 40, 50, 60, 70, 80, 90]), rtol=1e-12
        )
        shares = f["reference_share"]
        assert list(shares) == [*(str(i) for i in range(10)), "missing"]
        np.testing.assert_allclose(
            [shares[str(i)] for i in range(10)], _independent_decile_shares(x, f["cuts"])
        )
        assert shares["missing"] == 0.0


def test_categorical_levels_are_by_frequency_with_their_shares(built):
    user, reference, _ = built["categorical"]
    features = {f["name"]: f for f in reference["features"]}
    for name in user.categorical:
        counts = user.train[name].value_counts(normalize=True)
        f = features[name]
        assert f["type"] == "categorical"
        assert f["levels"] == list(counts.index)  # no ties here, so pandas' order is the order
        assert list(f["reference_share"]) == [*counts.index, "other", "missing"]
        np.testing.assert_allclose([f["reference_share"][v] for v in counts.index], counts.to_numpy())
        assert (f["reference_share"]["other"], f["reference_share"]["missing"]) == (0.0, 0.0)
    assert features["bmi_band"]["levels"][0] == "over"  # the most frequent band in the training split


@pytest.mark.parametrize("key", ["binary", "multiclass", "categorical", "onnx", "mlflow"])
def test_classifiers_keep_their_classes_probability_buckets_and_class_shares(built, key):
    user, reference, _ = built[key]
    model = load_model_dir(user.model_dir)
    assert reference["task"] == model.task
    assert reference["classes"] == list(model.classes)
    assert reference["prediction"]["buckets"] == list(PREDICTION_VALUE_BUCKETS)
    x = user.train[user.features]
    predicted = pd.Series(user.estimator.predict(x if model.feature_names else x.to_numpy()))
    expected = predicted.value_counts(normalize=True)
    shares = reference["prediction"]["class_share"]
    assert list(shares) == [str(c) for c in model.classes]
    np.testing.assert_allclose(
        [shares[str(c)] for c in model.classes], [expected.get(c, 0.0) for c in model.classes]
    )
    assert reference["model"] == {
        "artifact": model.artifact.name,
        "kind": model.kind,
        "name": model.name,
        "version": model.version,
    }


def test_regression_buckets_span_the_training_predictions_p1_to_p99(built):
    user, reference, _ = built["regression"]
    assert reference["task"] == "regression"
    assert "classes" not in reference
    y = user.estimator.predict(user.train[user.features])
    buckets = reference["prediction"]["buckets"]
    np.testing.assert_allclose(buckets, np.percentile(y, np.linspace(1, 99, 20)), rtol=1e-9)
    assert buckets == sorted(set(buckets))
    # Every bucket holds some training predictions: no empty tails, no "+Inf only".
    assert np.mean(y <= buckets[0]) == pytest.approx(0.01, abs=0.01)
    assert np.mean(y > buckets[-1]) == pytest.approx(0.01, abs=0.01)
    quantiles = reference["prediction"]["quantiles"]
    np.testing.assert_allclose([quantiles[k] for k in ("p10", "p50", "p90")], np.percentile(y, [10, 50, 90]))


@pytest.mark.parametrize("key", BUILDERS)
def test_the_summary_names_features_types_task_and_rows(built, key):
    user, reference, stdout = built[key]
    assert f"rows used: {len(user.train)} from {user.data_csv.name} (target column 'target')" in stdout
    n_cat = len(user.categorical)
    assert (
        f"features: {len(user.features)} ({len(user.features) - n_cat} numeric, {n_cat} categorical)"
        in stdout
    )
    assert f"task: {reference['task']}" in stdout
    assert len(stdout.splitlines()) <= 20  # short, even with 30 features


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_values_get_their_own_bin_and_deciles_ignore_them(tmp_path, capsys):
    """A model that takes NaN (histogram gradient boosting), with a numeric column 20% missing."""
    frame, target = um._diabetes_with_category()
    frame = frame[["age", "bp", "s5"]].copy()
    rng = np.random.default_rng(um.SEED)
    frame.loc[rng.uniform(size=len(frame)) < 0.2, "bp"] = np.nan
    model_dir = tmp_path / "hgb"
    model_dir.mkdir()
    joblib.dump(HistGradientBoostingRegressor(max_iter=10).fit(frame, target), model_dir / "model.joblib")
    data = tmp_path / "train.csv"
    frame.assign(target=target).to_csv(data, index=False)
    code, _, err = _run(capsys, "--model", str(model_dir), "--data", str(data), "--target", "target")
    assert code == 0, err
    bp = json.loads((model_dir / "reference.json").read_text())["features"][1]
    present = frame["bp"].dropna().to_numpy()
    assert bp["reference_share"]["missing"] == pytest.approx(frame["bp"].isna().mean())
    assert 0.15 < bp["reference_share"]["missing"] < 0.25
    np.testing.assert_allclose(bp["cuts"], np.percentile(present, np.arange(10, 100, 10)))
    deciles = [bp["reference_share"][str(i)] for i in range(10)]
    np.testing.assert_allclose(
        deciles, np.array(_independent_decile_shares(present, bp["cuts"])) * 0.8, atol=0.05
    )
    assert sum(bp["reference_share"].values()) == pytest.approx(1.0)


def test_more_than_twenty_levels_fold_the_rarest_into_other(tmp_path, capsys):
    rng = np.random.default_rng(um.SEED)
    # 26 levels with distinct frequencies: level "a" most frequent ... "z" least.
    weights = np.arange(26, 0, -1) / np.arange(26, 0, -1).sum()
    letters = [chr(ord("a") + i) for i in range(26)]
    frame = pd.DataFrame({"letter": rng.choice(letters, size=4000, p=weights), "x": rng.normal(size=4000)})
    frame.loc[:39, "letter"] = None  # 1% missing
    y = (frame["x"] > 0).astype(int)
    estimator = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("cat", OneHotEncoder(handle_unknown="ignore"), ["letter"])], remainder="passthrough"
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, y)
    model_dir = tmp_path / "letters"
    model_dir.mkdir()
    joblib.dump(estimator, model_dir / "model.joblib")
    data = tmp_path / "letters.parquet"
    frame.assign(y=y).to_parquet(data)
    code, out, err = _run(capsys, "--model", str(model_dir), "--data", str(data), "--target", "y")
    assert code == 0, err
    letter = json.loads((model_dir / "reference.json").read_text())["features"][0]
    counts = frame["letter"].value_counts()
    assert letter["levels"] == list(counts.index[:20])
    shares = letter["reference_share"]
    assert len(shares) == 22
    assert shares["other"] == pytest.approx(counts.iloc[20:].sum() / len(frame))
    assert shares["missing"] == pytest.approx(0.01)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert "letter  categorical  20 levels" in out


def test_parquet_and_csv_give_the_same_reference(built, tmp_path, capsys):
    user, reference, _ = built["regression"]
    model_dir = tmp_path / "copy"
    shutil.copytree(user.model_dir, model_dir)
    data = tmp_path / "train.parquet"
    user.train.to_parquet(data)
    code, _, err = _run(capsys, "--model", str(model_dir), "--data", str(data), "--target", um.TARGET)
    assert code == 0, err
    again = json.loads((model_dir / "reference.json").read_text())
    assert again["features"] == reference["features"]
    assert again["prediction"] == reference["prediction"]


def test_task_override(built, tmp_path, capsys):
    user, _, _ = built["binary"]
    model_dir = tmp_path / "copy"
    shutil.copytree(user.model_dir, model_dir)
    argv = [
        "--model",
        str(model_dir),
        "--data",
        str(user.data_csv),
        "--target",
        um.TARGET,
        "--task",
        "multiclass",
    ]
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    reference = json.loads((model_dir / "reference.json").read_text())
    assert reference["task"] == "multiclass"
    assert "task: multiclass (classes 0, 1)" in out


def _bad_data(tmp_path, built):
    """(argv, message) pairs: each must exit 2 with one line naming what is wrong."""
    binary, _, _ = built["binary"]
    iris, _, _ = built["multiclass"]
    onnx, _, _ = built["onnx"]
    b = ["--model", str(binary.model_dir)]
    indexed = tmp_path / "indexed.csv"
    binary.train.to_csv(indexed)  # pandas' index as an unnamed first column
    text_col = tmp_path / "text.csv"
    onnx.train.assign(sepal_length="long").to_csv(text_col, index=False)
    inf_col = tmp_path / "inf.csv"
    iris.train.assign(sepal_width=np.inf).to_csv(inf_col, index=False)
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    return [
        ([*b, "--data", str(tmp_path / "absent.csv")], "absent.csv: no such file"),
        (
            [*b, "--data", str(binary.data_csv)],
            "columns target are not features of the model (name the target",
        ),
        ([*b, "--data", str(binary.data_csv), "--target", "label"], "--target 'label' is not a column"),
        (
            [*b, "--data", str(iris.data_csv), "--target", um.TARGET],
            "no column for the model's features mean radius",
        ),
        (
            [*b, "--data", str(binary.data_csv), "--target", um.TARGET, "--categorical", "colour"],
            "--categorical colour",
        ),
        (
            [*b, "--data", str(binary.data_csv), "--target", um.TARGET, "--task", "regression"],
            "cannot be read as",
        ),
        (
            ["--model", str(iris.model_dir), "--data", str(iris.data_csv)],
            "takes 4 features, the data has 5 columns",
        ),
        (
            ["--model", str(onnx.model_dir), "--data", str(text_col), "--target", um.TARGET],
            "'sepal_length' holds non",
        ),
        (
            ["--model", str(iris.model_dir), "--data", str(inf_col), "--target", um.TARGET],
            "'sepal_width' holds infin",
        ),
        (
            [*b, "--data", str(indexed), "--target", um.TARGET],
            "columns Unnamed: 0 are not features of the model",
        ),
        (["--model", str(nothing), "--data", str(binary.data_csv)], "no model artifact"),
    ]


def test_bad_input_is_one_clear_error_and_exit_2(built, tmp_path, capsys):
    for argv, message in _bad_data(tmp_path, built):
        code, out, err = _run(capsys, *argv)
        assert (code, out) == (2, ""), argv
        assert err.startswith("error: "), err
        assert message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1, err


def test_a_model_failing_on_missing_values_names_the_feature(built, tmp_path, capsys):
    binary, _, _ = built["binary"]
    data = tmp_path / "nan.csv"
    binary.train.assign(**{"mean radius": np.where(np.arange(len(binary.train)) % 7, 1.0, np.nan)}).to_csv(
        data, index=False
    )
    code, _, err = _run(capsys, "--model", str(binary.model_dir), "--data", str(data), "--target", um.TARGET)
    assert code == 2
    assert "the model fails on the training data (features with missing values: mean radius)" in err


def test_the_command_exits_2_without_a_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.reference",
            "--model",
            str(tmp_path),
            "--data",
            str(tmp_path / "x.csv"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    expected = "no model artifact; expected exactly one of MLmodel, model.joblib, model.onnx, model.json"
    assert result.stderr == f"error: {tmp_path}: {expected}\n"


def test_feature_types_declared_by_an_onnx_graph_need_no_categorical_flag(tmp_path, capsys):
    user = um.onnx_categorical(tmp_path)
    code, out, err = _run(
        capsys, "--model", str(user.model_dir), "--data", str(user.data_csv), "--target", um.TARGET
    )
    assert code == 0, err
    features = {f["name"]: f for f in json.loads((user.model_dir / "reference.json").read_text())["features"]}
    assert {n for n, f in features.items() if f["type"] == "categorical"} == {"sex", "bmi_band"}
    assert features["sex"]["levels"] == list(user.train["sex"].value_counts().index)
    assert "features: 10 (8 numeric, 2 categorical)" in out
