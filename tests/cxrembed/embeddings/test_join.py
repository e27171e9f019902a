"""Tests of joining embeddings with a table by id (cxrembed.embeddings.join)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxrembed.data.table import read_table
from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.embeddings.join import MISSING_COLUMNS, join_embeddings
from cxrembed.errors import IdJoinError


def _emb(ids):
    return EmbeddingSet(list(ids), np.arange(len(ids) * 2, dtype=np.float32).reshape(-1, 2))


def test_join_matches_in_table_order_and_lists_both_sides():
    emb = _emb(["a", "b", "c", "d"])
    table = pd.DataFrame({"id": ["d", "x", "b", "y"], "v": [1, 2, 3, 4]})
    j = join_embeddings(emb, table, "id")
    assert j.ids == ["d", "b"]
    assert j.rows.tolist() == [0, 2] and j.vector_rows.tolist() == [3, 1]
    np.testing.assert_array_equal(emb.vectors[j.vector_rows], [[6, 7], [2, 3]])
    assert list(j.missing.columns) == MISSING_COLUMNS
    assert j.missing.values.tolist() == [
        ["x", 1, "table", "table row without an embedding"],
        ["y", 3, "table", "table row without an embedding"],
        ["a", 0, "embeddings", "embedding without a table row"],
        ["c", 2, "embeddings", "embedding without a table row"],
    ]
    assert j.summary() == {"matched": 2, "table_without_embedding": 2, "embeddings_without_row": 2}


def test_every_id_is_accounted_for():
    rng = np.random.default_rng(0)
    emb_ids = [f"i{k}" for k in rng.choice(100, 40, replace=False)]
    table_ids = [f"i{k}" for k in rng.choice(100, 50, replace=False)]
    j = join_embeddings(_emb(emb_ids), pd.DataFrame({"id": table_ids}), "id")
    table_side = set(j.missing.loc[j.missing.side == "table", "id"])
    emb_side = set(j.missing.loc[j.missing.side == "embeddings", "id"])
    assert set(j.ids) | table_side == set(table_ids)
    assert set(j.ids) | emb_side == set(emb_ids)
    assert set(j.ids) == set(emb_ids) & set(table_ids)


def test_ids_are_compared_as_text_keeping_zeros(tmp_path):
    (tmp_path / "t.csv").write_text("id,v\n007,1\n12,2\n")
    table = read_table(tmp_path / "t.csv", text_columns=["id"])
    assert join_embeddings(_emb(["007", "12"]), table, "id").ids == ["007", "12"]
    floats = pd.DataFrame({"id": [12.0, 7.0]})  # a numeric id column read as floats
    assert join_embeddings(_emb(["7", "12"]), floats, "id").ids == ["12", "7"]


def test_missing_error_mode_names_the_row():
    with pytest.raises(
        IdJoinError,
        match=r"1 rows of <DataFrame> have no embedding, e.g. id 'x' "
        r"\(row 1\)",
    ):
        join_embeddings(_emb(["a"]), pd.DataFrame({"id": ["a", "x"]}), "id", missing="error")


def test_no_match_shows_both_id_forms():
    table = pd.DataFrame({"path": ["images/a.png", "images/b.png"]})
    with pytest.raises(IdJoinError, match=r"'images/a.png'.*embedding ids like 'a.png'"):
        join_embeddings(_emb(["a.png", "b.png"]), table, "path")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pd.DataFrame({"uid": ["a"]}), "no id column 'id'; found columns \\['uid'\\]"),
        (pd.DataFrame({"id": ["a", None]}), "blank at row 1"),
        (pd.DataFrame({"id": ["a", "b", "a"]}), "holds 'a' on rows 0 and 2"),
    ],
)
def test_bad_tables(table, message):
    with pytest.raises(IdJoinError, match=message):
        join_embeddings(_emb(["a", "b"]), table, "id")


def test_write_missing_csv(tmp_path):
    j = join_embeddings(_emb(["a", "b"]), pd.DataFrame({"id": ["a", "z"]}), "id")
    path = j.write_missing(tmp_path / "missing_ids.csv")
    back = pd.read_csv(path)
    assert back[["id", "side"]].values.tolist() == [["z", "table"], ["b", "embeddings"]]
