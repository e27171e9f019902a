"""``cxr embed``: options reach the library unchanged; source choice, summary, exit codes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import cxrembed.search.gallery as gallery_module
from cxrembed.commands.embed import format_embed_summary
from cxrembed.data.table import excluded_frame, exclusion
from cxrembed.inference.embed import EmbedSummary
from cxrembed.search.gallery import IndexSummary
from cxrlabel.cli import app

from .._runs import make_run, write_pngs

runner = CliRunner()


def _summary(out: Path) -> EmbedSummary:
    excluded = excluded_frame([exclusion(3, "x", "x.png", "corrupt", "bad bytes")])
    return EmbedSummary(out, "table", 4, 2, 1, excluded, total=3, config_hash="abc", seconds=2.0)


def test_options_are_passed_to_the_library(tmp_path, stand_in):
    index = IndexSummary(tmp_path / "i", 3, "exact", "abc", ["finding"], ["q"])
    seen = stand_in(gallery_module, "embed_and_index", (_summary(tmp_path / "e"), index))
    result = runner.invoke(
        app,
        [
            "embed",
            "RUN",
            "--labels",
            "t.csv",
            "--images",
            "imgs",
            "--image-col",
            "file",
            "--id-col",
            "uid",
            "-o",
            "OUT",
            "--batch-size",
            "16",
            "--jobs",
            "2",
            "--no-resume",
            "--shard-size",
            "500",
            "--device",
            "cpu",
            "--index",
            "IDX",
            "--meta",
            "m.csv",
            "--meta-id-col",
            "pid",
            "--meta-image-col",
            "path",
            "--show",
            "finding, age",
            "--index-kind",
            "exact",
            "--max-memory",
            "4GB",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert seen["args"] == (Path("RUN"), Path("t.csv"), Path("OUT"))
    assert seen["kwargs"] == {
        "kind": "table",
        "images_root": Path("imgs"),
        "image_col": "file",
        "id_col": "uid",
        "batch_size": 16,
        "num_workers": 2,
        "resume": False,
        "shard_size": 500,
        "device": "cpu",
        "progress": False,
        "index": Path("IDX"),
        "metadata": Path("m.csv"),
        "meta_id_col": "pid",
        "meta_image_col": "path",
        "show_cols": ["finding", "age"],
        "index_kind": "exact",
        "max_memory": "4GB",
    }
    assert "embedded now: 2  already done: 1  excluded: 1" in result.output
    assert "corrupt: 1" in result.output and "1 embeddings have no metadata row" in result.output


@pytest.mark.parametrize(
    ("old", "new", "key", "value"),
    [
        (["--workers", "2"], ["--jobs", "2"], "num_workers", 2),
        (["--workers", "0"], ["--jobs", "1"], "num_workers", 0),
        (["--show-cols", "a,b"], ["--show", "a,b"], "show_cols", ["a", "b"]),
    ],
)
def test_renamed_options_still_work_and_warn(tmp_path, monkeypatch, old, new, key, value):
    seen = {}

    def fake(*args, **kwargs):
        seen.update(kwargs)
        return _summary(tmp_path / "e"), None

    monkeypatch.setattr(gallery_module, "embed_and_index", fake)
    base = ["embed", "RUN", "--images", "imgs", "-o", "OUT", "-q"]
    result = runner.invoke(app, [*base, *old])
    assert result.exit_code == 0, result.output
    assert seen[key] == value
    assert f"warning: {old[0]} is deprecated; use {new[0]}" in result.stderr
    renamed = runner.invoke(app, [*base, *new])
    assert renamed.exit_code == 0 and seen[key] == value and "deprecated" not in renamed.stderr
    both = runner.invoke(app, [*base, *old, *new])
    assert both.exit_code == 2 and "not both" in both.output


def test_jobs_zero_means_one_worker_per_core(tmp_path, monkeypatch):
    import os

    seen = {}
    monkeypatch.setattr(
        gallery_module,
        "embed_and_index",
        lambda *a, **k: (seen.update(k), (_summary(tmp_path), None))[1],
    )
    result = runner.invoke(app, ["embed", "RUN", "--images", "i", "-o", "O", "-j", "0"])
    assert result.exit_code == 0, result.output
    assert seen["num_workers"] == (os.cpu_count() if os.cpu_count() != 1 else 0)


@pytest.mark.parametrize(
    ("args", "kind", "root"),
    [
        (["--images", "imgs"], "images", None),
        (["--cache", "c"], "cache", None),
    ],
)
def test_folder_and_cache_sources(tmp_path, monkeypatch, args, kind, root):
    seen = {}

    def fake(*a, **kwargs):
        seen["args"], seen["kwargs"] = a, kwargs
        return _summary(tmp_path), None

    monkeypatch.setattr(gallery_module, "embed_and_index", fake)
    result = runner.invoke(app, ["embed", "RUN", "-o", "OUT", *args])
    assert result.exit_code == 0, result.output
    assert seen["args"][1] == Path(args[1])
    assert seen["kwargs"]["kind"] == kind and seen["kwargs"]["images_root"] is root
    assert "index:" not in result.output


@pytest.mark.parametrize(
    "args", [[], ["--images", "a", "--cache", "b"], ["--labels", "t.csv", "--cache", "b"]]
)
def test_source_must_be_one_of_three(args):
    result = runner.invoke(app, ["embed", "RUN", "-o", "OUT", *args])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1


def _embed_and_index_argv(run: Path, tmp_path: Path) -> list[str]:
    """``cxr embed`` of ``tmp_path``'s t.csv (``file`` column, images in img/) into emb/,
    indexed into index/, on the CPU."""
    where = ["--labels", str(tmp_path / "t.csv"), "--images", str(tmp_path / "img")]
    into = ["-o", str(tmp_path / "emb"), "--index", str(tmp_path / "index")]
    return ["embed", str(run), *where, "--image-col", "file", *into, "--device", "cpu", "-q"]


def test_end_to_end_with_index_then_resume(tmp_path):
    run = make_run(tmp_path / "run")
    write_pngs(tmp_path / "img", ["a.png", "b.png", "c.png"])
    pd.DataFrame(
        {"file": ["a.png", "b.png", "c.png", "d.png"], "finding": ["x", "y", "x", "y"]}
    ).to_csv(tmp_path / "t.csv", index=False)
    args = _embed_and_index_argv(run, tmp_path)
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "images: 4  embedded now: 3  already done: 0  excluded: 1" in first.output
    assert "missing: 1" in first.output and "columns: finding" in first.output
    assert (tmp_path / "index" / "index.json").is_file()
    second = runner.invoke(app, args)
    assert "embedded now: 0  already done: 3" in second.output


def _embed_without_a_run(tmp_path, *options):
    """``cxr embed`` of one real image into e/ with a run folder that does not exist."""
    write_pngs(tmp_path / "img", ["a.png"])
    where = ["--images", str(tmp_path / "img"), "-o", str(tmp_path / "e")]
    return runner.invoke(app, ["embed", str(tmp_path / "norun"), *where, *options])


def test_bad_run_folder_is_one_line(tmp_path):
    result = _embed_without_a_run(tmp_path)
    assert result.exit_code == 1
    assert "not a run folder" in result.output and "Traceback" not in result.output


def test_summary_text_without_index():
    text = format_embed_summary(_summary(Path("e")))
    assert "speed: 2.0 s (1.0 images/s)" in text and "index" not in text


@pytest.fixture()
def no_embedding(monkeypatch):
    """Fail if anything is embedded: the checks must come first."""
    import cxrembed.inference.embed as embed_module

    def never(*args, **kwargs):
        raise AssertionError("images were embedded before the option check")

    monkeypatch.setattr(embed_module, "embed_images", never)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--show", "finding,age"], "no column(s) ['age']"),
        (
            ["--meta", "META", "--meta-id-col", "uid"],
            "'uid' not found (meta_id_col / --meta-id-col)",
        ),
        (
            ["--meta", "META", "--meta-image-col", "path", "--show", "survival"],
            "Fix the names given to show_cols / --show",
        ),
        (["--meta", "META"], "name the id column of the metadata table"),
        (["--image-col", "fille"], "has no column 'fille' (did you mean 'file'?) (--image-col)"),
    ],
)
def test_columns_are_checked_before_embedding(tmp_path, no_embedding, extra, message):
    pd.DataFrame({"file": ["a.png"], "finding": ["x"]}).to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({"path": ["a.png"], "finding": ["x"]}).to_csv(tmp_path / "m.csv", index=False)
    extra = [str(tmp_path / "m.csv") if e == "META" else e for e in extra]
    args = [
        "embed",
        "RUN",
        "--labels",
        str(tmp_path / "t.csv"),
        "--images",
        str(tmp_path),
        "-o",
        str(tmp_path / "e"),
        "--index",
        str(tmp_path / "i"),
    ]
    if "--image-col" not in extra:
        args += ["--image-col", "file"]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 1, result.output
    assert message in result.output and result.output.count("\n") == 1


def test_meta_without_key_columns_joins_on_the_tables_image_column(tmp_path):
    """The README's `--meta covid_metadata.csv` (the labels table again) works as written."""
    run = make_run(tmp_path / "run")
    write_pngs(tmp_path / "img", ["a.png", "b.png"])
    pd.DataFrame({"file": ["a.png", "b.png"], "finding": ["x", "y"], "age": [60, None]}).to_csv(
        tmp_path / "t.csv", index=False
    )
    meta = ["--meta", str(tmp_path / "t.csv"), "--show", "finding,age"]
    result = runner.invoke(app, [*_embed_and_index_argv(run, tmp_path), *meta])
    assert result.exit_code == 0, result.output
    assert "columns: finding, age" in result.output and "no metadata row" not in result.output


def test_meta_needs_an_index():
    result = runner.invoke(app, ["embed", "RUN", "--images", "i", "-o", "O", "--meta", "m.csv"])
    assert result.exit_code == 1 and "give --index DIR too" in result.output


def test_bad_max_memory_is_one_line_before_any_work(tmp_path):
    result = _embed_without_a_run(
        tmp_path, "--index", str(tmp_path / "i"), "--max-memory", "4 gigs"
    )
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "max_memory (--max-memory) must be a size such as 4GB" in result.output
    assert not (tmp_path / "e").exists()  # checked before the run was even opened
