"""The search grid: thumbnails of at least 256 px, the query marked, a colour bar, captions
(rank, similarity, unique short ids, metadata) wrapped and never cut or overlapping, and
PNG / SVG / PDF at any dpi."""

from __future__ import annotations

import numpy as np
import pytest

from cxrembed.search.grid import (
    QUERY_COLOUR,
    Tile,
    grid_figure,
    neighbour_caption,
    path_lines,
    short_ids,
)
from cxrembed.search.retriever import Retriever, search_images
from cxrlabel.errors import InputError
from cxrlabel.figures import DEFAULT_DPI, FigureStyle
from tests._figures import file_format, inside, overlapping, png_size, renderer, text_boxes

from .test_retrieval import _query, gallery  # noqa: F401  (the fixture)

LONG = "a_really_long_file_name_that_used_to_be_cut_in_the_old_grid_0001.png"


def _tiles(n: int) -> list[Tile]:
    rng = np.random.default_rng(0)
    ids = short_ids([f"p{i % 3}/study{i // 3}/view1_frontal.png" for i in range(n - 1)])
    ids[-1] = LONG
    tiles = [
        Tile(
            rng.random((32, 32)),
            np.zeros((32, 32, 3), np.uint8),
            ["QUERY", *path_lines("images/p0/query.png")],
            query=True,
        )
    ]
    for i, name in enumerate(ids):
        meta = {
            "finding": "COVID-19, ARDS, and a much longer free-text finding " * (i % 2 + 1),
            "age": float("nan") if i == 2 else 40 + i,
        }
        tiles.append(
            Tile(
                rng.random((32, 32)),
                None if i == 4 else np.zeros((32, 32, 3), np.uint8),
                neighbour_caption(i + 1, 0.9 - i / 100, name, meta),
            )
        )
    return tiles


def test_thumbnails_are_at_least_256_px_and_captions_do_not_overlap():
    figure = grid_figure(
        _tiles(11),
        heat_label="attention (1 = each image's peak)",
        title="Query and its 10 nearest neighbours",
    )
    figure.set_dpi(DEFAULT_DPI)
    r = renderer(figure)
    images = [ax for ax in figure.axes if ax.images]
    assert len(images) == 11
    for ax in images:
        box = ax.get_window_extent(r)
        assert box.width >= 256 and box.height >= 256
    texts = [t for ax in images for t in ax.texts] + list(figure.texts)
    boxes = text_boxes(figure, texts)
    assert overlapping(boxes) == []
    assert inside(figure, boxes) == []
    tiles = [("tile", ax.get_window_extent(r)) for ax in figure.axes]
    captions = [b for b in boxes if "image\nunavailable" not in b[0]]
    assert overlapping(captions, tiles, pad=0.5) == []


def test_the_query_is_framed_and_a_colour_bar_gives_the_scale():
    figure = grid_figure(_tiles(4), heat_label="attention (1 = each image's peak)", title="t")
    query, *others = [ax for ax in figure.axes if ax.images]
    assert all(s.get_visible() for s in query.spines.values())
    assert query.spines["top"].get_edgecolor()[:3] == pytest.approx(
        tuple(int(QUERY_COLOUR[i : i + 2], 16) / 255 for i in (1, 3, 5))
    )
    assert not any(s.get_visible() for ax in others for s in ax.spines.values())
    assert query.texts[0].get_text().startswith("QUERY")
    bars = [ax for ax in figure.axes if ax.get_ylabel().startswith("attention")]
    assert len(bars) == 1 and bars[0].get_ylim() == (0.0, 1.0)


def test_captions_keep_whole_names_and_show_rank_similarity_and_metadata():
    tiles = _tiles(6)
    text = ["".join(t.caption[1:]) for t in tiles]
    assert LONG in "".join(tiles[-1].caption)  # wrapped over lines, not cut
    assert tiles[1].caption[0] == "#1  similarity 0.900"
    assert any(line == "age: —" for line in tiles[3].caption)  # missing value
    assert all(len(line) <= 29 for t in tiles for line in t.caption)
    assert "p0/study0/view1_frontal.png" in text[1]
    assert "…" in "".join(tiles[2].caption)  # a long metadata value ends in an ellipsis


def test_short_ids_are_the_shortest_unique_tails():
    assert short_ids(["a/x/1.png", "b/x/1.png", "c/2.png", "2.png", "k"]) == [
        "a/x/1.png",
        "b/x/1.png",
        "c/2.png",
        "2.png",
        "k",
    ]
    assert short_ids(["d/a/img.png", "d/b/img.png", "d/b/other.png"]) == [
        "a/img.png",
        "b/img.png",
        "other.png",
    ]


@pytest.mark.parametrize("kind", ["png", "svg", "pdf"])
def test_grid_formats_from_the_style_or_the_name(gallery, tmp_path, kind):  # noqa: F811
    report = search_images(
        gallery / "run",
        gallery / "index",
        [str(_query(gallery, 0))],
        k=3,
        grid=tmp_path / "g",
        device="cpu",
        figures=FigureStyle(kind),
    )
    assert [p.name for p in report.grids] == [f"g.{kind}"]
    assert file_format(report.grids[0]) == kind
    report = search_images(
        gallery / "run",
        gallery / "index",
        [str(_query(gallery, 0))],
        k=3,
        grid=tmp_path / f"h.{kind}",
        device="cpu",
    )
    assert file_format(report.grids[0]) == kind


def test_grid_dpi_scales_the_png(gallery, tmp_path):  # noqa: F811
    retriever = Retriever(gallery / "run", gallery / "index", show=["finding"], device="cpu")
    (frame,) = retriever.search(_query(gallery, 1), k=4)
    low = retriever.grid_png(
        tmp_path / "a.png", _query(gallery, 1), frame, style=FigureStyle(dpi=100)
    )
    high = retriever.grid_png(
        tmp_path / "b.png", _query(gallery, 1), frame, style=FigureStyle(dpi=300)
    )
    (w1, h1), (w2, h2) = png_size(low), png_size(high)
    assert abs(w2 - 3 * w1) <= 2 and abs(h2 - 3 * h1) <= 2
    assert png_size(retriever.grid_png(tmp_path / "c.png", _query(gallery, 1), frame))[0] >= 5 * 256


def test_a_bad_grid_name_is_refused_before_loading(tmp_path):
    with pytest.raises(InputError, match=r"\.jpg.*PNG, SVG or PDF"):
        search_images(tmp_path / "no-run", tmp_path / "no-index", ["q.png"], grid="g.jpg")
    with pytest.raises(InputError, match="names a .png file but --format is svg"):
        search_images(
            tmp_path / "no-run",
            tmp_path / "no-index",
            ["q.png"],
            grid="g.png",
            figures=FigureStyle("svg"),
        )
