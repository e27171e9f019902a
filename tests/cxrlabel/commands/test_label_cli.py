"""`cxr label`: options reach the library call; errors are one line with exit code 1."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

import cxrlabel.labelfile
from cxrlabel.cli import app
from cxrlabel.labelfile import LabelSummary

runner = CliRunner()


def test_options_are_passed_to_label_file(tmp_path: Path, monkeypatch) -> None:
    seen = {}

    def fake(input_path, output_path, **kwargs):
        seen.update(kwargs, input=input_path, output=output_path)
        return LabelSummary(rows=1, ok=1, output=str(output_path))

    monkeypatch.setattr(cxrlabel.labelfile, "label_file", fake)
    result = runner.invoke(
        app,
        ["label", "in.csv", "-o", "out.parquet", "--text-col", "findings", "--text-col", "impression",
         "--id-col", "uid", "--sections", "findings, impression", "--schema", "chestxray14",
         "--evidence", "ev.jsonl", "--jobs", "2", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert seen["input"] == Path("in.csv") and seen["output"] == Path("out.parquet")
    assert seen["text_cols"] == ["findings", "impression"]
    assert seen["id_col"] == "uid" and seen["schema"] == "chestxray14"
    assert seen["sections"] == ["findings", "impression"]
    assert seen["evidence_path"] == Path("ev.jsonl") and seen["jobs"] == 2
    assert seen["progress"] is False


def test_real_run_prints_summary_table(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    pd.DataFrame({"id": ["a", "b"], "text": ["No pneumothorax.", "Mild pulmonary edema."]}).to_csv(src, index=False)
    result = runner.invoke(app, ["label", str(src), "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 0, result.output
    assert "| Edema | 1 |" in result.output
    assert "2 reports" in result.output
    assert pd.read_csv(tmp_path / "o.csv")["Edema"].tolist()[1] == 1


def test_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    pd.DataFrame({"id": ["a"], "text": ["x"]}).to_csv(src, index=False)
    result = runner.invoke(app, ["label", str(src), "-o", str(tmp_path / "o.csv"), "--text-col", "txt"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "columns present" in lines[0]
    assert "Traceback" not in result.output


def test_unknown_schema_names_known_ones(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    pd.DataFrame({"id": ["a"], "text": ["x"]}).to_csv(src, index=False)
    result = runner.invoke(app, ["label", str(src), "-o", str(tmp_path / "o.csv"), "--schema", "chexprt"])
    assert result.exit_code == 1
    assert "did you mean 'chexpert'" in result.output


def test_missing_optional_dependency_names_the_extra() -> None:
    import typer

    from cxrlabel.cli import run_cli

    def needs_torch():
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    demo = typer.Typer()

    @demo.command()
    def image_command() -> None:
        run_cli(needs_torch)

    result = runner.invoke(demo, [])
    assert result.exit_code == 1
    assert 'pip install "cxrkit[embed]"' in result.output and "torch" in result.output
