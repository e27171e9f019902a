"""cxrembed.collections.covid: both layouts, every left-out row listed with its reason."""

from __future__ import annotations

import pandas as pd
import pytest

from cxrembed.collections.covid import read_covid_collection
from cxrlabel.errors import InputError

from .._runs import write_pngs


def test_public_layout_keeps_xrays_and_lists_the_rest(tmp_path):
    write_pngs(tmp_path / "images", ["a.png", "b.png", "c.png", "d.png"])
    pd.DataFrame(
        {
            "patientid": [1, 1, 2, 3, 4, 5],
            "finding": ["COVID-19", "COVID-19, ARDS", "todo", "SARS", "COVID-19", "Pneumonia"],
            "view": ["PA", "L", "AP", "PA", "Axial", "PA"],
            "modality": ["X-ray", "X-ray", "X-ray", "X-ray", "CT", "X-ray"],
            "folder": ["images"] * 6,
            "filename": ["a.png", "b.png", "c.png", "d.png", "ct.png", "gone.png"],
        }
    ).to_csv(tmp_path / "metadata.csv", index=False)
    everything = read_covid_collection(tmp_path)
    assert everything.layout == "public"
    assert everything.table["id"].tolist() == [
        "images/a.png",
        "images/b.png",
        "images/c.png",
        "images/d.png",
    ]
    assert everything.table["covid"].tolist()[:2] == ["COVID-19", "COVID-19"]
    assert pd.isna(everything.table["covid"].iloc[2])  # todo: not scored
    assert everything.table["covid"].iloc[3] == "other"
    assert everything.excluded[["row", "reason"]].values.tolist() == [
        [4, "not an X-ray (CT)"],
        [5, "image file not found"],
    ]
    frontal = read_covid_collection(tmp_path, frontal_only=True)
    assert "images/b.png" not in frontal.table["id"].tolist()
    assert len(frontal.table) + len(frontal.excluded) == 6


def test_neither_layout_is_an_error(tmp_path):
    with pytest.raises(InputError, match="neither the public"):
        read_covid_collection(tmp_path)


@pytest.mark.realdata
def test_dev_copy(cxr_dev):
    c = read_covid_collection(cxr_dev)
    assert c.layout == "cxr_dev" and len(c.table) + len(c.excluded) == 398
    assert c.table["id"].is_unique
    assert set(c.table["covid"].dropna()) == {"COVID-19", "other"}
