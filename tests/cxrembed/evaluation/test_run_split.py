"""``cxr evaluate`` on a run's embeddings: held-out queries vs the training gallery by default,
the query never scored against itself, ``--all-rows`` for the old every-row behaviour."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrembed.data.labels import LabelOptions
from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.errors import EvaluationInputError
from cxrembed.evaluation.files import evaluate_files
from cxrembed.evaluation.run_split import run_split_of
from cxrembed.train.config import RunConfig, config_hash
from cxrlabel.cli import app
from tests.cxrembed._runs import make_run, write_pngs

runner = CliRunner()

# 12 images of 6 patients: 8 train (p0-p3), 2 val (p4), 2 the run never saw (p5).
IDS = [f"img{i:02d}.png" for i in range(12)]
PATIENTS = [f"p{i // 2}" for i in range(12)]
SIDES = ["train"] * 8 + ["val"] * 2 + [None] * 2
# Two classes, alternating: every image's nearest *other* image has the other class, so
# P@1 = 1 means a query found itself and P@1 = 0 means it was left out.
FINDINGS = ["a", "b"] * 6


def _vectors() -> np.ndarray:
    """Row i and i + 1 (i even) nearly coincide; their labels differ."""
    angles = np.repeat(np.arange(6) * 0.5, 2) + np.tile([0.0, 0.01], 6)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("runsplit")
    run = make_run(root / "run")
    split = pd.DataFrame({"id": IDS[:10], "split": SIDES[:10], "group": PATIENTS[:10]})
    split.to_csv(run / "split.csv", index=False)
    cfg_hash = config_hash(RunConfig.from_yaml(run / "config.yaml"))
    EmbeddingSet(IDS, _vectors(), cfg_hash, meta={"run": str(run)}).save(root / "emb")
    pd.DataFrame({"image": IDS, "finding": FINDINGS, "patient": PATIENTS}).to_csv(
        root / "labels.csv", index=False
    )
    return root


# The tiny set's scoring settings: the finding labels, ids in "image", k = 1, no map.
_CLI_SETTINGS = ["--id-col", "image", "--label-col", "finding", "--k", "1", "--diagnosis-k", "1"]


def _evaluate(root, out, *extra, labels="labels.csv"):
    """``cxr evaluate`` of ``root``'s embeddings and ``labels`` into ``root / out``."""
    files = [str(root / "emb"), str(root / labels), "-o", str(root / out)]
    return runner.invoke(app, ["evaluate", *files, *_CLI_SETTINGS, "--no-projection", *extra])


def _evaluate_files(embeddings, labels, out, **options):
    """:func:`evaluate_files` with the same settings as :func:`_evaluate`."""
    settings = {"labels": LabelOptions(label_col="finding"), "id_col": "image", **options}
    return evaluate_files(
        embeddings, labels, out, map_method=None, ks=[1], diagnosis_k=1, **settings
    )


def _info(root, out):
    return json.loads((root / out / "metrics.json").read_text())


def test_the_runs_split_is_the_default(setup):
    result = _evaluate(setup, "default")
    assert result.exit_code == 0, result.output
    # The run knows the patients of its own images only (p5 is not in split.csv).
    line = (
        "queries: 4 images (2 unseen, 2 val) of 1 patient (+ 2 without a patient "
        "id) vs gallery: 8 train images of 4 patients"
    )
    assert line in result.output
    info = _info(setup, "default")["info"]
    assert info["queries / gallery"] == line
    assert info["split"] == f"the run's {setup / 'run' / 'split.csv'}"
    assert info["queries"] == 4


def test_a_training_image_never_scores_against_itself(setup):
    """Every image's nearest other image has the other label: P@1 is 0 unless an image
    finds itself. By default training images are not queries at all; with --all-rows they
    are, and each is left out of its own gallery."""
    result = _evaluate(setup, "all", "--all-rows")
    assert result.exit_code == 0, result.output
    assert _info(setup, "all")["metrics"]["precision_at_1"] == 0.0
    info = _info(setup, "all")["info"]
    assert info["queries"] == 12 and "every row against every other" in info["split"]


def test_the_run_patients_are_the_groups_unless_a_group_column_is_given(setup):
    result = _evaluate(setup, "grouped", "--exclude-same-group")
    assert result.exit_code == 0, result.output
    assert "same patient left out: yes" in result.output
    own = _evaluate(setup, "own", "--group-col", "patient", "--exclude-same-group")
    assert own.exit_code == 0 and "of 2 patients vs gallery: 8 train images of 4" in own.output


def test_an_explicit_split_column_wins_and_conflicts_with_all_rows(setup):
    table = pd.read_csv(setup / "labels.csv")
    table["fold"] = ["g"] * 6 + ["q"] * 6
    table.to_csv(setup / "folds.csv", index=False)
    folds = ["--split-col", "fold", "--query-split", "q", "--gallery-split", "g"]
    result = _evaluate(setup, "fold", *folds, labels="folds.csv")
    assert result.exit_code == 0, result.output
    assert "queries: 6 q images vs gallery: 6 g images" in result.output
    both = _evaluate(setup, "both", "--all-rows", *folds)
    assert both.exit_code == 1 and "--all-rows" in both.output
    assert both.output.count("\n") == 1


def test_foreign_vectors_and_runs_without_a_split_score_every_row(setup, tmp_path):
    EmbeddingSet(IDS, _vectors()).save(tmp_path / "foreign")
    assert run_split_of(EmbeddingSet.load(tmp_path / "foreign"), tmp_path / "foreign") is None
    bare = make_run(tmp_path / "bare")
    emb = EmbeddingSet(
        IDS,
        _vectors(),
        config_hash(RunConfig.from_yaml(bare / "config.yaml")),
        meta={"run": str(bare)},
    )
    with pytest.warns(UserWarning, match="no split.csv"):
        assert run_split_of(emb, "emb") is None


def test_a_missing_or_replaced_run_is_a_clear_error(setup, tmp_path):
    gone = EmbeddingSet(IDS, _vectors(), "abc", meta={"run": str(tmp_path / "moved")})
    gone.save(tmp_path / "gone")
    with pytest.raises(EvaluationInputError, match="run folder is not found.*--all-rows"):
        _evaluate_files(tmp_path / "gone", setup / "labels.csv", tmp_path / "o")
    other = EmbeddingSet(IDS, _vectors(), "0123", meta={"run": str(setup / "run")})
    other.save(tmp_path / "other")
    with pytest.raises(EvaluationInputError, match="holds another run"):
        _evaluate_files(tmp_path / "other", setup / "labels.csv", tmp_path / "o")
    assert (
        _evaluate_files(
            tmp_path / "other", setup / "labels.csv", tmp_path / "o", all_rows=True
        ).result.info["queries"]
        == 12
    )


def test_ids_unlike_the_runs_are_a_clear_error(setup, tmp_path):
    table = pd.read_csv(setup / "labels.csv")
    table["other_id"] = [f"x{i}" for i in range(12)]
    table.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(EvaluationInputError, match="another id column"):
        _evaluate_files(setup / "emb", tmp_path / "t.csv", tmp_path / "o", id_col="other_id")


def test_cxr_embed_records_the_run_folder(tmp_path, monkeypatch):
    run = make_run(tmp_path / "runs" / "r")
    write_pngs(tmp_path / "images", ["a.png", "b.png"])
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, ["embed", "runs/r", "--images", "images", "-o", "emb", "-q", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    meta = EmbeddingSet.load(tmp_path / "emb").meta
    assert meta["run"] == "runs/r" and meta["run_path"] == str(run.resolve())
