"""``cxr validate`` command: options reach the library; errors become one line and exit 1."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cxrlabel.commands.validate import register
from cxrlabel.errors import GoldError

runner = CliRunner()
# The modules themselves (``cxrlabel.validation.labels`` may be shadowed by the re-exported function).
VALIDATE = importlib.import_module("cxrlabel.validation.labels")
ASSERTION_EVAL = importlib.import_module("cxrlabel.validation.assertions")


@pytest.fixture()
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keep `validate` a sub-command
        """test app"""

    return app


class _Fake:
    def to_markdown(self) -> str:
        return "| table |"


def _record_call(monkeypatch: pytest.MonkeyPatch, module, name: str) -> dict:
    """Stand in for ``module.name``: keep the arguments by the real parameter names, return a table."""
    seen: dict = {}
    signature = inspect.signature(getattr(module, name))

    def fake(*args, **kwargs):
        seen.update(signature.bind(*args, **kwargs).arguments)
        return _Fake()

    monkeypatch.setattr(module, name, fake)
    return seen


def test_options_are_passed_to_the_library(app, monkeypatch, tmp_path):
    seen = _record_call(monkeypatch, VALIDATE, "validate")
    args = ["p.csv", "g.csv", "-o", str(tmp_path), "--id-col", "uid"]
    args += ["--map", "chestxray14_to_chexpert", "--gold-semantics", "full"]
    args += ["--uncertain-as", "ignore", "--bootstrap", "0", "--seed", "5"]
    args += ["--gold-prefix", "gold_", "--observations", "A, B"]
    result = runner.invoke(app, ["validate", *args])
    assert result.exit_code == 0, result.output
    assert "| table |" in result.stdout
    assert seen == {
        "pred": Path("p.csv"),
        "gold": Path("g.csv"),
        "out_dir": tmp_path,
        "id_col": "uid",
        "gold_id_col": None,
        "label_map": "chestxray14_to_chexpert",
        "gold_semantics": "full",
        "uncertain_as": "ignore",
        "bootstrap": 0,
        "evidence": None,
        "seed": 5,
        "gold_prefix": "gold_",
        "observations": ["A", "B"],
    }


def test_library_error_is_one_line_exit_1(app, monkeypatch, tmp_path):
    def fail(*args, **kwargs):
        raise GoldError("gold.csv: no id in common")

    monkeypatch.setattr(VALIDATE, "validate", fail)
    result = runner.invoke(app, ["validate", "p.csv", "g.csv", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: gold.csv: no id in common"


def test_bad_choice_is_rejected(app, tmp_path):
    result = runner.invoke(
        app, ["validate", "p", "g", "-o", str(tmp_path), "--uncertain-as", "maybe"]
    )
    assert result.exit_code == 2


def test_mode_checks(app, tmp_path):
    result = runner.invoke(app, ["validate", "p.csv", "-o", str(tmp_path)])
    assert result.exit_code == 1 and "give PRED and GOLD" in result.stderr
    result = runner.invoke(
        app, ["validate", "p.csv", "g.csv", "-o", str(tmp_path), "--assertions", "s.tsv"]
    )
    assert result.exit_code == 1 and "do not also give PRED and GOLD" in result.stderr


def test_assertion_mode_passes_options(app, monkeypatch, tmp_path):
    seen = _record_call(monkeypatch, ASSERTION_EVAL, "validate_assertions")
    args = ["--assertions", "s.tsv", "-o", str(tmp_path), "--target-col", "Condition"]
    args += ["--status-col", "st", "--schema", "chestxray14", "-q"]
    result = runner.invoke(app, ["validate", *args])
    assert result.exit_code == 0, result.output
    assert seen == {
        "table": Path("s.tsv"),
        "out_dir": tmp_path,
        "schema": "chestxray14",
        "lexicon_dir": None,
        "sentence_col": "sentence",
        "target_col": "Condition",
        "status_col": "st",
        "progress": False,
    }


def _write_edema_tables(tmp_path: Path, pred_id: str = "id", gold_id: str = "id") -> None:
    """pred.csv and gold.csv of three reports: one Edema hit, one miss, one false alarm."""
    pd.DataFrame({pred_id: [1, 2, 3], "Edema": [1, None, 1], "status": ["ok"] * 3}).to_csv(
        tmp_path / "pred.csv", index=False
    )
    pd.DataFrame({gold_id: [1, 2, 3], "Edema": [1, 1, 0]}).to_csv(
        tmp_path / "gold.csv", index=False
    )


def _validate_files(app, tmp_path, *options):
    """``cxr validate`` of ``tmp_path``'s pred.csv against its gold.csv into out/."""
    files = [str(tmp_path / "pred.csv"), str(tmp_path / "gold.csv")]
    return runner.invoke(app, ["validate", *files, "-o", str(tmp_path / "out"), *options])


def test_end_to_end_small_tables(app, tmp_path):
    _write_edema_tables(tmp_path)
    out = tmp_path / "out"
    result = _validate_files(app, tmp_path, "--bootstrap", "20")
    assert result.exit_code == 0, result.output
    assert "| Edema | 2 | 1 | 1 | 1 | 0.500 | 0.500 |" in result.stdout
    assert {p.name for p in out.iterdir()} >= {"metrics.md", "noise.json", "errors.csv", "f1.png"}


def test_uncertain_has_one_vocabulary_and_the_old_spelling_warns(app, monkeypatch, tmp_path):
    seen = _record_call(monkeypatch, VALIDATE, "validate")
    base = ["validate", "p.csv", "g.csv", "-o", str(tmp_path)]
    for args, value in (
        (["--uncertain", "ones"], "positive"),
        (["--uncertain", "negative"], "negative"),
        (["--uncertain-as", "ignore"], "ignore"),
    ):
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code == 0, result.output
        assert seen["uncertain_as"] == value
        assert ("deprecated" in result.stderr) == (args[0] == "--uncertain-as")
    bad = runner.invoke(app, [*base, "--uncertain", "maybe"])
    assert bad.exit_code == 1 and "--uncertain must be ignore, zeros or ones" in bad.stderr


def test_options_of_the_other_mode_are_refused(app, tmp_path):
    result = runner.invoke(
        app,
        [
            "validate",
            "--assertions",
            "s.tsv",
            "-o",
            str(tmp_path),
            "--uncertain-as",
            "negative",
            "--map",
            "x",
        ],
    )
    assert result.exit_code == 1
    assert "--map, --uncertain-as does not apply in assertion mode" in result.stderr
    result = runner.invoke(
        app, ["validate", "p.csv", "g.csv", "-o", str(tmp_path), "--sentence-col", "text"]
    )
    assert result.exit_code == 1 and "--sentence-col does not apply in label mode" in result.stderr


def test_id_columns_are_found_as_cxr_label_finds_them(app, tmp_path):
    _write_edema_tables(tmp_path, pred_id="uid", gold_id="report_id")
    out = tmp_path / "out"
    result = _validate_files(app, tmp_path, "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    assert "| Edema | 2 | 1 | 1 | 1 | 0.500 | 0.500 |" in result.stdout
    assert result.stdout.rstrip().endswith(f"wrote: {out}")


def test_a_wrong_column_is_reported_from_the_header_alone(app, monkeypatch, tmp_path):
    def never(*args, **kwargs):
        raise AssertionError("the tables were read before the column check")

    monkeypatch.setattr(
        importlib.import_module("cxrlabel.validation.alignment"), "read_table", never
    )
    pd.DataFrame({"uid": [1], "Edema": [1]}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"uid": [1], "gold_Edema": [1]}).to_csv(tmp_path / "g.csv", index=False)
    base = ["validate", str(tmp_path / "p.csv"), str(tmp_path / "g.csv"), "-o", str(tmp_path)]
    wrong_id = runner.invoke(app, [*base, "--id-col", "id"])
    assert wrong_id.exit_code == 1 and "name the id column with --id-col" in wrong_id.stderr
    wrong_gold = runner.invoke(app, [*base, "--gold-id-col", "study"])
    assert wrong_gold.exit_code == 1 and "--gold-id-col" in wrong_gold.stderr
    prefix = runner.invoke(app, [*base, "--gold-prefix", "label_"])
    assert prefix.exit_code == 1 and "prefix 'label_'" in prefix.stderr
    evidence = runner.invoke(app, [*base, "--gold-prefix", "gold_", "--evidence", "none.jsonl"])
    assert evidence.exit_code == 1 and "evidence file not found" in evidence.stderr


def test_a_wrong_label_map_is_reported_before_the_tables_are_read(app, monkeypatch, tmp_path):
    monkeypatch.setattr(
        importlib.import_module("cxrlabel.validation.alignment"),
        "read_table",
        lambda *a, **k: (_ for _ in ()).throw(AssertionError("tables read")),
    )
    pd.DataFrame({"id": [1], "Edema": [1]}).to_csv(tmp_path / "p.csv", index=False)
    result = runner.invoke(
        app,
        [
            "validate",
            str(tmp_path / "p.csv"),
            str(tmp_path / "p.csv"),
            "-o",
            str(tmp_path),
            "--map",
            "chestxray14_to_chexprt",
        ],
    )
    assert result.exit_code == 1 and "chestxray14_to_chexpert" in result.stderr, result.output
