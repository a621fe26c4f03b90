"""Train the example logistic-regression model and write ``model.json`` next to this file.

The data is generated from a fixed seed, so re-running the script reproduces the artifact byte for
byte (``tests/server/test_model.py`` checks that). Needs numpy (a dev dependency); the server itself
only reads the JSON.

    python server/model/train.py [--out PATH] [--samples N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

NAME = "example-classifier"
VERSION = "1.0.0"
FEATURES = ("f0", "f1", "f2")
# The "true" process the data is drawn from; the fit should land close to it.
TRUE_WEIGHTS = np.array([4.0, -3.0, 2.0])
TRUE_BIAS = -1.8
DECIMALS = 6  # rounding keeps the file stable across BLAS builds


def generate(samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three features on roughly [0, 1] with different shapes, and labels drawn from a logistic model."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.uniform(0.0, 1.0, samples),
            rng.beta(2.0, 5.0, samples),
            np.clip(rng.normal(0.5, 0.15, samples), 0.0, 1.0),
        ]
    )
    p = 1.0 / (1.0 + np.exp(-(x @ TRUE_WEIGHTS + TRUE_BIAS)))
    y = (rng.uniform(size=samples) < p).astype(float)
    return x, y


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-6, iterations: int = 25) -> tuple[np.ndarray, float]:
    """Logistic regression by Newton's method (deterministic, converges in a handful of steps)."""
    design = np.column_stack([x, np.ones(len(x))])
    theta = np.zeros(design.shape[1])
    penalty = l2 * np.diag([1.0] * x.shape[1] + [0.0])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        gradient = design.T @ (p - y) / len(y) + penalty @ theta
        hessian = (design.T * (p * (1 - p))) @ design / len(y) + penalty
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta[:-1], float(theta[-1])


def build(samples: int = 20_000, seed: int = 20240601) -> dict:
    x, y = generate(samples, seed)
    weights, bias = fit(x, y)
    p = 1.0 / (1.0 + np.exp(-(x @ weights + bias)))
    eps = 1e-12
    log_loss = float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
    accuracy = float(np.mean((p >= 0.5) == (y == 1)))
    deciles = np.quantile(x, np.linspace(0.1, 0.9, 9), axis=0).T  # one row of 9 cut points per feature
    return {
        "name": NAME,
        "version": VERSION,
        "kind": "logistic_regression",
        "feature_names": list(FEATURES),
        "weights": [round(float(w), DECIMALS) for w in weights],
        "bias": round(bias, DECIMALS),
        "reference_deciles": {
            name: [round(float(c), DECIMALS) for c in cuts]
            for name, cuts in zip(FEATURES, deciles, strict=True)
        },
        "training": {
            "samples": samples,
            "seed": seed,
            "log_loss": round(log_loss, 4),
            "accuracy": round(accuracy, 4),
        },
    }


def render(artifact: dict) -> str:
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("model.json"))
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args(argv)
    args.out.write_text(render(build(args.samples, args.seed)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
