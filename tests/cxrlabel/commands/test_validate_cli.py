"""``cxr validate`` command: options reach the library; errors become one line and exit 1."""

from __future__ import annotations

import importlib
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


def test_options_are_passed_to_the_library(app, monkeypatch, tmp_path):
    seen = {}

    def fake(pred, gold, out_dir, **kwargs):
        seen.update(pred=pred, gold=gold, out_dir=out_dir, **kwargs)
        return _Fake()

    monkeypatch.setattr(VALIDATE, "validate", fake)
    result = runner.invoke(
        app,
        [
            "validate",
            "p.csv",
            "g.csv",
            "-o",
            str(tmp_path),
            "--id-col",
            "uid",
            "--map",
            "chestxray14_to_chexpert",
            "--gold-semantics",
            "full",
            "--uncertain-as",
            "ignore",
            "--bootstrap",
            "0",
            "--seed",
            "5",
            "--gold-prefix",
            "gold_",
            "--observations",
            "A, B",
        ],
    )
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
    seen = {}

    def fake(table, out_dir, **kwargs):
        seen.update(table=str(table), out_dir=out_dir, **kwargs)
        return _Fake()

    monkeypatch.setattr(ASSERTION_EVAL, "validate_assertions", fake)
    result = runner.invoke(
        app,
        [
            "validate",
            "--assertions",
            "s.tsv",
            "-o",
            str(tmp_path),
            "--target-col",
            "Condition",
            "--status-col",
            "st",
            "--schema",
            "chestxray14",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert seen == {
        "table": "s.tsv",
        "out_dir": tmp_path,
        "schema": "chestxray14",
        "lexicon_dir": None,
        "sentence_col": "sentence",
        "target_col": "Condition",
        "status_col": "st",
        "progress": False,
    }


def test_end_to_end_small_tables(app, tmp_path):
    pd.DataFrame({"id": [1, 2, 3], "Edema": [1, None, 1], "status": ["ok"] * 3}).to_csv(
        tmp_path / "pred.csv", index=False
    )
    pd.DataFrame({"id": [1, 2, 3], "Edema": [1, 1, 0]}).to_csv(tmp_path / "gold.csv", index=False)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "validate",
            str(tmp_path / "pred.csv"),
            str(tmp_path / "gold.csv"),
            "-o",
            str(out),
            "--bootstrap",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| Edema | 2 | 1 | 1 | 1 | 0.500 | 0.500 |" in result.stdout
    assert {p.name for p in out.iterdir()} >= {"metrics.md", "noise.json", "errors.csv", "f1.png"}
