"""cxrlabel.tables: one table reader for both packages, each caller keeping its own words."""

from __future__ import annotations

import pandas as pd
import pytest

from cxrlabel.errors import GoldError, InputError
from cxrlabel.tables import TableMessages, read_table_file


def test_format_by_extension_and_text_ids(tmp_path) -> None:
    frame = pd.DataFrame({"id": ["007", "010"], "Edema": [1, 0]})
    frame.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.tsv", "t.csv", "t.parquet"):
        back = read_table_file(tmp_path / name, text_columns=["id"])
        assert back["id"].tolist() == ["007", "010"], name
        assert back["Edema"].tolist() == [1, 0], name
    (tmp_path / "t.dat").write_text("id,Edema\n1,1\n")
    with pytest.raises(InputError, match="unsupported table file type '.dat'"):
        read_table_file(tmp_path / "t.dat")
    assert read_table_file(tmp_path / "t.dat", other_suffixes=",").shape == (1, 2)


def test_the_callers_words_and_error_class(tmp_path) -> None:
    words = TableMessages(
        missing="{path}: {role} file not found", empty_file="{path}: the {role} file is empty"
    )
    with pytest.raises(GoldError, match="gold file not found"):
        read_table_file(tmp_path / "none.csv", error=GoldError, messages=words, role="gold")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(GoldError, match="empty.csv: the gold file is empty"):
        read_table_file(tmp_path / "empty.csv", error=GoldError, messages=words, role="gold")


def test_cxrembed_reads_tsv_with_tabs(tmp_path) -> None:
    pytest.importorskip("cxrembed.data.table")
    from cxrembed.data.table import read_table

    pd.DataFrame({"id": ["001"], "finding": ["x"]}).to_csv(
        tmp_path / "l.tsv", sep="\t", index=False
    )
    table = read_table(tmp_path / "l.tsv", text_columns=["id"])
    assert list(table.columns) == ["id", "finding"] and table["id"].tolist() == ["001"]
    with pytest.raises(InputError, match="labels table .* not found; give a CSV"):
        read_table(tmp_path / "none.csv")
