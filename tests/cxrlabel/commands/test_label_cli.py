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
        [
            "label",
            "in.csv",
            "-o",
            "out.parquet",
            "--text-col",
            "findings",
            "--text-col",
            "impression",
            "--id-col",
            "uid",
            "--sections",
            "findings, impression",
            "--schema",
            "chestxray14",
            "--evidence",
            "ev.jsonl",
            "--jobs",
            "2",
            "--quiet",
        ],
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
    pd.DataFrame({"id": ["a", "b"], "text": ["No pneumothorax.", "Mild pulmonary edema."]}).to_csv(
        src, index=False
    )
    result = runner.invoke(app, ["label", str(src), "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 0, result.output
    assert "| Edema | 1 |" in result.output
    assert "2 reports" in result.output
    assert pd.read_csv(tmp_path / "o.csv")["Edema"].tolist()[1] == 1


def _label_one_report(tmp_path: Path, *options: str):
    """``cxr label`` of a one-report table (id, text) into o.csv with ``options``."""
    src = tmp_path / "r.csv"
    pd.DataFrame({"id": ["a"], "text": ["x"]}).to_csv(src, index=False)
    return runner.invoke(app, ["label", str(src), "-o", str(tmp_path / "o.csv"), *options])


def test_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    result = _label_one_report(tmp_path, "--text-col", "txt")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "columns present" in lines[0]
    assert "Traceback" not in result.output


def test_unknown_schema_names_known_ones(tmp_path: Path) -> None:
    result = _label_one_report(tmp_path, "--schema", "chexprt")
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


def test_evidence_leads_to_the_yaml_line_of_the_deciding_cue(tmp_path: Path) -> None:
    import json

    from cxrlabel.lexicon import default_lexicon_dir

    src = tmp_path / "r.csv"
    pd.DataFrame(
        {"id": ["a"], "text": ["Pleural effusion has resolved. Possible pneumonia."]}
    ).to_csv(src, index=False)
    ev = tmp_path / "ev.jsonl"
    result = runner.invoke(
        app, ["label", str(src), "-o", str(tmp_path / "o.csv"), "--evidence", str(ev), "-q"]
    )
    assert result.exit_code == 0, result.output
    records = {r["observation"]: r for r in map(json.loads, ev.read_text().splitlines())}
    for name, rule, category in (
        ("Pleural Effusion", "neg.post.has_resolved", "negation"),
        ("Pneumonia", "unc.pre.possible", "uncertainty"),
    ):
        record = records[name]
        assert (record["rule_id"], record["category"]) == (rule, category)
        file, line = record["rule_source"].rsplit(":", 1)
        assert file.startswith("cues/") and file.endswith(".yaml")
        # one hop: the file (relative to the lexicon folder) and line hold the cue's rule id
        text = (default_lexicon_dir() / file).read_text(encoding="utf-8").splitlines()
        assert f"id: {rule}" in text[int(line) - 1]


def test_graded_hedge_options_reach_the_labeller(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    text = (
        "Borderline cardiomegaly. Probable right lower lobe pneumonia. Atelectasis versus scarring."
    )
    pd.DataFrame({"id": ["a"], "text": [text]}).to_csv(src, index=False)
    row = {}
    for flags in (
        [],
        ["--borderline", "positive", "--probable", "positive", "--versus", "positive"],
    ):
        out = tmp_path / f"o{len(flags)}.csv"
        result = runner.invoke(app, ["label", str(src), "-o", str(out), "-q", *flags])
        assert result.exit_code == 0, result.output
        row[len(flags)] = pd.read_csv(out).iloc[0]
    for name in ("Cardiomegaly", "Pneumonia", "Atelectasis"):
        assert (row[0][name], row[6][name]) == (-1, 1), name
    result = runner.invoke(
        app, ["label", str(src), "-o", str(tmp_path / "x.csv"), "--borderline", "maybe"]
    )
    assert result.exit_code != 0 and "maybe" in result.output


def test_results_on_stdout_warnings_on_stderr(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    pd.DataFrame({"id": ["a", "a"], "text": ["No effusion.", "Edema."]}).to_csv(src, index=False)
    result = runner.invoke(app, ["label", str(src), "-o", str(tmp_path / "o.csv"), "-q"])
    assert result.exit_code == 0, result.output
    assert "| Edema | 1 |" in result.stdout and "2 reports" in result.stdout
    assert result.stderr == "warning: 1 duplicate ids (rows kept, ids repeated)\n"


def test_jobs_zero_is_one_process_per_core(monkeypatch) -> None:
    import os

    seen = {}

    def fake(input_path, output_path, **kwargs):
        seen.update(kwargs)
        return LabelSummary(rows=0, output=str(output_path))

    monkeypatch.setattr(cxrlabel.labelfile, "label_file", fake)
    result = runner.invoke(app, ["label", "in.csv", "-o", "o.csv", "-j", "0", "-q"])
    assert result.exit_code == 0, result.output
    assert seen["jobs"] == (os.cpu_count() or 1)
