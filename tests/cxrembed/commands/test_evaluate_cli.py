"""``cxr evaluate``: options reach evaluate_files unchanged; a small real run; errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import cxrembed.evaluation.files as evaluate_module
from cxrembed.commands.evaluate import label_options
from cxrembed.data.labels import LabelOptions
from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.evaluation.evaluate import evaluate_embeddings
from cxrembed.evaluation.files import EvaluationRun
from cxrlabel.cli import app
from cxrlabel.errors import InputError

runner = CliRunner()


def _evaluate(out: Path, *options: str):
    """``cxr evaluate e l.csv -o out`` plus ``options`` (evaluate_files is faked or the
    options are refused first, so the two files need not exist)."""
    return runner.invoke(app, ["evaluate", "e", "l.csv", "-o", str(out), *options])


@pytest.fixture
def captured(stand_in, tmp_path):
    """Replace evaluate_files; record its arguments; return a real small result."""
    x = np.repeat(np.eye(2, 4), 3, axis=0) + 0.01 * np.arange(24).reshape(6, 4)
    result = evaluate_embeddings(
        x, np.repeat(["a", "b"], 3), ks=[1, 2], diagnosis_k=2, map_method=None
    )
    run = EvaluationRun(result, {"markdown": tmp_path / "metrics.md"})
    return stand_in(evaluate_module, "evaluate_files", run)


def test_all_options_are_passed_to_the_library(captured, tmp_path):
    result = runner.invoke(
        app,
        [
            "evaluate",
            "emb",
            "labels.csv",
            "-o",
            str(tmp_path / "out"),
            "--id-col",
            "uid",
            "--ids",
            "ids.txt",
            "--label-cols",
            "Edema, Cardiomegaly",
            "--uncertain",
            "ones",
            "--status-col",
            "",
            "--group-col",
            "patientid",
            "--exclude-same-group",
            "--split-col",
            "split",
            "--query-split",
            "test",
            "--gallery-split",
            "train",
            "--k",
            "1,3",
            "--diagnosis-k",
            "7",
            "--projection",
            "pca",
            "--missing",
            "error",
            "--config-hash",
            "abc",
            "--seed",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    assert captured["args"] == (Path("emb"), Path("labels.csv"), tmp_path / "out")
    assert captured["kwargs"] == {
        "labels": LabelOptions(columns=("Edema", "Cardiomegaly"), policy="ones", status_col=None),
        "id_col": "uid",
        "image_col": None,
        "ids_file": Path("ids.txt"),
        "split_col": "split",
        "query_split": "test",
        "gallery_split": "train",
        "group_col": "patientid",
        "exclude_same_group": True,
        "missing": "error",
        "ks": [1, 3],
        "diagnosis_k": 7,
        "seed": 4,
        "map_method": "pca",
        "expect_config_hash": "abc",
        "all_rows": False,
    }
    assert "P@1" in result.output and "MAP@R" in result.output
    assert "diagnosis by retrieval (k = 2)" in result.output


def test_defaults(captured, tmp_path):
    result = _evaluate(tmp_path, "--label-col", "finding", "--no-projection")
    assert result.exit_code == 0, result.output
    kwargs = captured["kwargs"]
    assert kwargs["labels"] == LabelOptions(label_col="finding")
    assert (kwargs["id_col"], kwargs["image_col"], kwargs["missing"]) == ("id", None, "exclude")
    assert (kwargs["ks"], kwargs["diagnosis_k"], kwargs["map_method"]) == ([1, 5, 10], 10, None)
    assert (kwargs["split_col"], kwargs["group_col"], kwargs["exclude_same_group"]) == (
        None,
        None,
        False,
    )


def test_image_col_alone_replaces_the_default_id(captured, tmp_path):
    _evaluate(tmp_path, "--schema", "chexpert", "--image-col", "path")
    assert (captured["kwargs"]["id_col"], captured["kwargs"]["image_col"]) == (None, "path")
    assert captured["kwargs"]["labels"] == LabelOptions(schema="chexpert")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "exactly one of --label-col"),
        (["--label-col", "f", "--schema", "chexpert"], "got --label-col, --schema"),
        (["--label-col", "f", "--k", "1,x"], "--k must be positive integers"),
        (["--label-col", "f", "--k", "0"], "--k must be positive integers"),
        (["--label-col", "f", "--projection", "mds"], "--projection must be one of"),
        (["--label-col", "f", "--uncertain", "soft"], "--uncertain must be ignore, zeros or ones"),
        (["--label-cols", "A,,B"], "empty item"),
    ],
)
def test_bad_options_exit_1_with_one_line(captured, tmp_path, extra, message):
    result = _evaluate(tmp_path, *extra)
    assert result.exit_code == 1
    assert message in result.output and result.output.count("\n") == 1
    assert "kwargs" not in captured


def test_label_options_is_checked_in_one_place():
    with pytest.raises(InputError):
        label_options(None, None, None, "ignore", "todo", None, "status")
    options = label_options(None, "A,B", None, "zeros", "todo, unknown", ",", "status")
    assert options.columns == ("A", "B") and options.unknown_values == ("todo", "unknown")
    assert options.separator == "," and options.policy == "zeros"


def _small_set(tmp_path, n_per_class=4):
    rng = np.random.default_rng(0)
    classes = ["covid", "normal", "other"]
    labels = np.repeat(classes, n_per_class)
    vectors = np.repeat(np.eye(3, 6), n_per_class, axis=0) + 0.05 * rng.normal(size=(12, 6))
    ids = [f"img{i:02d}.png" for i in range(12)]
    EmbeddingSet(ids, vectors.astype(np.float32), "cfg1").save(tmp_path / "emb")
    table = pd.DataFrame(
        {"path": ids, "finding": labels, "patient": [f"p{i // 2}" for i in range(12)]}
    )
    table.loc[len(table)] = ["not_embedded.png", "covid", "p99"]
    table.to_csv(tmp_path / "labels.csv", index=False)


def test_small_real_run_writes_the_report(tmp_path):
    _small_set(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(tmp_path / "emb"),
            str(tmp_path / "labels.csv"),
            "-o",
            str(out),
            "--id-col",
            "path",
            "--label-col",
            "finding",
            "--group-col",
            "patient",
            "--exclude-same-group",
            "--k",
            "1,2",
            "--diagnosis-k",
            "3",
            "--projection",
            "pca",
        ],
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {
        "metrics.md",
        "metrics.csv",
        "metrics.json",
        "embedding_map.png",
        "excluded.csv",
        "roc.png",
        "pr.png",
    }
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metrics"]["precision_at_1"] == 1.0  # well-separated classes
    assert metrics["info"]["config hash"] == "cfg1"
    assert "excluded: 1" in result.output and "no embedding" in result.output
    excluded = pd.read_csv(out / "excluded.csv")
    assert excluded["id"].tolist() == ["not_embedded.png"]


def test_small_real_run_errors_are_one_line(tmp_path):
    _small_set(tmp_path)
    args = [
        "evaluate",
        str(tmp_path / "emb"),
        str(tmp_path / "labels.csv"),
        "-o",
        str(tmp_path / "out"),
        "--id-col",
        "path",
        "--label-col",
        "finding",
        "--no-projection",
    ]
    too_far = runner.invoke(app, [*args, "--k", "20"])
    assert too_far.exit_code == 1 and "larger than the gallery" in too_far.output
    assert too_far.output.count("\n") == 1
    strict = runner.invoke(app, [*args, "--missing", "error"])
    assert strict.exit_code == 1 and "not_embedded.png" in strict.output
    other_run = runner.invoke(app, [*args, "--config-hash", "cfg2"])
    assert other_run.exit_code == 1 and "config hash 'cfg1', not 'cfg2'" in other_run.output
    wrong_id = runner.invoke(app, [*args[:-5], "--label-col", "finding", "--no-projection"])
    assert wrong_id.exit_code == 1 and "'id'" in wrong_id.output


def test_map_and_no_map_are_hidden_aliases_of_projection(captured, tmp_path):
    old = _evaluate(tmp_path, "--label-col", "finding", "--map", "pca")
    assert old.exit_code == 0, old.output
    assert captured["kwargs"]["map_method"] == "pca"
    assert "warning: --map is deprecated; use --projection" in old.stderr
    off = _evaluate(tmp_path, "--label-col", "finding", "--no-map")
    assert off.exit_code == 0 and captured["kwargs"]["map_method"] is None
    assert "warning: --no-map is deprecated; use --no-projection" in off.stderr


@pytest.mark.parametrize(
    ("word", "policy"),
    [("positive", "ones"), ("negative", "zeros"), ("ones", "ones"), ("ignore", "ignore")],
)
def test_uncertain_takes_the_shared_vocabulary(captured, tmp_path, word, policy):
    result = _evaluate(tmp_path, "--label-cols", "A", "--uncertain", word, "--no-projection")
    assert result.exit_code == 0, result.output
    assert captured["kwargs"]["labels"].policy == policy


def test_report_prints_missing_values_as_dashes_within_100_columns(captured, tmp_path):
    result = _evaluate(tmp_path, "--label-col", "finding", "--no-projection")
    assert result.exit_code == 0, result.output
    text = result.stdout.replace(str(tmp_path), "OUT")
    assert not re.search(r"\b(NaN|nan)\b", text)
    assert max(len(line) for line in text.splitlines()) <= 100


def test_columns_named_on_the_command_line_are_checked_first(monkeypatch, tmp_path):
    def never(*args, **kwargs):
        raise AssertionError("embeddings were loaded before the column check")

    monkeypatch.setattr(evaluate_module, "evaluate_files", never)
    pd.DataFrame({"path": ["a.png"], "finding": ["x"]}).to_csv(tmp_path / "l.csv", index=False)
    base = ["evaluate", "emb", str(tmp_path / "l.csv"), "-o", str(tmp_path / "out")]
    for extra, flag in (
        (["--id-col", "path", "--label-col", "findings"], "--label-col"),
        (["--label-col", "finding"], "--id-col"),
        (["--image-col", "path", "--label-col", "finding", "--group-col", "p"], "--group-col"),
    ):
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 1 and f"not found ({flag})" in result.output, result.output
