"""cxr validate as a Python function: hand-checked metrics, label maps, outputs, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from cxrlabel.errors import CxrError, GoldError, InputError
from cxrlabel.lexicon import LabelMap
from cxrlabel.validation.evidence_lookup import EvidenceIndex
from cxrlabel.validation.labels import validate
from cxrlabel.validation.noise import read_noise

NAN = np.nan


def _six():
    """Six reports, hand-checked below.

    Edema      pred  1   1  -1  .   0   0
               gold  1   0   1  1   0   0
    Pneumonia  pred  .   1   .  .   .   .
               gold  0   0   0  0   0   0   (no gold positives -> undefined)
    """
    pred = pd.DataFrame(
        {
            "id": ["r1", "r2", "r3", "r4", "r5", "r6"],
            "Edema": [1, 1, -1, NAN, 0, 0],
            "Pneumonia": [NAN, 1, NAN, NAN, NAN, NAN],
            "status": ["ok"] * 5 + ["empty"],
        }
    )
    gold = pd.DataFrame(
        {
            "id": ["r1", "r2", "r3", "r4", "r5", "r6"],
            "Edema": [1, 0, 1, 1, 0, 0],
            "Pneumonia": [0, 0, 0, 0, 0, 0],
        }
    )
    return pred, gold


def _row(result, name):
    return result.table.set_index("observation").loc[name]


def test_hand_checked_positive_only_uncertain_as_positive():
    res = validate(*_six(), bootstrap=0)
    edema = _row(res, "Edema")
    # -1 counts as positive: pred+ = r1 r2 r3; gold+ = r1 r3 r4
    # TP = r1, r3 (2); FP = r2 (1); FN = r4 (1); TN = r5, r6 (2)
    assert (edema.tp, edema.fp, edema.fn, edema.tn) == (2, 1, 1, 2)
    assert edema.precision == pytest.approx(2 / 3)  # 2 / (2 + 1)
    assert edema.recall == pytest.approx(2 / 3)  # 2 / (2 + 1)
    assert edema.f1 == pytest.approx(2 / 3)  # 2*2 / (2*2 + 1 + 1)
    # p_o = 4/6; p_e = (3/6)(3/6) + (3/6)(3/6) = 1/2; kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert edema.kappa == pytest.approx(1 / 3)
    pneumonia = _row(res, "Pneumonia")
    assert pneumonia.support == 0 and pneumonia.fp == 1
    assert (
        math.isnan(pneumonia.precision)
        and math.isnan(pneumonia.recall)
        and math.isnan(pneumonia.f1)
    )
    assert "undefined" in pneumonia.note
    s = res.summary
    assert s["macro_f1"] == pytest.approx(2 / 3)  # Edema only; Pneumonia left out
    assert s["macro_over"] == ["Edema"] and s["undefined"] == ["Pneumonia"]
    # micro: TP 2, FP 1 + 1, FN 1 -> 4 / (4 + 2 + 1)
    assert s["micro_f1"] == pytest.approx(4 / 7)
    assert s["pred_status"] == {"ok": 5, "empty": 1}


def test_hand_checked_uncertain_as_negative_and_ignore():
    neg = _row(validate(*_six(), bootstrap=0, uncertain_as="negative"), "Edema")
    # pred+ = r1 r2: TP 1 (r1), FP 1 (r2), FN 2 (r3, r4), TN 2
    assert (neg.tp, neg.fp, neg.fn, neg.tn) == (1, 1, 2, 2)
    assert neg.f1 == pytest.approx(0.4)  # 2 / (2 + 1 + 2)
    assert neg.kappa == pytest.approx(0.0)  # p_o = 1/2 = p_e
    ign = _row(validate(*_six(), bootstrap=0, uncertain_as="ignore"), "Edema")
    # r3 dropped: TP 1, FP 1, FN 1, TN 2 over 5 rows
    assert (ign.n, ign.tp, ign.fp, ign.fn, ign.tn) == (5, 1, 1, 1, 2)
    assert ign.f1 == pytest.approx(0.5)
    # p_o = 3/5; p_e = (2/5)(2/5) + (3/5)(3/5) = 13/25 -> kappa = (2/25) / (12/25) = 1/6
    assert ign.kappa == pytest.approx(1 / 6)


def test_summary_reports_both_uncertain_choices():
    side = validate(*_six(), bootstrap=0, uncertain_as="ignore").summary["by_uncertain_as"]
    assert side["positive"]["macro_f1"] == pytest.approx(2 / 3)
    assert side["negative"]["macro_f1"] == pytest.approx(0.4)


def test_hand_checked_full_semantics():
    pred = pd.DataFrame({"id": range(6), "Edema": [1, -1, -1, 0, NAN, 0]})
    gold = pd.DataFrame({"id": range(6), "Edema": [1, 0, -1, NAN, 1, 0]})
    res = validate(pred, gold, gold_semantics="full", bootstrap=0)
    edema = _row(res, "Edema")
    # per class (one vs rest): pos 2/3, neg 1/2, unc 2/3, blank 0 (see test_metrics)
    assert edema.f1_positive == pytest.approx(2 / 3)
    assert edema.f1_negative == pytest.approx(0.5)
    assert edema.f1_uncertain == pytest.approx(2 / 3)
    assert edema.f1_blank == pytest.approx(0.0)
    assert edema.weighted_f1 == pytest.approx(0.6)
    assert edema.kappa == pytest.approx(1 / 3)
    assert (edema.n_positive, edema.n_negative, edema.n_uncertain, edema.n_blank) == (2, 2, 1, 1)
    conf = res.confusion.set_index(["gold", "predicted"])["count"]
    assert conf["negative", "uncertain"] == 1 and conf["positive", "blank"] == 1
    assert conf.sum() == 6
    assert len(res.errors) == 3  # rows 1, 3, 4 disagree
    # positive-vs-rest view (gold -1 counted as positive too): pred+ rows 0,1,2; gold+ rows 0,2,4
    assert edema.pos_precision == pytest.approx(2 / 3) and edema.pos_recall == pytest.approx(2 / 3)


def test_bootstrap_intervals_are_seeded_and_bracket_the_estimate():
    rng = np.random.default_rng(0)
    gold = (rng.random((80, 3)) < 0.3).astype(float)
    pred = np.where(rng.random((80, 3)) < 0.8, gold, 1 - gold)
    names = ["A", "B", "C"]
    p = pd.DataFrame(pred, columns=names).assign(id=range(80))
    g = pd.DataFrame(gold, columns=names).assign(id=range(80))
    a = validate(p, g, bootstrap=200, seed=3)
    b = validate(p, g, bootstrap=200, seed=3)
    pd.testing.assert_frame_equal(a.table, b.table)
    t = a.table
    assert (t.f1_ci_low <= t.f1).all() and (t.f1 <= t.f1_ci_high).all()
    lo, hi = a.summary["macro_f1_ci"]
    assert lo <= a.summary["macro_f1"] <= hi and hi - lo > 0.01
    c = validate(p, g, bootstrap=200, seed=4)
    assert not np.allclose(c.table.f1_ci_low, t.f1_ci_low)
    assert validate(p, g, bootstrap=0).table.f1_ci_low.isna().all()


def test_label_map_many_to_one_applied_to_gold():
    # CheXpert-schema predictions scored on ChestX-ray14 gold
    lmap = LabelMap(
        "chestxray14",
        "chexpert",
        {
            "Mass": ("Lung Lesion",),
            "Nodule": ("Lung Lesion",),
            "Emphysema": (),
            "Cardiomegaly": ("Cardiomegaly",),
        },
        "test-map",
    )
    pred = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "Lung Lesion": [1, 1, NAN, NAN],
            "Cardiomegaly": [1, NAN, NAN, NAN],
            "Support Devices": [1, 1, 1, 1],
        }
    )
    gold = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "Mass": [1, 0, 0, 0],
            "Nodule": [0, 1, 1, 0],
            "Emphysema": [1, 1, 1, 1],
            "Cardiomegaly": [1, 0, 0, 0],
        }
    )
    res = validate(pred, gold, label_map=lmap, bootstrap=0)
    lesion = _row(res, "Lung Lesion")
    # gold Lung Lesion = Mass or Nodule = [1, 1, 1, 0]
    assert (lesion.tp, lesion.fp, lesion.fn, lesion.tn) == (2, 0, 1, 1)
    assert res.summary["map_applied_to"] == "gold"
    assert res.summary["dropped_by_map"] == ["Emphysema"]
    assert res.summary["not_in_gold"] == ["Support Devices"]
    assert res.summary["schema"] == "chexpert"


def test_packaged_map_applied_to_predictions():
    # ChestX-ray14-schema predictions scored on CheXpert gold
    pred = pd.DataFrame(
        {"id": [1, 2, 3], "Mass": [1, NAN, NAN], "Nodule": [NAN, -1, NAN], "Effusion": [1, 1, NAN]}
    )
    gold = pd.DataFrame({"id": [1, 2, 3], "Lung Lesion": [1, 1, 0], "Pleural Effusion": [1, 0, 0]})
    res = validate(
        pred, gold, label_map="chestxray14_to_chexpert", bootstrap=0, uncertain_as="negative"
    )
    assert res.summary["map_applied_to"] == "pred"
    lesion = _row(res, "Lung Lesion")
    # mapped prediction = [1, -1, blank]; -1 as negative -> TP 1, FN 1
    assert (lesion.tp, lesion.fn, lesion.fp) == (1, 1, 0)
    assert _row(res, "Pleural Effusion").fp == 1


def test_missing_ids_are_reported_not_dropped(tmp_path):
    pred, gold = _six()
    pred = pd.concat(
        [pred, pd.DataFrame({"id": ["extra"], "Edema": [1], "Pneumonia": [NAN], "status": ["ok"]})]
    )
    gold = gold[gold.id != "r6"]
    res = validate(pred, gold, tmp_path, bootstrap=0)
    ids = res.summary["ids"]
    assert ids["missing_in_gold"] == ["r6", "extra"] and ids["missing_in_pred"] == []
    assert ids["scored"] == 5 and res.summary["n_scored"] == 5
    missing = pd.read_csv(tmp_path / "missing_ids.csv")
    assert sorted(missing.id) == ["extra", "r6"] and set(missing.missing_from) == {"gold"}
    assert "only in predictions: 2" in (tmp_path / "metrics.md").read_text()


def test_gold_rows_without_labels_are_listed_not_scored():
    pred, gold = _six()
    gold.loc[gold.id == "r2", ["Edema", "Pneumonia"]] = NAN
    res = validate(pred, gold, bootstrap=0)
    assert res.summary["ids"]["gold_without_labels"] == ["r2"]
    assert res.summary["n_scored"] == 5 and _row(res, "Edema").fp == 0


def test_outputs_written(tmp_path):
    pred, gold = _six()
    res = validate(pred, gold, tmp_path / "out", bootstrap=50)
    out = tmp_path / "out"
    for name in (
        "metrics.md",
        "metrics.csv",
        "metrics.json",
        "noise.json",
        "errors.csv",
        "missing_ids.csv",
        "f1.png",
    ):
        assert (out / name).is_file(), name
    assert (out / "f1.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((out / "metrics.json").read_text())
    pneu = [o for o in data["observations"] if o["observation"] == "Pneumonia"][0]
    assert pneu["f1"] is None and pneu["precision"] is None  # undefined -> null
    assert data["summary"]["macro_f1"] == pytest.approx(2 / 3)
    md = (out / "metrics.md").read_text()
    assert "| Pneumonia | 0 |" in md and "—" in md
    csv = pd.read_csv(out / "metrics.csv")
    assert (
        csv.set_index("observation").loc["Pneumonia", "f1"]
        != csv.set_index("observation").loc["Pneumonia", "f1"]
    )
    noise = read_noise(out / "noise.json")
    assert noise.observations["Edema"].p_label1_given_truth0 == pytest.approx(
        1 / 3
    )  # FP 1 / (FP 1 + TN 2)
    assert noise.observations["Pneumonia"].f1 is None
    errors = pd.read_csv(out / "errors.csv")
    assert len(errors) == len(res.errors) == 3  # Edema r2 (FP), r4 (FN); Pneumonia r2 (FP)
    assert set(errors.kind) == {"false positive", "false negative"}


def test_errors_carry_evidence(tmp_path):
    pred, gold = _six()
    evidence = tmp_path / "evidence.jsonl"
    records = [
        {
            "id": "r2",
            "observation": "Edema",
            "text": "edema",
            "sentence": "Mild edema.",
            "section": "findings",
            "assertion": "positive",
            "rule_id": None,
            "excluded": False,
        },
        {
            "id": "r2",
            "observation": "Pneumonia",
            "text": "pneumonia",
            "sentence": "No pneumonia?",
            "section": "impression",
            "assertion": "negative",
            "rule_id": "neg.pre.no",
            "excluded": False,
        },
        {
            "id": "r2",
            "observation": "Pneumonia",
            "text": "infection",
            "sentence": "Infection.",
            "section": "impression",
            "assertion": "positive",
            "rule_id": None,
            "excluded": False,
        },
    ]
    evidence.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    errors = validate(pred, gold, evidence=evidence, bootstrap=0).errors.set_index(
        ["id", "observation"]
    )
    assert errors.loc[("r2", "Edema"), "sentence"] == "Mild edema."
    assert errors.loc[("r2", "Pneumonia"), "matched_text"] == "infection"  # the positive mention
    assert errors.loc[("r4", "Edema"), "note"] == "no mention found"
    assert errors.loc[("r4", "Edema"), "predicted"] == "blank"


def test_evidence_notes_for_values_without_a_mention():
    index = EvidenceIndex(
        {("r1", "Edema"): [{"text": "edema", "excluded": True, "reason": "unmention"}]}
    )
    assert index.explain("r1", ["Edema"], NAN)["note"] == "mention excluded (unmention)"
    assert index.explain("r9", ["Edema"], NAN)["note"] == "no mention found"
    assert "derived label" in index.explain("r9", ["No Finding"], 1.0)["note"]


def test_bad_evidence_line_names_the_line(tmp_path):
    evidence = tmp_path / "evidence.jsonl"
    evidence.write_text('{"id": "r1", "observation": "Edema"}\nnot json\n')
    with pytest.raises(InputError, match=r"evidence.jsonl:2"):
        validate(*_six(), evidence=evidence, bootstrap=0)


def test_files_csv_and_parquet(tmp_path):
    pred, gold = _six()
    pred.to_parquet(tmp_path / "pred.parquet")
    gold.assign(id=gold.id).to_csv(tmp_path / "gold.csv", index=False)
    res = validate(tmp_path / "pred.parquet", tmp_path / "gold.csv", bootstrap=0)
    assert _row(res, "Edema").f1 == pytest.approx(2 / 3)


def test_integer_and_string_ids_join():
    pred = pd.DataFrame({"id": [1, 2, 3], "A": [1, NAN, 1]})
    gold = pd.DataFrame({"id": ["1", "2", "3"], "A": [1, 0, 0]})
    assert validate(pred, gold, bootstrap=0).summary["n_scored"] == 3


# ----------------------------------------------------------------------------- bad input


def test_no_ids_in_common():
    pred, gold = _six()
    gold["id"] = ["x1", "x2", "x3", "x4", "x5", "x6"]
    with pytest.raises(GoldError, match=r"no id in common.*e\.g\. \['r1'.*\['x1'"):
        validate(pred, gold, bootstrap=0)


def test_unknown_label_names_name_the_closest():
    pred, gold = _six()
    gold = gold.rename(columns={"Edema": "Oedema"})
    with pytest.raises(GoldError, match=r"\['Oedema'\].*closest.*'Edema'"):
        validate(pred, gold, bootstrap=0)
    with pytest.raises(InputError, match=r"\['Edemaa'\].*closest.*'Edema'"):
        validate(*_six(), observations=["Edemaa"], bootstrap=0)


def test_unknown_names_for_the_label_map():
    pred, gold = _six()
    lmap = LabelMap("x", "y", {"Oedema": ("Edema",), "Pneumonia": ("Pneumonia",)}, "m.yaml")
    gold = gold.rename(columns={"Edema": "Oedema"}).assign(Pneumonnia=0)
    with pytest.raises(GoldError, match=r"\['Pneumonnia'\].*not source names.*Pneumonia"):
        validate(pred, gold, label_map=lmap, bootstrap=0)


def test_non_numeric_gold_value_names_column_and_id():
    pred, gold = _six()
    gold["Edema"] = gold["Edema"].astype(object)
    gold.loc[3, "Edema"] = "yes"
    with pytest.raises(GoldError, match=r"non-numeric gold value 'yes' in column 'Edema' \(id r4"):
        validate(pred, gold, bootstrap=0)


def test_out_of_range_values():
    pred, gold = _six()
    gold.loc[0, "Edema"] = -1
    with pytest.raises(GoldError, match=r"value -1 .*'Edema'.*--gold-semantics full"):
        validate(pred, gold, bootstrap=0)
    pred, gold = _six()
    pred.loc[1, "Edema"] = 2
    with pytest.raises(InputError, match=r"value 2 in column 'Edema' \(id r2"):
        validate(pred, gold, bootstrap=0)


def test_empty_and_headerless_files(tmp_path):
    pred, _ = _six()
    empty = tmp_path / "gold.csv"
    empty.write_text("")
    with pytest.raises(GoldError, match="gold file is empty"):
        validate(pred, empty, bootstrap=0)
    empty.write_text("id,Edema\n")
    with pytest.raises(GoldError, match="no rows"):
        validate(pred, empty, bootstrap=0)
    with pytest.raises(InputError, match="not found"):
        validate(tmp_path / "absent.csv", empty, bootstrap=0)


def test_id_problems():
    pred, gold = _six()
    with pytest.raises(GoldError, match=r"no id column 'uid'.*--gold-id-col"):
        validate(pred, gold, gold_id_col="uid", bootstrap=0)
    dup = pd.concat([gold, gold.iloc[[0]]])
    with pytest.raises(GoldError, match=r"duplicate id\(s\) \['r1'\]"):
        validate(pred, dup, bootstrap=0)
    blank = pred.copy()
    blank.loc[2, "id"] = None
    with pytest.raises(InputError, match=r"empty id in predictions data row\(s\) \[3\]"):
        validate(blank, gold, bootstrap=0)


def test_bad_parameters():
    for kwargs, word in (
        ({"gold_semantics": "partial"}, "gold_semantics"),
        ({"uncertain_as": "maybe"}, "uncertain_as"),
        ({"bootstrap": -1}, "bootstrap"),
    ):
        with pytest.raises(InputError, match=word):
            validate(*_six(), **kwargs)


def test_every_error_is_a_cxr_error(tmp_path):
    bad = tmp_path / "gold.xlsx"
    bad.write_text("x")
    with pytest.raises(CxrError, match="unsupported gold file type"):
        validate(_six()[0], bad)
