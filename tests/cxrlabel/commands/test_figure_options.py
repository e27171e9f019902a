"""``--format`` and ``--dpi`` of ``cxr validate``: the shared figure options, end to end."""

from __future__ import annotations

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cxrlabel.commands.validate import register
from tests._figures import file_format, png_size

runner = CliRunner()
pytest.importorskip("matplotlib")


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:
        pass

    return app


@pytest.fixture
def tables(tmp_path):
    pd.DataFrame({"id": [1, 2, 3, 4], "Edema": [1, None, 1, -1], "status": ["ok"] * 4}).to_csv(
        tmp_path / "pred.csv", index=False
    )
    pd.DataFrame({"id": [1, 2, 3, 4], "Edema": [1, 1, 0, 1]}).to_csv(
        tmp_path / "gold.csv", index=False
    )
    return [str(tmp_path / "pred.csv"), str(tmp_path / "gold.csv")]


@pytest.mark.parametrize("kind", ["png", "svg", "pdf"])
def test_validate_writes_the_figure_in_the_format_asked(app, tables, tmp_path, kind):
    out = tmp_path / kind
    result = runner.invoke(
        app,
        [
            "validate",
            *tables,
            "-o",
            str(out),
            "--bootstrap",
            "10",
            "--format",
            kind,
            "--dpi",
            "120",
        ],
    )
    assert result.exit_code == 0, result.output
    assert file_format(out / f"f1.{kind}") == kind
    assert not any(p.name.startswith("f1.") and p.suffix != f".{kind}" for p in out.iterdir())


def test_dpi_scales_the_png_and_the_default_is_150(app, tables, tmp_path):
    sizes = {}
    for dpi in (None, "300"):
        out = tmp_path / str(dpi)
        extra = [] if dpi is None else ["--dpi", dpi]
        result = runner.invoke(
            app, ["validate", *tables, "-o", str(out), "--bootstrap", "0", *extra]
        )
        assert result.exit_code == 0, result.output
        sizes[dpi] = png_size(out / "f1.png")
    assert abs(sizes["300"][0] - 2 * sizes[None][0]) <= 1


def test_bad_figure_options_are_refused_before_any_work(app, tables, tmp_path):
    result = runner.invoke(app, ["validate", *tables, "-o", str(tmp_path / "x"), "--format", "jpg"])
    assert result.exit_code == 1 and "--format" in result.stderr and "png" in result.stderr
    assert not (tmp_path / "x").exists()
    result = runner.invoke(app, ["validate", *tables, "-o", str(tmp_path / "y"), "--dpi", "5"])
    assert result.exit_code == 2 and "--dpi" in result.output
    result = runner.invoke(
        app, ["validate", "--assertions", "s.tsv", "-o", str(tmp_path), "--format", "svg"]
    )
    assert result.exit_code == 1 and "--format does not apply in assertion mode" in result.stderr
