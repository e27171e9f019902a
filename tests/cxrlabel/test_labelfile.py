"""File labelling: formats, joined columns, order, bad input, atomic output, jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrlabel import InputError, Labeler, label_file
from cxrlabel.io import ReportReader

REPORTS = [
    ("a", "Heart size is normal.", "No acute disease."),
    ("b", "", ""),
    ("c", "Cannot exclude pneumonia.", "Small left effusion."),
    ("d", "Right IJ catheter in place.", "No pneumothorax."),
]


def _csv(path: Path, rows=REPORTS) -> Path:
    pd.DataFrame(rows, columns=["id", "findings", "impression"]).to_csv(path, index=False)
    return path


def test_csv_joined_columns_order_status_and_contract(tmp_path: Path) -> None:
    src = _csv(tmp_path / "r.csv")
    s = label_file(src, tmp_path / "out.csv", text_cols=["findings", "impression"], progress=False)
    out = pd.read_csv(tmp_path / "out.csv", dtype={"id": str})
    assert out["id"].tolist() == ["a", "b", "c", "d"]
    assert out["status"].tolist() == ["ok", "empty", "ok", "ok"]
    assert list(out.columns) == ["id", *Labeler().names, "status"]
    assert out.loc[2, "Pneumonia"] == -1 and out.loc[2, "Pleural Effusion"] == 1
    assert out.loc[3, "Support Devices"] == 1 and out.loc[3, "Pneumothorax"] == 0
    assert pd.isna(out.loc[0, "Edema"])  # not mentioned -> empty cell
    assert (s.rows, s.ok, s.empty, s.errors) == (4, 3, 1, 0)
    assert s.counts["Pleural Effusion"]["1"] == 1
    assert "Pleural Effusion" in s.table()


@pytest.mark.parametrize("suffix", [".tsv", ".parquet", ".jsonl"])
def test_other_input_formats(tmp_path: Path, suffix: str) -> None:
    df = pd.DataFrame(REPORTS, columns=["id", "findings", "impression"])
    src = tmp_path / f"r{suffix}"
    if suffix == ".tsv":
        df.to_csv(src, sep="\t", index=False)
    elif suffix == ".parquet":
        df.to_parquet(src)
    else:
        df.to_json(src, orient="records", lines=True)
    label_file(src, tmp_path / "out.parquet", text_cols=["findings", "impression"], progress=False)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["id"].tolist() == ["a", "b", "c", "d"]
    assert out.loc[2, "Pneumonia"] == -1


def test_folder_of_txt_files(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "r1.txt").write_text("Large left pneumothorax.")
    (folder / "r2.txt").write_bytes(b"No effusion. \xff\xfe bad bytes")
    s = label_file(folder, tmp_path / "o.csv", progress=False)
    out = pd.read_csv(tmp_path / "o.csv")
    assert out["id"].tolist() == ["r1", "r2"]
    assert out.loc[0, "Pneumothorax"] == 1 and out.loc[1, "Pleural Effusion"] == 0
    assert s.replaced_rows == 1


def test_missing_column_lists_columns_present(tmp_path: Path) -> None:
    src = _csv(tmp_path / "r.csv")
    with pytest.raises(InputError) as err:
        label_file(src, tmp_path / "o.csv", text_cols=["finding"], progress=False)
    message = str(err.value)
    assert "'finding'" in message and "findings" in message and "impression" in message
    assert not (tmp_path / "o.csv").exists()


def test_no_default_text_column_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    pd.DataFrame({"id": [1], "body": ["x"]}).to_csv(src, index=False)
    with pytest.raises(InputError, match="--text-col"):
        label_file(src, tmp_path / "o.csv", progress=False)


def test_empty_file_and_bad_suffix(tmp_path: Path) -> None:
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        label_file(empty, tmp_path / "o.csv", progress=False)
    bad = tmp_path / "r.xlsx"
    bad.write_text("x")
    with pytest.raises(InputError, match="unsupported input"):
        label_file(bad, tmp_path / "o.csv", progress=False)
    with pytest.raises(InputError, match="not found"):
        label_file(tmp_path / "nope.csv", tmp_path / "o.csv", progress=False)


def test_undecodable_bytes_are_replaced_and_counted(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    src.write_bytes(b"id,text\n1,No pneumothorax \xff\xfe.\n2,Cardiomegaly.\n")
    s = label_file(src, tmp_path / "o.csv", progress=False)
    out = pd.read_csv(tmp_path / "o.csv")
    assert len(out) == 2 and s.replaced_rows == 1
    assert out.loc[0, "Pneumothorax"] == 0


def test_duplicate_ids_warned_with_count_rows_kept(tmp_path: Path) -> None:
    src = _csv(
        tmp_path / "r.csv", [("x", "Cardiomegaly.", ""), ("x", "No effusion.", ""), ("x", "", "")]
    )
    s = label_file(src, tmp_path / "o.csv", text_cols=["findings", "impression"], progress=False)
    assert s.duplicate_ids == 2
    assert len(pd.read_csv(tmp_path / "o.csv")) == 3
    assert "duplicate ids" in s.text()


def test_evidence_jsonl_and_no_id_column_uses_row_numbers(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    pd.DataFrame({"text": ["No pneumothorax.", "Mild edema."]}).to_csv(src, index=False)
    label_file(src, tmp_path / "o.csv", evidence_path=tmp_path / "ev.jsonl", progress=False)
    out = pd.read_csv(tmp_path / "o.csv")
    assert out["row"].tolist() == [0, 1]
    records = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert {(r["id"], r["observation"], r["assertion"]) for r in records} >= {
        ("0", "Pneumothorax", "negative"),
        ("1", "Edema", "positive"),
    }


def test_chunked_and_parallel_runs_match_single(tmp_path: Path) -> None:
    rows = [(f"id{i}", f"{t} {i}", imp) for i in range(60) for (_, t, imp) in [REPORTS[i % 4]]]
    src = _csv(tmp_path / "r.csv", rows)
    label_file(src, tmp_path / "one.csv", text_cols=["findings", "impression"], progress=False)
    label_file(
        src,
        tmp_path / "two.csv",
        text_cols=["findings", "impression"],
        jobs=2,
        chunk_size=7,
        progress=False,
    )
    a, b = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "two.csv")
    assert a.equals(b) and len(a) == 60


def test_interrupted_run_leaves_no_partial_output(tmp_path: Path, monkeypatch) -> None:
    import cxrlabel.labelfile as lf

    src = _csv(tmp_path / "r.csv")
    out, ev = tmp_path / "o.csv", tmp_path / "ev.jsonl"
    real, calls = lf._label_chunk, []

    def interrupt_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(lf, "_label_chunk", interrupt_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        label_file(src, out, text_cols=["findings"], evidence_path=ev, chunk_size=2, progress=False)
    assert not out.exists() and not ev.exists()
    assert not list(tmp_path.glob(".o.csv*")) and not list(tmp_path.glob(".ev.jsonl*"))


def test_a_row_that_fails_is_kept_with_an_error_status(tmp_path: Path, monkeypatch) -> None:
    src = _csv(tmp_path / "r.csv")
    real = Labeler._analyze

    def fail_on_pneumonia(self, doc, text):
        if "pneumonia" in text:
            raise RuntimeError("boom")
        return real(self, doc, text)

    monkeypatch.setattr(Labeler, "_analyze", fail_on_pneumonia)
    s = label_file(src, tmp_path / "o.csv", text_cols=["findings", "impression"], progress=False)
    out = pd.read_csv(tmp_path / "o.csv")
    assert out["status"].tolist()[2] == "error: RuntimeError: boom"
    assert out["status"].tolist()[3] == "ok" and len(out) == 4
    assert s.errors == 1


def test_reader_streams_in_chunks(tmp_path: Path) -> None:
    rows = [(str(i), "No effusion.", "") for i in range(25)]
    src = _csv(tmp_path / "r.csv", rows)
    chunks = list(ReportReader(src, ["findings"], "id", chunk_size=10))
    assert [len(c.ids) for c in chunks] == [10, 10, 5]
    assert chunks[1].first_row == 10


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(st.none(), st.text(max_size=300)), min_size=1, max_size=8))
def test_arbitrary_unicode_never_crashes_and_keeps_rows(texts: list[str | None]) -> None:
    lab = _LAB
    out = lab.label(texts)
    assert len(out) == len(texts)
    values = out.to_numpy().ravel()
    assert set(values[~pd.isna(values)]) <= {1.0, 0.0, -1.0}


_LAB = Labeler()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(max_size=200), min_size=1, max_size=6))
def test_arbitrary_unicode_file_round_trip(tmp_path_factory, texts: list[str]) -> None:
    tmp = tmp_path_factory.mktemp("hyp")
    src = tmp / "r.jsonl"
    pd.DataFrame({"id": [f"i{i}" for i in range(len(texts))], "text": texts}).to_json(
        src, orient="records", lines=True
    )
    label_file(src, tmp / "o.csv", progress=False)
    out = pd.read_csv(tmp / "o.csv", keep_default_na=False)
    assert out["id"].tolist() == [f"i{i}" for i in range(len(texts))]
