"""The CheXpert labeller's files: its headerless input, a ``Reports`` column, ``--format chexpert``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrlabel import InputError, Labeler, label_file
from cxrlabel.chexpert_format import COLUMNS, headerless_reports, looks_headerless
from cxrlabel.cli import app
from cxrlabel.io import ReportReader

runner = CliRunner()
SAMPLE = Path(__file__).parent / "data" / "chexpert_sample_reports.csv"
#: The CheXpert labeller's published output header (its README / labeled_reports.csv).
PUBLISHED_HEADER = (
    "Reports,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Lesion,Lung Opacity,"
    "Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,"
    "Fracture,Support Devices"
)
#: The reports of SAMPLE, as written in it (a quoted one with commas, an unquoted one with
#: commas, an empty line, a quoted one over two lines with "" quotes, an unquoted one).
SAMPLE_REPORTS = [
    "Heart size is mildly enlarged, no focal consolidation. No pneumothorax.",
    "Small left pleural effusion, possible atelectasis at the left base.",
    'Right internal jugular catheter tip in the SVC.\nNo acute "cardiopulmonary" process.',
    "Lungs are clear. No pleural effusion or edema.",
]


def _label(args: list[str]):
    return runner.invoke(app, ["label", *args, "-q"])


# -- reading the headerless file ------------------------------------------------------


def test_headerless_lines_quoted_unquoted_multiline_and_escaped_quotes() -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    assert [r for _, r in headerless_reports(lines, SAMPLE)] == SAMPLE_REPORTS
    assert [n for n, _ in headerless_reports(lines, SAMPLE)] == [1, 2, 4, 6]


def test_headerless_byte_order_mark_crlf_and_empty_quoted_report() -> None:
    lines = ['\ufeff"No effusion."\r\n', '""\r\n', "Mild edema\r\n"]
    assert list(headerless_reports(lines, "r.csv")) == [
        (1, "No effusion."),
        (2, ""),
        (3, "Mild edema"),
    ]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ['"No effusion.\n', "Mild edema.\n"],
            r"r\.csv:1: the quoted report that starts on line 1 is never closed",
        ),
        (['"No effusion." or edema\n'], r"r\.csv:1: text after the closing quote"),
        (["ok\n", '"two\n', 'lines" x\n'], r"r\.csv:3: text after the closing quote"),
    ],
)
def test_headerless_bad_quoting_names_the_line(lines: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        list(headerless_reports(lines, "r.csv"))


@pytest.mark.parametrize(
    ("first_line", "headerless"),
    [
        ('"No acute cardiopulmonary process."', True),
        ("Normal chest.", True),
        ("Heart size is normal and the lungs are clear", True),
        ("report", False),
        ("Reports", False),
        ("findings", False),
        ("id,report", False),
        ("notes", False),  # one name: a header, not a report
        ("Heart normal, lungs clear.", False),  # two fields: a table (the error says --headerless)
        ("id\tfindings\timpression", False),  # a TSV header in a .csv: the table reader says so
        ("id;findings;impression", False),
    ],
)
def test_detection_from_the_first_line(tmp_path: Path, first_line: str, headerless: bool) -> None:
    src = tmp_path / "r.csv"
    src.write_text(first_line + "\nNo effusion.\n", encoding="utf-8")
    assert looks_headerless(src, ",", ["report", "Reports", "findings"]) is headerless


def test_headerless_round_trip_every_report_once_in_order(tmp_path: Path) -> None:
    s = label_file(SAMPLE, tmp_path / "o.csv", progress=False)
    out = pd.read_csv(tmp_path / "o.csv")
    assert out["row"].tolist() == [0, 1, 2, 3] and out["status"].tolist() == ["ok"] * 4
    assert s.rows == 4
    assert "headerless" in s.input and "detected" in s.input and "1 empty line skipped" in s.input
    assert s.input in s.text()
    # the labels are those of each report labelled on its own
    alone = Labeler().label(SAMPLE_REPORTS)
    assert out[Labeler().names].equals(alone.astype(out[Labeler().names].dtypes.to_dict()))
    assert out.loc[1, "Pleural Effusion"] == 1 and out.loc[1, "Atelectasis"] == -1
    assert out.loc[2, "Support Devices"] == 1


def test_headerless_many_chunks_and_jobs_keep_order(tmp_path: Path) -> None:
    reports = [f"Report {i}: small left pleural effusion, no pneumothorax." for i in range(23)]
    src = tmp_path / "many.csv"
    src.write_text(
        "".join(f'"{r}"\n' if i % 2 else f"{r}\n" for i, r in enumerate(reports)), encoding="utf-8"
    )
    label_file(
        src,
        tmp_path / "o.csv",
        headerless=True,
        chunk_size=4,
        jobs=2,
        progress=False,
        output_format="chexpert",
    )
    out = pd.read_csv(tmp_path / "o.csv")
    assert out["Reports"].tolist() == reports
    assert set(out["Pleural Effusion"]) == {1.0} and set(out["Pneumothorax"]) == {0.0}


def test_explicit_headerless_and_no_headerless(tmp_path: Path) -> None:
    src = tmp_path / "short.csv"
    src.write_text("Cardiomegaly\nNo effusion\n", encoding="utf-8")  # too short to detect
    with pytest.raises(InputError, match="pass --headerless"):
        ReportReader(src)
    reader = ReportReader(src, headerless=True)
    assert [c.texts for c in reader] == [["Cardiomegaly", "No effusion"]]
    assert "(--headerless)" in reader.describe()
    with pytest.raises(InputError, match="no text column given"):
        ReportReader(SAMPLE, headerless=False)


def test_headerless_refused_with_columns_or_other_formats(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--text-col names a column, but --headerless"):
        ReportReader(SAMPLE, ["Reports"], headerless=True)
    src = tmp_path / "r.jsonl"
    src.write_text('{"text": "No effusion."}\n', encoding="utf-8")
    with pytest.raises(InputError, match="this is a jsonl input"):
        ReportReader(src, headerless=True)
    named = ReportReader(
        SAMPLE, ["Heart size is mildly enlarged, no focal consolidation. No pneumothorax."]
    )
    assert named.format == "csv"  # a column named on the command line: the file has a header


def test_cli_headerless_reports_how_it_was_read(tmp_path: Path) -> None:
    result = _label([str(SAMPLE), "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 0, result.output
    assert "read as the CheXpert labeller's headerless CSV" in result.output
    result = _label([str(SAMPLE), "-o", str(tmp_path / "o.csv"), "--no-headerless"])
    assert result.exit_code == 1 and "pass --headerless" in result.output


# -- a Reports column -------------------------------------------------------------------


def test_reports_column_is_the_text_column(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    pd.DataFrame({"Reports": ["No pneumothorax.", "Mild pulmonary edema."]}).to_csv(
        src, index=False
    )
    s = label_file(src, tmp_path / "o.csv", progress=False)
    out = pd.read_csv(tmp_path / "o.csv")
    assert out["Edema"].tolist()[1] == 1 and out["Pneumothorax"].tolist()[0] == 0
    assert "text from 'Reports'" in s.input
    assert ReportReader(src).text_cols == ["Reports"]


# -- --format chexpert ----------------------------------------------------------------


def test_format_chexpert_writes_exactly_the_published_header(tmp_path: Path) -> None:
    out = tmp_path / "labeled_reports.csv"
    result = _label([str(SAMPLE), "-o", str(out), "--format", "chexpert"])
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == PUBLISHED_HEADER == ",".join(COLUMNS)
    table = pd.read_csv(out, keep_default_na=False, dtype=str)
    assert table["Reports"].tolist() == SAMPLE_REPORTS
    values = set(table[list(COLUMNS[1:])].to_numpy().ravel())
    assert values <= {"1.0", "0.0", "-1.0", ""} and {"1.0", "0.0", "-1.0", ""} <= values
    assert table.loc[1, "Atelectasis"] == "-1.0" and table.loc[0, "Pneumothorax"] == "0.0"
    assert table.loc[0, "Edema"] == ""


def test_format_chexpert_on_a_table_with_ids_and_two_columns(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    pd.DataFrame(
        {
            "uid": ["u1", "u2", "u3"],
            "findings": ["Mild cardiomegaly.", None, "Clear lungs."],
            "impression": ["No effusion.", None, "Possible pneumonia."],
        }
    ).to_csv(src, index=False)
    for name in ("o.csv", "o.parquet"):
        label_file(
            src,
            tmp_path / name,
            text_cols=["findings", "impression"],
            output_format="chexpert",
            progress=False,
        )
    csv, parquet = pd.read_csv(tmp_path / "o.csv"), pd.read_parquet(tmp_path / "o.parquet")
    for out in (csv, parquet):
        assert list(out.columns) == list(COLUMNS)  # no id, no status
        assert (
            out["Reports"].tolist()[0] == "FINDINGS: Mild cardiomegaly.\n\nIMPRESSION: No effusion."
        )
        assert pd.isna(out["Reports"].tolist()[1])  # an empty report stays a row
        assert out["Cardiomegaly"].tolist()[0] == 1.0 and out["Pneumonia"].tolist()[2] == -1.0
    assert str(parquet["No Finding"].dtype) == "float64"


def test_default_format_is_unchanged(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    pd.DataFrame({"id": ["a"], "text": ["Mild edema."]}).to_csv(src, index=False)
    label_file(src, tmp_path / "o.csv", progress=False)
    lines = (tmp_path / "o.csv").read_text().splitlines()
    assert lines[0] == ",".join(["id", *Labeler().names, "status"])
    assert lines[1] == "a,,,,,,1,,,,,,,,,ok"


def test_format_chexpert_with_another_schema_is_one_clear_line(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    result = _label(
        [str(SAMPLE), "-o", str(out), "--format", "chexpert", "--schema", "chestxray14"]
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith(
        "error: --format chexpert writes the CheXpert labeller's 14 observations"
    )
    assert "schema 'chestxray14'" in lines[0] and "Fix: use --schema chexpert" in lines[0]
    assert not out.exists()


def test_format_chexpert_schema_error_comes_before_spacy(tmp_path: Path, monkeypatch) -> None:
    import cxrlabel.labeler

    def no_labeller(*args, **kwargs):
        raise AssertionError("the labeller was built before the format was checked")

    monkeypatch.setattr(cxrlabel.labeler, "Labeler", no_labeller)
    with pytest.raises(InputError, match="--format chexpert"):
        label_file(
            SAMPLE,
            tmp_path / "o.csv",
            schema="chestxray14",
            output_format="chexpert",
            progress=False,
        )


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    result = _label([str(SAMPLE), "-o", str(tmp_path / "o.csv"), "--format", "chexbert"])
    assert result.exit_code != 0 and "chexbert" in result.output


@pytest.mark.parametrize("headerless", [None, True])
def test_utf16_or_binary_file_is_refused_not_read_as_reports(
    tmp_path: Path, headerless: bool | None
) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_bytes("Heart size is normal.\nNo effusion.\n".encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16"):
        ReportReader(wide, headerless=headerless)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"Heart size \x00 is normal.\n")
    with pytest.raises(InputError, match="binary data"):
        ReportReader(binary, headerless=headerless)


def test_first_report_with_semicolons_or_tabs_is_still_detected(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    src.write_text(
        "Heart size is normal; lungs clear.\tNo effusion.\nMild edema.\n", encoding="utf-8"
    )
    reader = ReportReader(src)
    assert reader.format == "headerless"
    assert [c.texts for c in reader] == [
        ["Heart size is normal; lungs clear.\tNo effusion.", "Mild edema."]
    ]


def test_cli_options_reach_label_file(tmp_path: Path, monkeypatch) -> None:
    import cxrlabel.labelfile
    from cxrlabel.labelfile import LabelSummary

    seen: list[dict] = []

    def fake(input_path, output_path, **kwargs):
        seen.append(kwargs)
        return LabelSummary(rows=1, ok=1, output=str(output_path))

    monkeypatch.setattr(cxrlabel.labelfile, "label_file", fake)
    for extra in (
        ["--format", "chexpert", "--headerless"],
        ["--format", "CheXpert", "--no-headerless"],
        [],
    ):
        result = _label(["in.csv", "-o", "out.csv", *extra])
        assert result.exit_code == 0, result.output
    assert [(k["output_format"], k["headerless"]) for k in seen] == [
        ("chexpert", True),
        ("chexpert", False),
        ("cxrkit", None),
    ]


def test_a_schema_with_the_same_names_in_another_order_is_reordered() -> None:
    from cxrlabel.chexpert_format import OBSERVATIONS, observation_order

    names = list(reversed(OBSERVATIONS))
    order = observation_order(names, "mine.yaml")
    assert [names[j] for j in order] == list(OBSERVATIONS)
    with pytest.raises(InputError, match=r"not CheXpert's: Mass"):
        observation_order([*OBSERVATIONS, "Mass"], "mine.yaml")
