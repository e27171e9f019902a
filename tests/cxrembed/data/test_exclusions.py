"""cxrembed.data.exclusions: one record type and one excluded.csv schema for every command."""

from __future__ import annotations

import pandas as pd

from cxrembed.data.exclusions import (
    EXCLUDED_COLUMNS,
    EXCLUDED_FILE,
    Exclusion,
    excluded_frame,
    exclusion,
    write_excluded,
)


def test_records_and_frames_share_one_schema(tmp_path) -> None:
    records = [
        exclusion(4, "d", tmp_path / "d.png", "corrupt", "truncated"),
        exclusion(-1, "x", None, "duplicate-id", "id used twice"),
        {"row": 1, "id": "b", "path": None, "kind": "missing", "reason": "not found"},
    ]
    frame = write_excluded(tmp_path / "out", records)
    assert list(frame.columns) == EXCLUDED_COLUMNS
    assert frame["row"].tolist() == [1, 4, pd.NA]  # sorted by table row, blank last
    written = pd.read_csv(tmp_path / "out" / EXCLUDED_FILE, dtype={"row": "Int64"})
    assert written["id"].tolist() == ["b", "d", "x"] and written["row"].isna().tolist() == [
        False,
        False,
        True,
    ]
    assert written.loc[1, "path"] == str(tmp_path / "d.png")
    assert excluded_frame(frame).equals(frame)


def test_an_exclusion_reads_like_the_dict_it_replaced() -> None:
    record = exclusion(2, "a", None, "label-status", "labeller status is 'empty'")
    assert isinstance(record, Exclusion) and record["row"] == 2 == record.row
    assert dict(record) == {
        "row": 2,
        "id": "a",
        "path": None,
        "kind": "label-status",
        "reason": "labeller status is 'empty'",
    }
    assert len(excluded_frame([])) == 0 and list(excluded_frame([]).columns) == EXCLUDED_COLUMNS
