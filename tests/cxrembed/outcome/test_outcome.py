"""Tests of outcome prediction from embeddings and clinical columns (cxrembed.outcome.predict)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.errors import IdJoinError, OutcomeInputError
from cxrembed.outcome.predict import outcome_splits, predict_outcome


def _cohort(n_patients: int = 90, images: int = 2, dim: int = 8, seed: int = 0):
    """The outcome depends on one tabular feature and one embedding direction, equally.

    Each patient has ``images`` radiographs sharing the patient's image signal.
    """
    rng = np.random.default_rng(seed)
    image_signal = rng.normal(size=n_patients)
    lab = rng.normal(size=n_patients)
    outcome = image_signal + lab + 0.5 * rng.normal(size=n_patients) > 0
    rows = np.repeat(np.arange(n_patients), images)
    direction = np.zeros(dim)
    direction[2] = 1.0
    vectors = (
        np.outer(image_signal[rows], direction) + 0.3 * rng.normal(size=(len(rows), dim))
    ).astype(np.float32)
    ids = [
        f"p{p}_img{k}.png"
        for p, k in zip(rows, np.tile(np.arange(images), n_patients), strict=True)
    ]
    table = pd.DataFrame(
        {
            "image": ids,
            "patient": [f"p{p}" for p in rows],
            "intubated": np.where(outcome[rows], "Y", "N"),
            "lab": lab[rows],
            "noise": rng.normal(size=len(rows)),
        }
    )
    return EmbeddingSet(ids, vectors, "h"), table


def _result(emb, table, **kwargs):
    options = {
        "features": ["lab", "noise"],
        "id_col": "image",
        "group_col": "patient",
        "bootstrap": 200,
        "models": ["logistic"],
    }
    options.update(kwargs)
    return predict_outcome(emb, table, "intubated", **options)


def _auroc(result, features, model="logistic"):
    t = result.table
    return float(t.loc[(t.features == features) & (t.model == model), "auroc"].iloc[0])


def test_each_source_predicts_and_combined_is_best():
    emb, table = _cohort()
    result = _result(emb, table, models=["logistic", "gradient_boosting"])
    assert result.table[["features", "model"]].values.tolist() == [
        ["image-only", "logistic"],
        ["image-only", "gradient_boosting"],
        ["tabular-only", "logistic"],
        ["tabular-only", "gradient_boosting"],
        ["combined", "logistic"],
        ["combined", "gradient_boosting"],
    ]
    image, tabular, both = (_auroc(result, f) for f in ("image-only", "tabular-only", "combined"))
    assert image > 0.7 and tabular > 0.7
    assert both > max(image, tabular)
    assert _auroc(result, "combined", "gradient_boosting") > 0.7
    t = result.table
    assert ((t.ci_low < t.auroc) & (t.auroc < t.ci_high)).all()
    assert (t.n == 180).all() and (t.units == 90).all()
    assert (t.positives == (table.intubated == "Y").sum()).all()
    diff = result.comparisons.set_index(["model", "comparison"])
    assert diff.loc[("logistic", "combined - tabular-only"), "delta_auroc"] == pytest.approx(
        both - tabular
    )


def test_noise_only_embeddings_are_near_chance():
    emb, table = _cohort(n_patients=120)
    rng = np.random.default_rng(5)
    noise = EmbeddingSet(emb.ids, rng.normal(size=emb.vectors.shape).astype(np.float32))
    result = _result(noise, table, features=None)
    assert result.table.features.tolist() == ["image-only"]
    assert 0.3 < _auroc(result, "image-only") < 0.7


def test_grouped_splits_never_share_a_patient_and_partition_rows():
    emb, table = _cohort(n_patients=40, images=3)
    y = (table.intubated == "Y").to_numpy().astype(int)
    groups = table.patient.to_numpy()
    plan = outcome_splits(y, groups, n_splits=5, seed=1)
    assert plan.method == "StratifiedGroupKFold" and len(plan.splits) == 5
    tests = np.concatenate([test for _, test in plan.splits])
    assert sorted(tests.tolist()) == list(range(len(y)))
    for train, test in plan.splits:
        assert not set(groups[train]) & set(groups[test])
        assert set(y[train]) == {0, 1}
    # the same holds for the folds predict_outcome used
    result = _result(emb, table)
    folds_per_patient = result.predictions.groupby("group")["fold"].nunique()
    assert (folds_per_patient == 1).all()


def test_preprocessing_is_fitted_inside_the_folds():
    """Changing one row changes no other score of its test fold: PCA and scaling saw only the
    training part."""
    emb, table = _cohort(n_patients=40)
    base = _result(emb, table, features=None, pca=3, bootstrap=0)
    row = 5
    moved = emb.vectors.copy()
    moved[row] += 100.0
    again = _result(EmbeddingSet(emb.ids, moved), table, features=None, pca=3, bootstrap=0)
    column = "image-only/logistic"
    fold = base.predictions["fold"].to_numpy()
    same_fold = (fold == fold[row]) & (np.arange(len(fold)) != row)
    np.testing.assert_allclose(
        base.predictions[column][same_fold], again.predictions[column][same_fold]
    )
    assert not np.allclose(base.predictions[column], again.predictions[column])


def test_rows_without_target_or_embedding_are_excluded_and_listed(tmp_path):
    emb, table = _cohort(n_patients=30)
    table.loc[[0, 1], "intubated"] = None
    table.loc[2, "intubated"] = "Not visible"
    table.loc[3, "image"] = "never_embedded.png"
    result = _result(emb, table, missing_values=["not visible"])
    assert result.excluded.values.tolist() == [
        ["never_embedded.png", 3, "no embedding for this id"],
        [emb.ids[0], 0, "target 'intubated' missing (value blank)"],
        [emb.ids[1], 1, "target 'intubated' missing (value blank)"],
        [emb.ids[2], 2, "target 'intubated' missing (value 'Not visible')"],
    ]
    assert (result.table.n == 60 - 4).all()
    assert result.info["embeddings without a table row (see missing_ids.csv)"] == 1
    assert result.missing_ids[["id", "side"]].values.tolist() == [
        ["never_embedded.png", "table"],
        [emb.ids[3], "embeddings"],
    ]
    assert {p.name for p in result.write(tmp_path).values()} >= {"excluded.csv", "missing_ids.csv"}
    with pytest.raises(IdJoinError, match="never_embedded.png"):
        _result(emb, table, missing_values=["not visible"], missing_ids="error")


def test_one_class_target_is_a_clear_error():
    emb, table = _cohort(n_patients=20)
    table["intubated"] = "N"
    with pytest.raises(OutcomeInputError, match="one class only .*all negative"):
        _result(emb, table)


def test_few_positive_patients_reduce_the_folds_or_fail():
    emb, table = _cohort(n_patients=30)
    table["intubated"] = "N"
    table.loc[table.patient.isin(["p1", "p2", "p3"]), "intubated"] = "Y"
    result = _result(emb, table)
    assert (result.table.folds == 3).all()
    assert any(
        "folds reduced from 5 to 3: only 3 patients have a positive" in n for n in result.notes
    )
    table.loc[table.patient.isin(["p2", "p3"]), "intubated"] = "N"
    with pytest.raises(OutcomeInputError, match="only 1 patients with a positive target"):
        _result(emb, table)


def test_feature_sets_follow_the_inputs():
    emb, table = _cohort(n_patients=30)
    tabular = _result(None, table)
    assert tabular.table.features.tolist() == ["tabular-only"]
    assert tabular.info["image features"] == "none"
    with pytest.raises(OutcomeInputError, match="nothing to predict from"):
        _result(None, table, features=None)
    with pytest.raises(OutcomeInputError, match="target column 'intubated' cannot also be"):
        _result(emb, table, features=["intubated"])
    with pytest.raises(OutcomeInputError, match="pca must be an int from 1 to 8"):
        _result(emb, table, pca=9)


def test_without_groups_rows_are_independent_and_the_note_says_so():
    emb, table = _cohort(n_patients=30)
    result = _result(emb, table, group_col=None)
    assert result.info["cross-validation"] == "StratifiedKFold, 5 folds"
    assert any("rows are treated as independent" in n for n in result.notes)
    assert "group" not in result.predictions.columns


def test_seeded_runs_are_identical_and_outputs_are_written(tmp_path):
    emb, table = _cohort(n_patients=30)
    first, second = _result(emb, table, seed=3), _result(emb, table, seed=3)
    pd.testing.assert_frame_equal(first.table, second.table)
    paths = first.write(tmp_path / "out")
    assert {p.name for p in paths.values()} == {
        "outcome.md",
        "outcome.csv",
        "outcome.json",
        "predictions.csv",
    }
    payload = json.loads(paths["json"].read_text())
    assert [r["features"] for r in payload["results"]] == ["image-only", "tabular-only", "combined"]
    assert payload["info"]["target"] == "intubated"
    markdown = paths["markdown"].read_text()
    assert "| combined | logistic | 60 |" in markdown and "## Paired differences" in markdown
    predictions = pd.read_csv(paths["predictions"])
    assert len(predictions) == 60 and predictions["image-only/logistic"].between(0, 1).all()


@pytest.mark.realdata
def test_covid_intubation_from_clinical_columns(cxr_dev, tmp_path):
    """Real COVID metadata, seeded random 'embeddings': runs, and random images are near 0.5."""
    table = pd.read_csv(cxr_dev / "covid_metadata.csv")
    rng = np.random.default_rng(0)
    emb = EmbeddingSet(
        table["small_image"].tolist(), rng.normal(size=(len(table), 32)).astype(np.float32)
    )
    result = predict_outcome(
        emb,
        cxr_dev / "covid_metadata.csv",
        "intubated",
        ["age", "sex", "temperature", "pO2_saturation"],
        id_col="small_image",
        group_col="patientid",
        bootstrap=200,
        missing_values=["Not visible"],
    )
    assert len(result.table) == 6
    image = result.table[result.table.features == "image-only"]
    assert image.auroc.between(0.3, 0.7).all()
    assert result.table.auroc.notna().all()
    assert (result.table.n + len(result.excluded) == len(table)).all()
    assert set(result.excluded.reason.str.split(" \\(").str[0]) == {"target 'intubated' missing"}
    result.write(tmp_path)
