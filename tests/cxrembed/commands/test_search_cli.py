"""``cxr search``: options reach the library unchanged; printed tables, CSV, grids, and exit
codes for unreadable queries and a run / index mismatch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import cxrembed.search.retriever as retrieval_module
from cxrembed.inference.embed import embed_images
from cxrembed.search.gallery import build_index
from cxrembed.search.retriever import SearchReport
from cxrlabel.cli import app

from .._runs import make_run, write_pngs

runner = CliRunner()


def _frame(query: str, error: str | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "rank": [1, 2],
            "id": ["a", "b"],
            "similarity": [0.99, 0.5],
            "finding": ["COVID-19", "SARS"],
        }
    )
    if error:
        frame = frame.iloc[:0]
        frame.attrs["error"] = error
    frame.attrs["query"] = query
    return frame


def test_options_are_passed_to_the_library(stand_in):
    report = SearchReport([_frame("q1.png")], [Path("g.png")], ["a note"])
    seen = stand_in(retrieval_module, "search_images", report)
    result = runner.invoke(
        app,
        [
            "search",
            "RUN",
            "IDX",
            "q1.png",
            "--k",
            "5",
            "--show",
            "finding, survival",
            "--grid",
            "g.png",
            "--meta",
            "m.csv",
            "--id-col",
            "pid",
            "--image-col",
            "path",
            "--evidence",
            "ev.jsonl",
            "--evidence-key",
            "report",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert seen["args"] == (Path("RUN"), Path("IDX"), ["q1.png"])
    assert seen["kwargs"] == {
        "k": 5,
        "show": ["finding", "survival"],
        "grid": Path("g.png"),
        "metadata": Path("m.csv"),
        "id_col": "pid",
        "image_col": "path",
        "evidence": Path("ev.jsonl"),
        "evidence_key": "report",
        "device": "cpu",
        "include_self": False,
    }
    assert "query: q1.png" in result.output and "COVID-19" in result.output
    assert "note: a note" in result.output and "grid: g.png" in result.output


def test_include_self_is_passed_to_the_library(monkeypatch):
    seen = {}

    def fake(*args, **kwargs):
        seen.update(kwargs)
        return SearchReport([_frame("q1.png")])

    monkeypatch.setattr(retrieval_module, "search_images", fake)
    result = runner.invoke(app, ["search", "RUN", "IDX", "q1.png", "--include-self"])
    assert result.exit_code == 0, result.output
    assert seen["include_self"] is True


def test_unreadable_query_is_reported_and_exit_code_is_1(monkeypatch, tmp_path):
    report = SearchReport([_frame("ok.png"), _frame("bad.png", "cannot read image 'bad.png'")])
    monkeypatch.setattr(retrieval_module, "search_images", lambda *a, **k: report)
    result = runner.invoke(
        app, ["search", "RUN", "IDX", "ok.png", "bad.png", "-o", str(tmp_path / "r.csv")]
    )
    assert result.exit_code == 1
    assert "SARS" in result.output  # the readable query was still answered
    assert "error: query 'bad.png' skipped: cannot read image 'bad.png'" in result.output
    written = pd.read_csv(tmp_path / "r.csv")
    assert written.columns[0] == "query" and written["query"].unique().tolist() == ["ok.png"]


def _search_argv(run, index, query, *options: str) -> list[str]:
    """``cxr search`` of one query image with a run and an index, on the CPU."""
    return ["search", str(run), str(index), str(query), "--device", "cpu", *options]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    run = make_run(root / "run")
    write_pngs(root / "img", ["a.png", "b.png", "c.png", "d.png"])
    pd.DataFrame(
        {"file": ["a.png", "b.png", "c.png", "d.png"], "finding": ["x", "y", "x", "y"]}
    ).to_csv(root / "t.csv", index=False)
    embed_images(
        run,
        root / "t.csv",
        root / "emb",
        images_root=root / "img",
        image_col="file",
        progress=False,
    )
    build_index(root / "emb", root / "index", metadata=root / "t.csv", image_col="file")
    return root


def test_end_to_end_table_grid_and_csv(built, tmp_path):
    outputs = ["--grid", str(tmp_path / "g.png"), "-o", str(tmp_path / "r.csv")]
    query = built / "img" / "b.png"
    argv = _search_argv(built / "run", built / "index", query, "--k", "2", *outputs)
    result = runner.invoke(app, [*argv, "--include-self"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"query: {built / 'img' / 'b.png'}"
    assert lines[1].split() == ["rank", "id", "similarity", "finding"]
    assert lines[2].split()[:2] == ["1", "b.png"] and lines[2].split()[-1] == "y"
    assert (tmp_path / "g.png").stat().st_size > 0
    assert len(pd.read_csv(tmp_path / "r.csv")) == 2


def test_query_in_the_gallery_is_left_out_by_default(built, tmp_path):
    query, out = built / "img" / "b.png", str(tmp_path / "r.csv")
    args = _search_argv(built / "run", built / "index", query, "--k", "3", "-o", out)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "r.csv")
    assert "b.png" not in written["id"].tolist()  # the query itself
    assert sorted(written["id"]) == ["a.png", "c.png", "d.png"] and len(written) == 3
    kept = runner.invoke(app, [*args, "--include-self"])
    assert kept.exit_code == 0, kept.output
    assert pd.read_csv(tmp_path / "r.csv")["id"].iloc[0] == "b.png"


def test_index_of_another_run_is_one_line_exit_1(built, tmp_path):
    other = make_run(tmp_path / "other", image_size=64)
    result = runner.invoke(
        app,
        _search_argv(other, built / "index", built / "img" / "a.png"),
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: index") and "config hash" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_index_folder_is_one_line(built, tmp_path):
    result = runner.invoke(
        app,
        _search_argv(built / "run", tmp_path / "none", built / "img" / "a.png"),
    )
    assert result.exit_code == 1 and "does not exist" in result.output


def test_results_fit_100_columns_and_show_missing_as_a_dash():
    from cxrembed.commands.search import format_results

    frame = pd.DataFrame(
        {
            "rank": [1, 2],
            "id": ["a.png", "b.png"],
            "similarity": [0.99, 0.5],
            "finding": ["COVID-19", None],
            "age": [61.0, float("nan")],
            "sentences": [
                "Bilateral patchy opacities in the lower zones. " * 8,
                "No pneumothorax.",
            ],
        }
    )
    frame.attrs["query"] = "q.png"
    text = format_results(SearchReport([frame], [], ["a note"]), notes=False)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "NaN" not in text and "None" not in text and "—" in text
    assert "a note" not in text
    assert text.splitlines()[2].split()[:5] == ["1", "a.png", "0.990", "COVID-19", "61"]
