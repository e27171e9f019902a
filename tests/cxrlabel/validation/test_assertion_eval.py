"""Assertion-level scoring of (sentence, target, status) tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cxrlabel.errors import GoldError, InputError
from cxrlabel.validation.assertions import normalise_status, score_assertions, validate_assertions


def _fake(sentence: str, target: str) -> str:
    """A tiny rule: target must occur; 'no' -> negative, 'may' -> uncertain, else positive."""
    low = sentence.lower()
    if target.lower() not in low:
        raise InputError(f"target phrase {target!r} not found in the sentence")
    if low.startswith("no "):
        return "negative"
    if " may " in f" {low} ":
        return "uncertain"
    return "positive"


def _table():
    # gold:  pos, pos, neg, neg, unc, pos, pos(not found), blank target
    return pd.DataFrame(
        {
            "sentence": [
                "Effusion.",
                "No edema.",
                "No edema.",
                "Edema.",
                "May be edema.",
                "Edema may be present.",
                "Clear lungs.",
                "Edema.",
            ],
            "target": ["effusion", "edema", "edema", "edema", "edema", "edema", "nodule", None],
            "status": [
                "Affirmed",
                "positive",
                "Negated",
                "0",
                "Possible",
                "1",
                "affirmed",
                "negated",
            ],
        }
    )


def test_hand_checked_scores():
    res = score_assertions(_table(), _fake)
    # predictions for scored rows 1-6: pos, neg, neg, pos, unc, unc
    # gold                             pos, pos, neg, neg, unc, pos
    s = res.summary
    assert (s["n_rows"], s["n_scored"], s["n_not_scored"]) == (8, 6, 2)
    assert s["accuracy"] == pytest.approx(3 / 6)
    per = res.per_status.set_index("status")
    # positive: support 3 (rows 1, 2, 6), predicted 2 (rows 1, 4), TP 1 -> P 1/2, R 1/3, F1 2/5
    assert (per.loc["positive", "support"], per.loc["positive", "predicted"]) == (3, 2)
    assert per.loc["positive", "precision"] == pytest.approx(0.5)
    assert per.loc["positive", "recall"] == pytest.approx(1 / 3)
    assert per.loc["positive", "f1"] == pytest.approx(0.4)
    # negative: support 2 (rows 3, 4), predicted 2 (rows 2, 3), TP 1 -> 1/2 each
    assert per.loc["negative", "f1"] == pytest.approx(0.5)
    # uncertain: support 1, predicted 2 (rows 5, 6), TP 1 -> P 1/2, R 1, F1 2/3
    assert per.loc["uncertain", "recall"] == pytest.approx(1.0)
    assert per.loc["uncertain", "f1"] == pytest.approx(2 / 3)
    assert res.confusion.loc["positive", "uncertain"] == 1
    assert res.confusion.to_numpy().sum() == 6


def test_not_found_is_counted_and_listed():
    res = score_assertions(_table(), _fake)
    missing = res.not_found
    assert missing.row.tolist() == [7, 8]
    assert "not found" in missing.note.iloc[0] and "blank" in missing.note.iloc[1]
    assert res.predictions["correct"].isna().sum() == 2


def test_status_spellings():
    assert [normalise_status(v) for v in ("POSITIVE", "negated", "-1", "possible", 1.0, "x")] == [
        "positive",
        "negative",
        "uncertain",
        "uncertain",
        "positive",
        None,
    ]


def test_bad_tables(tmp_path):
    bad = _table()
    bad.loc[2, "status"] = "denied"
    with pytest.raises(GoldError, match=r"unknown status 'denied'.*data row 3"):
        score_assertions(bad, _fake)
    with pytest.raises(InputError, match=r"no target column 'phrase'.*closest"):
        score_assertions(_table(), _fake, target_col="phrase")
    empty = tmp_path / "a.tsv"
    empty.write_text("")
    with pytest.raises(GoldError, match="empty"):
        score_assertions(empty, _fake)
    with pytest.raises(InputError, match="returned 'maybe'"):
        score_assertions(_table().iloc[:1], lambda s, t: "maybe")


def test_writes_outputs(tmp_path):
    paths = score_assertions(_table(), _fake).write(tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["summary"]["accuracy"] == pytest.approx(0.5)
    assert data["confusion"]["negative"]["positive"] == 1
    assert "| uncertain | 1 | 2 |" in paths["md"].read_text()
    assert len(pd.read_csv(paths["csv"])) == 8


def test_with_the_labeller(tmp_path):
    table = tmp_path / "sentences.tsv"
    pd.DataFrame(
        {
            "sentence": [
                "No pleural effusion.",
                "Pneumonia cannot be excluded.",
                "Small pneumothorax.",
            ],
            "target": ["pleural effusion", "pneumonia", "pneumothorax"],
            "status": ["negated", "possible", "affirmed"],
        }
    ).to_csv(table, sep="\t", index=False)
    res = validate_assertions(table, tmp_path / "out")
    assert res.summary["accuracy"] == 1.0
    assert (tmp_path / "out" / "assertion_metrics.md").is_file()
