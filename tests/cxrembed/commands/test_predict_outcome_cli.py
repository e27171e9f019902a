"""``cxr predict-outcome``: options reach predict_outcome unchanged; a small real run; errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import cxrembed.outcome.predict as outcome_module
from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.outcome.report import OutcomeResult
from cxrlabel.cli import app

runner = CliRunner()


def _fake_result() -> OutcomeResult:
    table = pd.DataFrame(
        [
            {
                "features": "tabular-only",
                "model": "logistic",
                "n": 40,
                "positives": 12,
                "units": 20,
                "auroc": 0.71,
                "ci_low": 0.6,
                "ci_high": 0.8,
                "fold_auroc_mean": 0.7,
                "fold_auroc_sd": 0.05,
                "folds": 5,
            }
        ]
    )
    comparisons = pd.DataFrame(columns=["model", "comparison", "delta_auroc", "ci_low", "ci_high"])
    return OutcomeResult(
        table,
        comparisons,
        {"target": "intubated"},
        ["a note"],
        pd.DataFrame({"id": ["x"], "row": [3], "reason": ["no embedding"]}),
        pd.DataFrame({"id": ["a"], "score": [0.5]}),
    )


@pytest.fixture
def captured(stand_in):
    return stand_in(outcome_module, "predict_outcome", _fake_result())


def test_all_options_are_passed_to_the_library(captured, tmp_path):
    result = runner.invoke(
        app,
        [
            "predict-outcome",
            "emb.npy",
            "meta.csv",
            "--target",
            "intubated",
            "-o",
            str(tmp_path / "out"),
            "--features",
            "age, temperature,pO2_saturation",
            "--id-col",
            "small_image",
            "--group-col",
            "patientid",
            "--ids",
            "ids.txt",
            "--folds",
            "4",
            "--bootstrap",
            "50",
            "--pca",
            "16",
            "--models",
            "logistic",
            "--missing-values",
            "Not visible,unknown",
            "--missing",
            "error",
            "--seed",
            "7",
            "--threads",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert captured["args"] == (
        Path("emb.npy"),
        Path("meta.csv"),
        "intubated",
        ["age", "temperature", "pO2_saturation"],
    )
    assert captured["kwargs"] == {
        "id_col": "small_image",
        "group_col": "patientid",
        "n_splits": 4,
        "seed": 7,
        "bootstrap": 50,
        "pca": 16,
        "models": ["logistic"],
        "missing_values": ["Not visible", "unknown"],
        "missing_ids": "error",
        "ids_file": Path("ids.txt"),
        "threads": 2,
    }
    assert "| tabular-only | logistic | 40 | 12 | 0.710 [0.600, 0.800] |" in result.output
    assert "no embedding: 1" in result.output and "a note" in result.output
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "outcome.md",
        "outcome.csv",
        "outcome.json",
        "predictions.csv",
        "excluded.csv",
    }


def test_defaults_and_no_image(captured, tmp_path):
    result = runner.invoke(
        app,
        [
            "predict-outcome",
            "-",
            "t.csv",
            "--target",
            "died",
            "-o",
            str(tmp_path),
            "--features",
            "age",
            "--no-image",
        ],
    )
    assert result.exit_code == 0, result.output
    assert captured["args"] == (None, Path("t.csv"), "died", ["age"])
    assert captured["kwargs"] == {
        "id_col": "id",
        "group_col": None,
        "n_splits": 5,
        "seed": 0,
        "bootstrap": 1000,
        "pca": None,
        "models": ["logistic", "gradient_boosting"],
        "missing_values": [],
        "missing_ids": "exclude",
        "ids_file": None,
        "threads": 1,
    }


def test_threads_zero_means_library_default(captured, tmp_path):
    runner.invoke(
        app,
        ["predict-outcome", "e", "t.csv", "--target", "y", "-o", str(tmp_path), "--threads", "0"],
    )
    assert captured["kwargs"]["threads"] is None and captured["args"][3] is None


def _small_cohort(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 60
    signal = rng.normal(size=n)
    vectors = np.c_[signal, rng.normal(size=(n, 3))].astype(np.float32)
    ids = [f"i{k}.png" for k in range(n)]
    EmbeddingSet(ids, vectors, "cfg").save(tmp_path / "emb")
    outcome = np.where(signal + 0.5 * rng.normal(size=n) > 0, "Y", "N").astype(object)
    outcome[:3] = ["", "Not visible", None]
    pd.DataFrame(
        {
            "id": ids,
            "patient": [f"p{k // 2}" for k in range(n)],
            "died": outcome,
            "age": rng.normal(60, 10, size=n),
        }
    ).to_csv(tmp_path / "t.csv", index=False)


def test_small_real_run(tmp_path):
    _small_cohort(tmp_path)
    result = runner.invoke(
        app,
        [
            "predict-outcome",
            str(tmp_path / "emb"),
            str(tmp_path / "t.csv"),
            "--target",
            "died",
            "--features",
            "age",
            "--group-col",
            "patient",
            "--missing-values",
            "not visible",
            "--bootstrap",
            "100",
            "--models",
            "logistic",
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| image-only | logistic | 57 |" in result.output
    assert "target 'died' missing: 3" in result.output
    table = pd.read_csv(tmp_path / "out" / "outcome.csv")
    assert table["features"].tolist() == ["image-only", "tabular-only", "combined"]
    assert table.loc[0, "auroc"] > 0.75  # the first embedding dimension carries the outcome
    assert len(pd.read_csv(tmp_path / "out" / "excluded.csv")) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "'Not visible' (1 rows)"),
        (["--missing-values", "not visible", "--models", "svm"], "models must be among"),
        (["--missing-values", "not visible", "--features", "weight"], "no feature columns"),
        (["--missing-values", "not visible", "--target", "patient"], "neither yes nor no"),
        (["--missing-values", "not visible", "--target", "age"], "cannot also be a feature"),
        (["--missing-values", "not visible", "--missing", "maybe"], "--missing must be"),
    ],
)
def test_errors_exit_1_with_one_line(tmp_path, extra, message):
    _small_cohort(tmp_path)
    args = [
        "predict-outcome",
        str(tmp_path / "emb"),
        str(tmp_path / "t.csv"),
        "--target",
        "died",
        "-o",
        str(tmp_path / "out"),
        "--features",
        "age",
        "--bootstrap",
        "10",
    ]
    # a later --target / --features overrides the earlier one
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 1, result.output
    assert message in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()
