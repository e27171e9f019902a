"""``--format`` and ``--dpi`` reach the image commands' libraries as one FigureStyle, and only
when set (the default call is unchanged)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

import cxrembed.evaluation.files as evaluate_module
import cxrembed.search.retriever as retrieval_module
from cxrembed.evaluation.evaluate import evaluate_embeddings
from cxrembed.evaluation.files import EvaluationRun
from cxrembed.search.retriever import SearchReport
from cxrlabel.cli import app
from cxrlabel.figures import FigureStyle

runner = CliRunner()


def _search_report() -> SearchReport:
    frame = pd.DataFrame({"rank": [1], "id": ["a"], "similarity": [0.9]})
    frame.attrs["query"] = "q.png"
    return SearchReport([frame])


def test_search_passes_the_figure_style_when_set(stand_in):
    seen = stand_in(retrieval_module, "search_images", _search_report())
    result = runner.invoke(
        app, ["search", "RUN", "IDX", "q.png", "--grid", "g", "--format", "pdf", "--dpi", "300"]
    )
    assert result.exit_code == 0, result.output
    assert seen["kwargs"]["figures"] == FigureStyle("pdf", 300)
    seen.clear()
    assert runner.invoke(app, ["search", "RUN", "IDX", "q.png"]).exit_code == 0
    assert "figures" not in seen["kwargs"]


def test_evaluate_passes_the_figure_style_when_set(stand_in, tmp_path):
    result = evaluate_embeddings(
        np.eye(4, 3) + 0.1, ["a", "a", "b", "b"], ks=[1], diagnosis_k=1, map_method=None
    )
    seen = stand_in(evaluate_module, "evaluate_files", EvaluationRun(result, {}))
    pd.DataFrame({"id": ["x"], "finding": ["a"]}).to_csv(tmp_path / "l.csv", index=False)
    labels = str(tmp_path / "l.csv")
    args = ["evaluate", "E", labels, "-o", str(tmp_path / "o"), "--label-col", "finding"]
    out = runner.invoke(app, [*args, "--figure-format", "SVG", "--dpi", "72"])
    assert out.exit_code == 0, out.output
    assert seen["kwargs"]["figures"] == FigureStyle("svg", 72)
    seen.clear()
    assert runner.invoke(app, args).exit_code == 0 and "figures" not in seen["kwargs"]


def test_a_wrong_format_is_one_line_naming_the_choices(tmp_path):
    result = runner.invoke(app, ["search", "RUN", "IDX", "q.png", "--format", "tiff"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: --format") and "png" in result.stderr


def test_train_passes_the_figure_style_when_set(stand_in, tmp_path):
    import cxrembed.train.trainer as trainer_module
    from cxrembed.train.config import RunConfig
    from cxrembed.train.loop import TrainResult

    row = {
        "train_loss": 0.5,
        "val_mean_average_precision_at_r": 0.25,
        "val_precision_at_1": 0.5,
        "val_precision_at_5": 0.5,
        "train_images_per_second": 12.0,
    }
    done = TrainResult(tmp_path / "run", "completed", 1, 2, 1, 0.25, [row], RunConfig())
    seen = stand_in(trainer_module, "train", done)
    pd.DataFrame({"file": ["a.png"], "finding": ["x"]}).to_csv(tmp_path / "t.csv", index=False)
    files = ["--labels", str(tmp_path / "t.csv"), "-o", str(tmp_path / "run")]
    args = ["train", *files, "-q", "--cache", str(tmp_path / "cache")]
    result = runner.invoke(app, [*args, "--format", "svg"])
    assert result.exit_code == 0, result.output
    assert seen["kwargs"]["figures"] == FigureStyle("svg")
    seen.clear()
    assert runner.invoke(app, args).exit_code == 0 and "figures" not in seen["kwargs"]


def test_training_curves_in_each_format(tmp_path):
    from cxrembed.train.loop import curves_path, write_curves
    from tests._figures import file_format, png_size

    rows = [
        {
            "epoch": e,
            "train_loss": 1 / e,
            "val_mean_average_precision_at_r": 0.1 * e,
            "val_precision_at_1": 0.2 * e,
            "best": e == 2,
        }
        for e in (1, 2, 3)
    ]
    assert curves_path(tmp_path).name == "training_curves.png"
    for kind in ("png", "svg", "pdf"):
        style = FigureStyle(kind, dpi=100)
        path = write_curves(curves_path(tmp_path, style), rows, style)
        assert path.name == f"training_curves.{kind}" and file_format(path) == kind
    assert png_size(tmp_path / "training_curves.png") == (900, 340)
