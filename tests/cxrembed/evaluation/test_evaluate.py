"""Tests for cxrembed.evaluation.evaluate and cxrembed.evaluation.metrics.

Every metric is checked on tiny examples worked out by hand: points on the unit circle at
chosen angles, so the neighbour order is the angular distance order (listed in each
fixture). The three pytorch-metric-learning metrics are also compared with PML's
AccuracyCalculator on random data.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from cxrembed.data.labels import LabelOptions
from cxrembed.errors import EvaluationInputError, VectorInputError
from cxrembed.evaluation.evaluate import evaluate_embeddings, evaluate_table, retrieval_metrics
from cxrembed.evaluation.metrics import (
    clustering_metrics,
    diagnosis_by_retrieval,
    fixed_k_metrics,
    graded_metrics,
)
from cxrlabel.errors import CxrError

D3 = 1.0 / math.log2(3.0)  # nDCG discount of rank 2


def circle(degrees: list[float]) -> np.ndarray:
    rad = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


# Single-label example. Angles 0, 10, 30, 55, 105, 130; labels a a b a b b.
# Neighbour order (leave-one-out), relevant marked *:
#   q0 (a): 1* 2 3* 4 5     q1 (a): 0* 2 3* 4 5     q2 (b): 1 3 0 4* 5*
#   q3 (a): 2 1* 4 0* 5     q4 (b): 5* 3 2* 1 0     q5 (b): 4* 3 2* 1 0
# Every query has R = 2.
X6 = circle([0, 10, 30, 55, 105, 130])
Y6 = np.array(["a", "a", "b", "a", "b", "b"])


# Multi-label example, findings (A, B). Angles 0, 20, 45, 80, 120;
# sets {A} {A,B} {A,B} {} {} (no finding = its own label "none").
# Neighbour order: q0: 1 2 3 4   q1: 0 2 3 4   q2: 1 3 0 4   q3: 2 4 1 0   q4: 3 2 1 0
X5 = circle([0, 20, 45, 80, 120])
Y5 = np.array([[1, 0], [1, 1], [1, 1], [0, 0], [0, 0]])


# ----------------------------------------------------------------- PML metrics, by hand
def test_pml_metrics_by_hand_leave_one_out() -> None:
    m = retrieval_metrics(X6, Y6)
    assert m["precision_at_1"] == pytest.approx(4 / 6)  # q2, q3 miss
    assert m["r_precision"] == pytest.approx(2.5 / 6)  # 1/2 each except q2 (0)
    # AP@R: q0 q1 q4 q5 = (1 + 0)/2; q2 = 0; q3 = (1/2)/2
    assert m["mean_average_precision_at_r"] == pytest.approx(2.25 / 6)
    assert m["n_queries"] == 6 and m["n_lone_queries"] == 0


def test_pml_metrics_by_hand_same_patient_excluded() -> None:
    groups = ["p0", "p0", "p1", "p2", "p3", "p3"]
    m = retrieval_metrics(X6, Y6, groups=groups, exclude_same_group=True)
    # q0: 2 3* 4 5 (R=1); q1: 2 3* 4 5 (R=1); q2: unchanged (0); q3: 2 1* 4 0* 5 (R=2);
    # q4: 3 2* 1 0 (R=1); q5: 3 2* 1 0 (R=1)
    assert m["precision_at_1"] == pytest.approx(0.0)
    assert m["r_precision"] == pytest.approx(0.5 / 6)
    assert m["mean_average_precision_at_r"] == pytest.approx(0.25 / 6)


def test_pml_metrics_by_hand_query_gallery_split() -> None:
    query = np.array([True, True, True, False, False, False])
    m = retrieval_metrics(X6, Y6, query_mask=query, gallery_mask=~query)
    # q0: 3* 4 5 (R=1); q1: 3* 4 5 (R=1); q2: 3 4* 5* (R=2)
    assert m["precision_at_1"] == pytest.approx(2 / 3)
    assert m["r_precision"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert m["mean_average_precision_at_r"] == pytest.approx((1 + 1 + 0.25) / 3)


def test_lone_queries_are_left_out_and_counted() -> None:
    labels = np.array(["a", "a", "b", "a", "b", "c"])  # q5 is the only "c"
    m = retrieval_metrics(X6, labels)
    assert m["n_lone_queries"] == 1 and m["n_queries"] == 6
    # q0: 1* 2 3* (R=2); q1: 0* 2 3* (R=2); q2 (b): 1 3 0 4* 5 (R=1);
    # q3: 2 1* 4 0* (R=2); q4 (b): 5 3 2* 1 0 (R=1); q5 left out
    assert m["precision_at_1"] == pytest.approx(2 / 5)
    assert m["r_precision"] == pytest.approx((0.5 + 0.5 + 0 + 0.5 + 0) / 5)
    assert m["mean_average_precision_at_r"] == pytest.approx((0.5 + 0.5 + 0 + 0.25 + 0) / 5)


# ----------------------------------------------------------------- PML parity
@pytest.fixture(scope="module")
def pml() -> object:
    torch = pytest.importorskip("torch")
    acc = pytest.importorskip("pytorch_metric_learning.utils.accuracy_calculator")
    return acc.AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
        device=torch.device("cpu"),
    )


def _random(n: int, d: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    labels[-1] = classes  # a singleton class: a lone query
    centres = rng.normal(size=(classes + 1, d))
    x = centres[labels] + 1.2 * rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pml_parity_leave_one_out(pml: object, seed: int) -> None:
    x, y = _random(300, 12, 7, seed)
    ours = retrieval_metrics(x, y)
    theirs = pml.get_accuracy(x, y)  # type: ignore[attr-defined]
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key
    assert ours["n_lone_queries"] == 1


def test_pml_parity_query_reference_split(pml: object) -> None:
    x, y = _random(400, 12, 9, 3)
    query = np.zeros(400, dtype=bool)
    query[:150] = True
    ours = retrieval_metrics(x, y, query_mask=query, gallery_mask=~query)
    theirs = pml.get_accuracy(
        x[:150],
        y[:150],
        x[150:],
        y[150:],  # type: ignore[attr-defined]
        ref_includes_query=False,
    )
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key


# ----------------------------------------------------------------- fixed k, by hand
def test_fixed_k_by_hand() -> None:
    m = fixed_k_metrics(X6, Y6, ks=[3, 1])
    assert m["precision_at_1"] == pytest.approx(4 / 6)
    assert m["hit_rate_at_1"] == pytest.approx(4 / 6)
    assert m["map_at_1"] == pytest.approx(4 / 6)
    # top 3 relevant: q0 101, q1 101, q2 000, q3 010, q4 101, q5 101
    assert m["precision_at_3"] == pytest.approx((4 * 2 / 3 + 1 / 3) / 6)
    assert m["hit_rate_at_3"] == pytest.approx(5 / 6)
    # AP@3 / min(3, R=2): 101 -> (1 + 2/3)/2; 010 -> (1/2)/2; 000 -> 0
    assert m["map_at_3"] == pytest.approx((4 * (5 / 6) + 0.25) / 6)


def test_multilabel_retrieval_by_hand() -> None:
    m = retrieval_metrics(X5, Y5)
    # relevant: q0 1* 2* 3 4 (R=2); q1 0* 2* (R=2); q2 1* 3 0* 4 (R=2); q3 2 4* (R=1);
    # q4 3* 2 (R=1)
    assert m["precision_at_1"] == pytest.approx(4 / 5)
    assert m["r_precision"] == pytest.approx((1 + 1 + 0.5 + 0 + 1) / 5)
    assert m["mean_average_precision_at_r"] == pytest.approx((1 + 1 + 0.5 + 0 + 1) / 5)
    k = fixed_k_metrics(X5, Y5, ks=[2])
    assert k["precision_at_2"] == pytest.approx((1 + 1 + 0.5 + 0.5 + 0.5) / 5)
    assert k["hit_rate_at_2"] == pytest.approx(1.0)
    # q3: relevant at rank 2 only -> (1/2) / min(2, R=1)
    assert k["map_at_2"] == pytest.approx((1 + 1 + 0.5 + 0.5 + 1) / 5)


def test_graded_by_hand() -> None:
    m = graded_metrics(X5, Y5, ks=[2])
    # Jaccard of the 2 nearest: q0 (1/2, 1/2), q1 (1/2, 1), q2 (1, 0), q3 (0, 1), q4 (1, 0)
    assert m["jaccard_at_2"] == pytest.approx((0.5 + 0.75 + 0.5 + 0.5 + 0.5) / 5)
    # gains (shared findings) of the 2 nearest and the ideal 2:
    # q0 (1, 1) / (1, 1); q1 (1, 2) / (2, 1); q2 (2, 0) / (2, 1); q3 (0, 1) / (1, 0);
    # q4 (1, 0) / (1, 0)
    expected = (1 + (1 + 2 * D3) / (2 + D3) + 2 / (2 + D3) + D3 + 1) / 5
    assert m["ndcg_at_2"] == pytest.approx(expected)


def test_graded_single_label_reduces_to_precision() -> None:
    g = graded_metrics(X6, Y6, ks=[3])
    assert g["jaccard_at_3"] == pytest.approx(fixed_k_metrics(X6, Y6, ks=[3])["precision_at_3"])


# ----------------------------------------------------------------- diagnosis, by hand
def test_diagnosis_multilabel_by_hand() -> None:
    labels = np.concatenate([Y5, np.zeros((5, 1), dtype=int)], axis=1)  # C: never present
    report = diagnosis_by_retrieval(X5, labels, names=["A", "B", "C"], k=2)
    table = report.per_finding.set_index("finding")
    # scores A: q0 1, q1 1, q2 .5, q3 .5, q4 .5 ; votes (> .5): q0, q1 ; truth q0 q1 q2
    assert table.loc["A", "support"] == 3
    assert table.loc["A", "f1"] == pytest.approx(0.8)
    assert table.loc["A", "precision"] == pytest.approx(1.0)
    assert table.loc["A", "recall"] == pytest.approx(2 / 3)
    assert table.loc["A", "auroc"] == pytest.approx(5 / 6)
    # scores B: q0 1, q1 .5, q2 .5, q3 .5, q4 .5 ; vote q0 ; truth q1 q2
    assert table.loc["B", "f1"] == pytest.approx(0.0)
    assert table.loc["B", "auroc"] == pytest.approx(2 / 6)
    assert math.isnan(table.loc["C", "auroc"]) and math.isnan(table.loc["C", "f1"])
    assert "undefined" in table.loc["C", "note"]
    assert report.summary["macro_auroc"] == pytest.approx((5 / 6 + 2 / 6) / 2)
    assert report.summary["n_auroc_defined"] == 2
    assert report.summary["macro_f1"] == pytest.approx(0.4)


def test_diagnosis_single_label_by_hand() -> None:
    report = diagnosis_by_retrieval(X6, Y6, k=3)
    # votes of the 3 nearest: q0 aba, q1 aba, q2 aaa, q3 bab, q4 bab, q5 bab
    assert report.summary["accuracy"] == pytest.approx(4 / 6)
    table = report.per_finding.set_index("finding")
    assert table.loc["a", "f1"] == pytest.approx(2 / 3)
    assert table.loc["b", "f1"] == pytest.approx(2 / 3)
    # share of "a": positives q0 2/3, q1 2/3, q3 1/3 ; negatives q2 1, q4 1/3, q5 1/3
    assert table.loc["a", "auroc"] == pytest.approx(5 / 9)
    assert table.loc["b", "auroc"] == pytest.approx(5 / 9)


def test_diagnosis_single_label_tie_goes_to_nearest() -> None:
    # k=2 ties: q0 (a, b) -> a; q3 (b, a) -> b; q4 (b, a) -> b; q5 (b, a) -> b.
    # Nearest-first gives q0 q1 q4 q5 right (4/6); alphabetical would give 3/6.
    report = diagnosis_by_retrieval(X6, Y6, k=2)
    assert report.summary["accuracy"] == pytest.approx(4 / 6)


# ----------------------------------------------------------------- clustering
def test_clustering_perfect_and_independent() -> None:
    x = circle([0, 2, 4, 90, 92, 94])
    assert clustering_metrics(x, ["a", "a", "a", "b", "b", "b"])["NMI"] == pytest.approx(1.0)
    assert clustering_metrics(x, ["a", "a", "a", "b", "b", "b"])["AMI"] == pytest.approx(1.0)
    # each cluster holds one a and one b (and one c): mutual information 0
    independent = clustering_metrics(x, ["a", "b", "c", "a", "b", "c"])
    assert independent["n_classes"] == 3
    x2 = circle([0, 1, 90, 91])
    assert clustering_metrics(x2, ["a", "b", "a", "b"])["NMI"] == pytest.approx(0.0, abs=1e-12)


def test_clustering_one_class_is_undefined() -> None:
    out = clustering_metrics(X6, ["a"] * 6)
    assert math.isnan(out["NMI"]) and math.isnan(out["AMI"])


# ----------------------------------------------------------------- bad input
def test_k_larger_than_gallery() -> None:
    with pytest.raises(EvaluationInputError, match="k=6 is larger than the gallery"):
        fixed_k_metrics(X6, Y6, ks=[6])
    with pytest.raises(EvaluationInputError, match="and its group"):
        fixed_k_metrics(X6, Y6, ks=[5], groups=list("aabcdd"), exclude_same_group=True)


def test_bad_inputs_raise_clear_errors() -> None:
    bad = X6.copy()
    bad[2, 0] = np.nan
    with pytest.raises(EvaluationInputError, match="row 2 contains NaN"):
        retrieval_metrics(bad, Y6)
    with pytest.raises(EvaluationInputError, match="5 label rows were given for 6"):
        retrieval_metrics(X6, Y6[:5])
    with pytest.raises(EvaluationInputError, match="found -1.0 at row 0"):
        retrieval_metrics(X5, np.where(Y5 == 1, -1, 0))
    with pytest.raises(EvaluationInputError, match="has no class"):
        retrieval_metrics(X6, np.array(["a", None, "b", "a", "b", "b"], dtype=object))
    with pytest.raises(EvaluationInputError, match="needs groups"):
        retrieval_metrics(X6, Y6, exclude_same_group=True)
    with pytest.raises(EvaluationInputError, match="query_mask must be a boolean"):
        retrieval_metrics(X6, Y6, query_mask=[1, 0, 1, 0, 1, 0])
    with pytest.raises(EvaluationInputError, match="all zeros"):
        retrieval_metrics(np.zeros((6, 2)), Y6)
    with pytest.raises(EvaluationInputError, match="ks must be positive"):
        fixed_k_metrics(X6, Y6, ks=[0])
    with pytest.raises(CxrError):  # every error is a CxrError and a ValueError
        retrieval_metrics(X6, Y6[:5])


# ----------------------------------------------------------------- orchestration + outputs
def test_evaluate_embeddings_collects_everything() -> None:
    result = evaluate_embeddings(
        X5, Y5, names=["A", "B"], ks=[1, 2], diagnosis_k=2, map_method=None
    )
    m = result.metrics
    assert m["precision_at_1"] == pytest.approx(4 / 5)
    assert m["map_at_2"] == pytest.approx(4 / 5)
    assert m["ndcg_at_2"] == pytest.approx(graded_metrics(X5, Y5, ks=[2])["ndcg_at_2"])
    assert m["diagnosis_macro_auroc"] == pytest.approx((5 / 6 + 2 / 6) / 2)
    assert {"NMI", "AMI"} <= set(m)
    assert result.info["labels"] == "multi-label, 2 findings"


def test_evaluate_writes_markdown_csv_json_png(tmp_path) -> None:
    labels = np.concatenate([Y5, np.zeros((5, 1), dtype=int)], axis=1)
    result = evaluate_embeddings(
        X5, labels, names=["A", "B", "C"], ks=[1, 2], diagnosis_k=2, map_method="pca"
    )
    paths = result.write(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "embedding_map.png",
        "metrics.csv",
        "metrics.json",
        "metrics.md",
        "pr.png",
        "roc.png",
    ]
    payload = json.loads(paths["json"].read_text())
    rows = {r["finding"]: r for r in payload["diagnosis"]["per_finding"]}
    assert rows["C"]["auroc"] is None  # undefined, not a crash and not 0
    assert payload["metrics"]["precision_at_1"] == pytest.approx(0.8)
    frame = pd.read_csv(paths["csv"])
    assert set(frame["section"]) == {"retrieval", "diagnosis"}
    assert frame.loc[frame["metric"] == "precision_at_1", "value"].item() == pytest.approx(0.8)
    text = paths["markdown"].read_text()
    assert "| P@1 | 0.8000 |" in text and "undefined" in text and "## Definitions" in text
    assert paths["map"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_class_reports_undefined_instead_of_crashing() -> None:
    result = evaluate_embeddings(X6, ["a"] * 6, ks=[1], diagnosis_k=2, map_method=None)
    assert result.metrics["precision_at_1"] == 1.0  # every neighbour is relevant
    assert math.isnan(result.metrics["diagnosis_macro_auroc"])
    assert math.isnan(result.metrics["NMI"])
    notes = " ".join(result.notes)
    assert "AUROC undefined: the queries are all positive" in notes and "NMI / AMI" in notes
    assert "| diagnosis macro AUROC | undefined |" in result.to_markdown()


def _table() -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    table = pd.DataFrame(
        {
            "image": ["i0", "i1", "i2", "i3", "i4", "i5", "i6"],
            "finding": ["a", "a", "b", "a", "b", "b", "todo"],
            "patient": ["p0", "p0", "p1", "p2", "p3", "p3", "p9"],
            "split": ["q", "q", "q", "g", "g", "g", "g"],
        }
    )
    ids = ["i5", "i4", "i3", "i2", "i1", "i0", "i6", "extra"]  # another order + one extra
    x = np.concatenate([X6[::-1], circle([200, 250])])
    return table, x, ids


#: The quick scoring settings: k = 1 for every metric, no map.
K1 = {"ks": [1], "diagnosis_k": 1, "map_method": None}


def _by_finding(x, ids, table, **options):
    """:func:`evaluate_table` of :func:`_table`'s "finding" labels keyed by "image"."""
    return evaluate_table(
        x, ids, table, labels=LabelOptions(label_col="finding"), id_col="image", **options
    )


def test_evaluate_table_joins_by_id_and_lists_exclusions() -> None:
    table, x, ids = _table()
    result = _by_finding(x, ids, table, **K1)
    expected = retrieval_metrics(X6, Y6)
    for key in ("precision_at_1", "r_precision", "mean_average_precision_at_r"):
        assert result.metrics[key] == pytest.approx(expected[key])
    kinds = dict(zip(result.excluded["id"], result.excluded["kind"], strict=True))
    assert kinds == {"i6": "unknown-label", "extra": "no-label-row"}
    assert "excluded: 1 unknown-label, 1 no-label-row" in " ".join(result.notes)
    assert result.info["rows evaluated"] == 6


def test_evaluate_table_split_and_patient() -> None:
    table, x, ids = _table()
    result = _by_finding(x, ids, table, split_col="split", query_split="q", gallery_split="g", **K1)
    query = np.array([True, True, True, False, False, False])
    expected = retrieval_metrics(X6, Y6, query_mask=query, gallery_mask=~query)
    assert result.metrics["r_precision"] == pytest.approx(expected["r_precision"])
    same = _by_finding(x, ids, table, group_col="patient", exclude_same_group=True, **K1)
    groups = ["p0", "p0", "p1", "p2", "p3", "p3"]
    ref = retrieval_metrics(X6, Y6, groups=groups, exclude_same_group=True)
    assert same.metrics["mean_average_precision_at_r"] == pytest.approx(
        ref["mean_average_precision_at_r"]
    )


def test_evaluate_table_observation_columns_and_uncertain_policy() -> None:
    table = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(5)],
            "A": [1, -1, 1, np.nan, 0],
            "B": [np.nan, 1, 1, 0, np.nan],
            "status": ["ok"] * 5,
        }
    )
    ids = [f"r{i}" for i in range(5)]
    ones = evaluate_table(
        X5,
        ids,
        table,
        labels=LabelOptions(columns=("A", "B"), policy="ones"),
        id_col="id",
        ks=[2],
        diagnosis_k=2,
        map_method=None,
    )
    # -1 -> 1, blank -> 0 gives exactly Y5
    ref = evaluate_embeddings(X5, Y5, names=["A", "B"], ks=[2], diagnosis_k=2, map_method=None)
    assert ones.metrics == pytest.approx(ref.metrics, nan_ok=True)
    zeros = evaluate_table(
        X5,
        ids,
        table,
        labels=LabelOptions(columns=("A", "B")),
        id_col="id",
        ks=[2],
        diagnosis_k=2,
        map_method=None,
    )
    y = Y5.copy()
    y[1, 0] = 0
    ref0 = evaluate_embeddings(X5, y, names=["A", "B"], ks=[2], diagnosis_k=2, map_method=None)
    assert zeros.metrics == pytest.approx(ref0.metrics, nan_ok=True)
    with pytest.raises(EvaluationInputError, match="soft"):
        evaluate_table(
            X5,
            ids,
            table,
            labels=LabelOptions(columns=("A", "B"), policy="soft"),
            id_col="id",
            map_method=None,
        )


def test_evaluate_table_status_rows_are_excluded() -> None:
    table, x, ids = _table()
    table["status"] = ["ok", "ok", "ok", "ok", "ok", "error: bad", "ok"]
    result = _by_finding(x, ids, table, **K1)
    assert "i5" in set(result.excluded["id"])
    assert result.info["rows evaluated"] == 5


def test_evaluate_table_bad_input() -> None:
    table, x, ids = _table()
    with pytest.raises(EvaluationInputError, match="1 ids of .* have no embedding.*'i3'"):
        _by_finding(x[[0, 1, 3, 4, 5, 6, 7]], [i for i in ids if i != "i3"], table, map_method=None)
    partial = _by_finding(
        x[[0, 1, 3, 4, 5, 6, 7]], [i for i in ids if i != "i3"], table, missing="exclude", **K1
    )
    assert "i3" in set(partial.excluded["id"])
    dup = pd.concat([table, table.iloc[[0]]], ignore_index=True)
    with pytest.raises(EvaluationInputError, match="id 'i0' on rows 0 and 7"):
        _by_finding(x, ids, dup)
    with pytest.raises(VectorInputError, match="must be unique"):
        _by_finding(x, ids[:-1] + ["i0"], table)
    with pytest.raises(EvaluationInputError, match="no column 'nope'"):
        _by_finding(x, ids, table, group_col="nope", exclude_same_group=True)


# ----------------------------------------------------------------- real data (opt-in)
@pytest.mark.realdata
def test_covid_table_end_to_end(cxr_dev, tmp_path) -> None:
    """Pixel thumbnails as stand-in embeddings: checks the join, the exclusions and P@1
    with same-patient exclusion against a slow loop, on the real, messy metadata."""
    from PIL import Image

    table = pd.read_csv(cxr_dev / "covid_metadata.csv")
    ids = table["small_image"].tolist()
    x = np.stack(
        [
            np.asarray(
                Image.open(cxr_dev / p).convert("L").resize((16, 16)), dtype=np.float32
            ).ravel()
            for p in ids
        ]
    )
    x -= x.mean(axis=0)
    result = evaluate_table(
        x,
        ids,
        table,
        labels=LabelOptions(label_col="finding"),
        image_col="small_image",
        group_col="patientid",
        exclude_same_group=True,
        ks=[1, 5],
        diagnosis_k=5,
        map_method="pca",
    )
    todo = int((table["finding"] == "todo").sum())
    assert result.info["rows evaluated"] + len(result.excluded) == len(table)
    assert result.excluded["kind"].tolist() == ["unknown-label"] * todo

    keep = (table["finding"] != "todo").to_numpy()
    xs, ys = x[keep], table["finding"].to_numpy()[keep]
    patients = table["patientid"].astype(str).to_numpy()[keep]
    xs = xs / np.linalg.norm(xs, axis=1, keepdims=True)
    hits, counted = 0, 0
    for q in range(len(xs)):
        others = [g for g in range(len(xs)) if patients[g] != patients[q]]
        if not any(ys[g] == ys[q] for g in others):
            continue  # lone query
        best = max(others, key=lambda g: float(xs[q] @ xs[g]))
        hits += ys[best] == ys[q]
        counted += 1
    assert result.metrics["precision_at_1"] == pytest.approx(hits / counted)
    assert (
        result.info["queries"]
        - result.info["lone queries (no relevant row, left out of retrieval metrics)"]
        == counted
    )
    paths = result.write(tmp_path)
    assert json.loads(paths["json"].read_text())["excluded_count"] == todo
    assert paths["map"].stat().st_size > 1000
