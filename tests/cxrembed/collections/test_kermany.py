"""cxrembed.collections.kermany: every row kept or listed with its reason; patient split."""

from __future__ import annotations

import pandas as pd
import pytest

from cxrembed.collections.kermany import SUBTYPES, patient_split, read_kermany_collection
from cxrlabel.errors import InputError

from .._kermany import write_kermany


def test_reads_the_layout_and_lists_rows_left_out(tmp_path):
    table = write_kermany(tmp_path, 6)
    extra = pd.DataFrame(
        [
            {"image": "images/gone.png", "label": "NORMAL", "subtype": "normal", "patient_id": "X"},
            {
                "image": "images/p000_0.png",
                "label": "NORMAL",
                "subtype": "normal",
                "patient_id": "P000",
            },
            {
                "image": "images/p001_0.png",
                "label": "PNEUMONIA",
                "subtype": "fungal",
                "patient_id": "P001",
            },
        ]
    )
    pd.concat([table, extra]).to_csv(tmp_path / "labels.csv", index=False)
    c = read_kermany_collection(tmp_path)
    assert c.table["id"].tolist() == table["image"].tolist()
    assert set(c.table["subtype"]) <= set(SUBTYPES)
    assert c.table["pneumonia"].tolist() == [int(s != "normal") for s in table["subtype"]]
    assert c.excluded["reason"].tolist() == [
        "image file not found",
        "image listed twice",
        "subtype not one of normal, bacteria, virus",
    ]
    assert c.excluded["row"].tolist() == [len(table), len(table) + 1, len(table) + 2]
    assert len(c.table) + len(c.excluded) == len(table) + 3


def test_missing_file_or_columns_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="no labels.csv"):
        read_kermany_collection(tmp_path)
    pd.DataFrame({"image": ["a.png"], "label": ["NORMAL"]}).to_csv(tmp_path / "labels.csv")
    with pytest.raises(InputError, match=r"lacks the column\(s\) \['subtype', 'patient_id'\]"):
        read_kermany_collection(tmp_path)


def test_patient_split_keeps_patients_whole_and_is_seeded(tmp_path):
    write_kermany(tmp_path, 40, split=False)
    table = read_kermany_collection(tmp_path).table
    a = patient_split(table, test_fraction=0.25, seed=3)
    assert (a == patient_split(table, test_fraction=0.25, seed=3)).all()
    test = set(table.loc[a == "test", "patient_id"])
    assert test and not test & set(table.loc[a == "train", "patient_id"])
    assert 0.15 < (a == "test").mean() < 0.35
    assert set(table.loc[a == "test", "subtype"]) == set(SUBTYPES)  # stratified
