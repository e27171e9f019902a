"""The F1 figure of ``cxr validate``: no label on a whisker, n per row, the uncertain policy in
the title, PNG/SVG/PDF and dpi."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cxrlabel.errors import InputError
from cxrlabel.figures import FigureStyle
from cxrlabel.validation.labels import validate
from tests._figures import file_format, inside, overlapping, png_size, renderer, text_boxes

pytest.importorskip("matplotlib")

from cxrlabel.validation.plots import f1_figure  # noqa: E402

NAMES = ["No Finding", "Enlarged Cardiomediastinum", "Edema", "Pleural Other", "Fracture"]
# F1 and intervals reaching 1.0 and 0.0 (where labels used to sit on the whiskers)
F1 = [0.99, 0.62, 1.0, math.nan, 0.05]
LO = [0.91, 0.40, 0.97, math.nan, 0.0]
HI = [1.0, 0.81, 1.0, math.nan, 0.21]


def _whisker_boxes(figure):
    """Display boxes of every whisker segment and cap of the error bars, and of the bars."""
    r = renderer(figure)
    ax = figure.axes[0]
    boxes = []
    for collection in ax.collections:
        for path in collection.get_paths():
            verts = ax.transData.transform(path.vertices)
            x0, y0 = verts.min(axis=0)
            x1, y1 = verts.max(axis=0)
            boxes.append(("whisker", _Box(x0, y0, x1, y1)))
    boxes += [("cap", line.get_window_extent(r)) for line in ax.lines]
    boxes += [("bar", bar.get_window_extent(r)) for bar in ax.patches]
    return boxes


class _Box:
    def __init__(self, x0, y0, x1, y1):
        self.x0, self.y0, self.x1, self.y1 = x0, y0 - 1, x1, y1 + 1


def _all_texts(figure):
    ax = figure.axes[0]
    return [*figure.texts, *ax.texts, *ax.get_yticklabels(), *ax.get_xticklabels(), ax.xaxis.label]


def test_no_text_touches_a_whisker_or_another_text_or_leaves_the_figure():
    figure = f1_figure(
        NAMES,
        F1,
        LO,
        HI,
        support=[40, 12, 3, 0, 7],
        n=[300] * 5,
        title="F1 per observation",
        subtitle="positive-only gold, 300 reports; "
        "uncertain (-1) counted as negative; 95% CI: 1,000 bootstrap resamples "
        "of reports, a subtitle long enough to wrap onto a second line",
    )
    boxes = text_boxes(figure, _all_texts(figure))
    whiskers = _whisker_boxes(figure)
    assert len(whiskers) >= 4 * 4  # 4 defined rows: a bar, a whisker and two caps each
    assert overlapping(boxes, whiskers) == []
    assert overlapping(boxes) == []
    assert inside(figure, boxes) == []


def test_each_row_shows_its_value_interval_and_counts():
    figure = f1_figure(NAMES, F1, LO, HI, support=[40, 12, 3, 0, 7], n=[300, 290, 300, 300, 280])
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert "0.99 [0.91, 1.00]" in texts and "undefined" in texts
    assert ["40 / 300", "12 / 290", "3 / 300", "0 / 300", "7 / 280"] == [
        t for t in texts if " / " in t and t[0].isdigit()
    ]
    assert "gold+ / n" in texts


def _tables(tmp_path, uncertain=-1):
    pred = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(8)],
            "Edema": [1, 1, uncertain, 0, None, 1, 0, None],
            "Pneumonia": [1, None, 0, 1, -1, None, 1, 0],
        }
    )
    gold = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(8)],
            "Edema": [1, 1, 1, 0, 0, 1, 0, 1],
            "Pneumonia": [1, 0, 0, 1, 1, 0, 0, 0],
        }
    )
    return pred, gold


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        ("negative", "uncertain (-1) counted as negative"),
        ("positive", "uncertain (-1) counted as positive"),
        ("ignore", "uncertain (-1) left out (ignore)"),
    ],
)
def test_the_title_names_the_uncertain_policy(tmp_path, policy, words):
    pred, gold = _tables(tmp_path)
    validate(pred, gold, tmp_path, bootstrap=20, uncertain_as=policy, figures=FigureStyle("svg"))
    svg = (tmp_path / "f1.svg").read_text()
    assert words in svg and "positive-only gold, 8 reports" in svg
    assert "20 bootstrap resamples" in svg
    assert not (tmp_path / "f1.png").exists()


@pytest.mark.parametrize("kind", ["png", "svg", "pdf"])
def test_each_format_is_written_as_itself(tmp_path, kind):
    pred, gold = _tables(tmp_path)
    validate(pred, gold, tmp_path, bootstrap=0, figures=FigureStyle(kind))
    assert file_format(tmp_path / f"f1.{kind}") == kind
    assert [p.name for p in tmp_path.glob("f1.*")] == [f"f1.{kind}"]


def test_dpi_sets_the_png_pixels(tmp_path):
    pred, gold = _tables(tmp_path)
    validate(pred, gold, tmp_path / "a", bootstrap=0, figures=FigureStyle(dpi=100))
    validate(pred, gold, tmp_path / "b", bootstrap=0, figures=FigureStyle(dpi=200))
    (w1, h1), (w2, h2) = png_size(tmp_path / "a" / "f1.png"), png_size(tmp_path / "b" / "f1.png")
    assert abs(w2 - 2 * w1) <= 1 and abs(h2 - 2 * h1) <= 1
    assert png_size(tmp_path / "a" / "f1.png")[0] >= 600  # 6 inches at least


def test_bad_format_or_dpi_is_refused():
    with pytest.raises(InputError, match="--format"):
        FigureStyle("jpg")
    with pytest.raises(InputError, match="--dpi"):
        FigureStyle(dpi=5)
