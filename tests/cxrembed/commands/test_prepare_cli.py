"""``cxr prepare``: options reach prepare_cache unchanged; summary, errors and exit codes."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

import cxrembed.data.cache as cache_module
from cxrembed.commands.prepare import format_summary, parse_window
from cxrembed.data.cache import PrepareSummary
from cxrembed.data.table import excluded_frame, exclusion
from cxrlabel.cli import app
from cxrlabel.errors import InputError

from .._images import ramp, write_png

runner = CliRunner()


def _prepare_argv(tmp_path, *options, out="cache"):
    """``cxr prepare`` of ``tmp_path``'s t.csv (images beside it) into ``out``, quiet."""
    where = [str(tmp_path / "t.csv"), "--images", str(tmp_path)]
    return ["prepare", *where, "-o", str(tmp_path / out), "-q", *options]


def test_options_are_passed_to_the_library(tmp_path, stand_in):
    excluded = excluded_frame([exclusion(2, "x", "x.png", "missing", "image file not found")])
    summary = PrepareSummary(tmp_path / "c", 3, 2, 0, excluded, 1.0)
    seen = stand_in(cache_module, "prepare_cache", summary)
    result = runner.invoke(
        app,
        _prepare_argv(
            tmp_path,
            "--id-col",
            "uid",
            "--size",
            "128",
            "--dtype",
            "uint16",
            "--fit",
            "crop",
            "--window",
            "40,400",
            "-j",
            "2",
            "--overwrite",
            out="c",
        ),
    )
    assert result.exit_code == 0, result.output
    assert seen["args"] == (tmp_path / "t.csv", tmp_path, tmp_path / "c")
    assert seen["kwargs"] == {
        "image_col": None,
        "id_col": "uid",
        "size": 128,
        "dtype": "uint16",
        "fit": "crop",
        "window": (40.0, 400.0),
        "jobs": 2,
        "overwrite": True,
        "progress": False,
    }
    assert "decoded: 2" in result.output and "missing: 1" in result.output


def test_end_to_end_then_resume(tmp_path):
    for name in ("a", "b"):
        write_png(tmp_path / f"{name}.png", ramp(10, 14))
    pd.DataFrame({"uid": ["a", "b", "c"]}).to_csv(tmp_path / "t.csv", index=False)
    args = _prepare_argv(tmp_path, "--id-col", "uid", "--size", "16", "-j", "1")
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "rows: 3  decoded: 2  already cached: 0  excluded: 1" in first.output
    assert "missing: 1" in first.output and "excluded.csv" in first.output
    second = runner.invoke(app, args)
    assert "decoded: 0  already cached: 2" in second.output


def test_nothing_usable_exits_1_with_one_line(tmp_path):
    pd.DataFrame({"uid": ["a"]}).to_csv(tmp_path / "t.csv", index=False)
    result = runner.invoke(
        app,
        _prepare_argv(tmp_path, "--id-col", "uid"),
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no usable row")


def test_bad_window_and_missing_columns_exit_1(tmp_path):
    pd.DataFrame({"uid": ["a"]}).to_csv(tmp_path / "t.csv", index=False)
    base = _prepare_argv(tmp_path)
    bad_window = runner.invoke(app, [*base, "--id-col", "uid", "--window", "wide"])
    assert bad_window.exit_code == 1 and "error: --window must be" in bad_window.output
    no_column = runner.invoke(app, base)
    assert no_column.exit_code == 1 and "--image-col" in no_column.output


def test_parse_window_and_summary_text(tmp_path):
    assert parse_window("minmax") == "minmax" and parse_window("-600, 1500") == (-600.0, 1500.0)
    with pytest.raises(InputError):
        parse_window("1,2,3")
    text = format_summary(PrepareSummary(tmp_path, 5, 0, 5, excluded_frame([]), 0.0))
    assert text.splitlines()[1] == "rows: 5  decoded: 0  already cached: 5  excluded: 0"
