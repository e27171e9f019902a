"""Evidence offsets into the user's own column: ``table[column][row][column_start:column_end]``
is the matched text, for every input format, with section titles, unicode, replaced
characters and empty columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cxrlabel import Labeler, label_file
from cxrlabel.joined import join_text_columns, join_with_spans, whole_column

COLUMNS = ["findings", "notes", "impression"]  # two section columns (titled) and one not
#: Rows written for these tests: section titles inside a column, text before and after
#: non-ASCII characters (accents, CJK, an emoji outside the BMP, combining marks),
#: empty and blank columns, a row with every column empty.
ROWS: list[dict[str, Any]] = [
    {
        "id": "r0",
        "findings": "COMPARISON: none. Heart size is mildly enlarged.",
        "notes": "Right IJ catheter in place.",
        "impression": "No pneumothorax. Small left effusion.",
    },
    {
        "id": "r1",
        "findings": "Ünusual café-au-lait 影 🫁 text; mild pulmonary edema.",
        "notes": None,
        "impression": "Possible pneumonia at the right base.",
    },
    {"id": "r2", "findings": "", "notes": "   ", "impression": "Cardiomegaly without edema."},
    {"id": "r3", "findings": None, "notes": None, "impression": None},
    {
        "id": "r4",
        "findings": "TECHNIQUE: PA and lateral.\n\nFINDINGS: Clear lungs. No effusion.",
        "notes": "e\u0301 combining: no pneumothorax.",
        "impression": "",
    },
    {
        "id": "r5",
        "findings": "Atelectasis at the left base.",
        "notes": "Pacemaker.",
        "impression": "IMPRESSION: Stable cardiomegaly.",
    },
]
#: Extra text of the JSON Lines fixture: unpaired surrogates (``\ud800`` escapes), replaced
#: by U+FFFD one for one before the mentions that follow them.
SURROGATE_ROWS: list[dict[str, Any]] = [
    {
        "id": "s0",
        "findings": "Odd \ud800 byte then mild cardiomegaly.",
        "notes": "x\udc80y no effusion.",
        "impression": "\ud83d Possible pneumonia.",
    },
]


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _check_round_trip(table: dict[str, dict[str, str]], records: list[dict[str, Any]]) -> set[str]:
    """Every record's text is its column's text at its column offsets; the columns seen."""
    assert records
    for r in records:
        cell = table[r["column"]][r["id"]]
        assert cell[r["column_start"] : r["column_end"]] == r["text"], r
        assert r["end"] - r["start"] == r["column_end"] - r["column_start"]
    return {r["column"] for r in records}


def _table(frame: pd.DataFrame) -> dict[str, dict[str, str]]:
    return {c: dict(zip(frame["id"], frame[c], strict=True)) for c in COLUMNS}


def _label(src: Path, tmp: Path, **kwargs: Any) -> list[dict[str, Any]]:
    ev = tmp / f"{src.name}.ev.jsonl"
    label_file(
        src,
        tmp / f"{src.name}.out.csv",
        text_cols=COLUMNS,
        evidence_path=ev,
        progress=False,
        **kwargs,
    )
    return _records(ev)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_table_formats(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame(ROWS)
    src = tmp_path / f"r{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(src)
    else:
        frame.to_csv(src, sep="," if suffix == ".csv" else "\t", index=False)
    records = _label(src, tmp_path)
    if suffix == ".parquet":
        table = pd.read_parquet(src)
    else:
        table = pd.read_csv(src, sep="," if suffix == ".csv" else "\t", dtype=str)
    assert _check_round_trip(_table(table), records) == set(COLUMNS)
    assert {r["id"] for r in records} == {"r0", "r1", "r2", "r4", "r5"}  # r3 is empty
    # offsets past non-ASCII characters and titles that the join added
    edema = next(r for r in records if r["id"] == "r1" and r["observation"] == "Edema")
    assert edema["column"] == "findings" and edema["column_start"] == ROWS[1]["findings"].index(
        "pulmonary edema"
    )
    assert edema["start"] == edema["column_start"] + len("FINDINGS: ")


def test_undecodable_bytes_are_replaced_in_place(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    src.write_bytes(
        b"id,findings,notes,impression\n"
        b"b0,Bad \xff\xfe bytes; mild cardiomegaly.,\xc3 no effusion.,Possible pneumonia.\n"
    )
    records = _label(src, tmp_path)
    table = pd.read_csv(src, dtype=str, encoding_errors="replace")
    assert _check_round_trip(_table(table), records) == set(COLUMNS)


def test_json_lines_with_surrogates(tmp_path: Path) -> None:
    src = tmp_path / "r.jsonl"
    rows = ROWS + SURROGATE_ROWS
    src.write_text(
        "".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8"
    )  # \ud800 escapes
    records = _label(src, tmp_path)
    table = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    assert "\ud800" in table[-1]["findings"]  # the table holds the surrogates ...
    cells = {c: {row["id"]: row[c] for row in table} for c in COLUMNS}
    assert _check_round_trip(cells, records) == set(COLUMNS)  # ... and the offsets still fit
    seen = {(r["column"], r["observation"]) for r in records if r["id"] == "s0"}
    assert seen == {
        ("findings", "Cardiomegaly"),
        ("notes", "Pleural Effusion"),
        ("impression", "Pneumonia"),
    }


def test_folder_of_txt_files(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    texts = {
        "a": "FINDINGS: Ünusual 🫁 text; mild pulmonary edema.\n\nIMPRESSION: No effusion.",
        "b": "",
        "c": "Right IJ catheter in place. Possible pneumonia.",
    }
    for stem, text in texts.items():
        (folder / f"{stem}.txt").write_text(text, encoding="utf-8")
    (folder / "d.txt").write_bytes(b"Odd \xff byte; small left pleural effusion.")
    ev = tmp_path / "ev.jsonl"
    label_file(folder, tmp_path / "o.csv", evidence_path=ev, progress=False)
    records = _records(ev)
    table = {
        "text": {p.stem: p.read_bytes().decode("utf-8", errors="replace") for p in folder.iterdir()}
    }
    assert _check_round_trip(table, records) == {"text"}
    assert {r["id"] for r in records} == {"a", "c", "d"}
    assert all(r["start"] == r["column_start"] for r in records)  # one column: same offsets


def test_headerless_file_column_is_reports(tmp_path: Path) -> None:
    src = tmp_path / "sample.csv"
    reports = [
        'Heart, as before, is "mildly" enlarged.\nNo pneumothorax.',
        "Ünusual 🫁; small left effusion.",
    ]
    src.write_text("".join('"' + r.replace('"', '""') + '"\n' for r in reports), encoding="utf-8")
    ev = tmp_path / "ev.jsonl"
    label_file(src, tmp_path / "o.csv", evidence_path=ev, progress=False)
    table = pd.read_csv(src, header=None, names=["Reports"])  # as the CheXpert labeller reads it
    cells = {"Reports": {str(i): t for i, t in enumerate(table["Reports"])}}
    assert _check_round_trip(cells, _records(ev)) == {"Reports"}


def test_workers_and_chunks_give_the_same_evidence(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    pd.DataFrame([{**row, "id": f"{row['id']}-{i}"} for i in range(5) for row in ROWS]).to_csv(
        src, index=False
    )
    one = _label(src, tmp_path)
    (tmp_path / "r.csv.ev.jsonl").unlink()
    two = _label(src, tmp_path, jobs=2, chunk_size=4)
    assert one == two and len(one) > 30


def test_labeler_mentions_of_a_mapping_and_of_a_string() -> None:
    lab = Labeler()
    row = {c: ROWS[0][c] for c in COLUMNS}
    records = lab.mentions(row, "r0")
    assert _check_round_trip({c: {"r0": v} for c, v in row.items()}, records) == set(COLUMNS)
    joined = join_text_columns([row[c] for c in COLUMNS], COLUMNS)
    assert all(
        joined[r["start"] : r["end"]] == r["text"] for r in records
    )  # start/end: the joined text
    plain = lab.mentions(row["impression"])
    assert plain and all(r["column"] is None for r in plain)
    assert all((r["column_start"], r["column_end"]) == (r["start"], r["end"]) for r in plain)


def test_spans_outside_any_column_are_none() -> None:
    text, spans = join_with_spans(["Clear lungs.", None, "No effusion."], COLUMNS)
    title = text.index("IMPRESSION")
    assert spans.locate(title, title + len("IMPRESSION")) == (None, None, None)  # added by the join
    assert spans.locate(0, len(text)) == (None, None, None)  # across two columns
    assert spans.locate(len("FINDINGS: "), len("FINDINGS: Clear")) == ("findings", 0, 5)
    assert whole_column("Reports").locate(0, 4) == ("Reports", 0, 4)
    assert join_with_spans([None, " ", ""], COLUMNS) == (None, ((), (), ()))
