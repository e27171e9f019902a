"""Joining a labels table to image files: every row is kept or excluded with a reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxrembed.data.table import EXCLUDED_COLUMNS, join_images, read_table
from cxrlabel.errors import InputError


@pytest.fixture()
def folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.dcm", "c.png", "c.dcm", "00012.png"):
        (images / name).write_bytes(b"x")
    (images / "empty.png").write_bytes(b"")
    (images / "sub").mkdir()
    return images


def test_join_by_id_accounts_for_every_row(folder):
    table = pd.DataFrame({"id": ["a", "b", "c", "gone", None, "a", "empty", "00012"]})
    join = join_images(table, folder, id_col="id")
    assert join.ids == ["a", "b", "00012"]
    assert [p.name for p in join.paths] == ["a.png", "b.dcm", "00012.png"]
    assert join.rows.tolist() == [0, 1, 7]
    kinds = dict(zip(join.excluded["row"], join.excluded["kind"], strict=True))
    assert kinds == {2: "ambiguous", 3: "missing", 4: "no-image", 5: "duplicate-id", 6: "empty"}
    assert list(join.excluded.columns) == EXCLUDED_COLUMNS
    assert len(join.rows) + len(join.excluded) == len(table)
    assert "already used by row 0" in join.excluded.set_index("row").loc[5, "reason"]


def test_join_by_path_relative_to_the_table_folder(folder, tmp_path):
    csv = tmp_path / "labels.csv"
    pd.DataFrame(
        {
            "file": ["images/a.png", "images/zz.png", "", "images/sub"],
            "pid": ["00012", "7", "8", "9"],
        }
    ).to_csv(csv, index=False)
    table = read_table(csv, text_columns=("pid", "file"))
    join = join_images(table, image_col="file", id_col="pid")
    assert join.ids == ["00012"]  # ids keep their leading zeros
    assert join.excluded["kind"].tolist() == ["missing", "no-image", "not-a-file"]
    by_path = join_images(table, image_col="file")
    assert by_path.ids == ["images/a.png"]


def test_join_subset_of_rows(folder):
    table = pd.DataFrame({"id": ["a", "gone", "b"]})
    join = join_images(table, folder, id_col="id", rows=[1, 2])
    assert join.rows.tolist() == [2] and join.excluded["row"].tolist() == [1]


def test_join_needs_a_column_and_a_folder(folder, tmp_path):
    table = pd.DataFrame({"id": ["a"]})
    with pytest.raises(InputError, match="image path column"):
        join_images(table, folder)
    with pytest.raises(InputError, match="no column 'file'.*found columns \\['id'\\]"):
        join_images(table, folder, image_col="file")
    with pytest.raises(InputError, match="images folder"):
        join_images(table, tmp_path / "nowhere", id_col="id")


def test_read_table_csv_parquet_and_errors(tmp_path):
    frame = pd.DataFrame({"id": ["001", "002"], "Edema": [1.0, np.nan]})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    for name in ("t.parquet", "t.csv"):
        table = read_table(tmp_path / name, text_columns=("id",))
        assert table["id"].tolist() == ["001", "002"]
        assert table.attrs["source"].endswith(name)
    with pytest.raises(InputError, match="not found"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("id,Edema\n")
    with pytest.raises(InputError, match="no rows"):
        read_table(tmp_path / "empty.csv")
