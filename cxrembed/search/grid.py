"""The search grid of ``cxr search --grid``: the query and its neighbours, ready for a paper.

Every tile is a thumbnail of fixed physical size (:data:`THUMB_INCHES`, 285 px at the default
150 dpi) with the model's heatmap blended in, and a caption below it that is wrapped, never
cut: rank and cosine similarity, the image id shortened to the shortest path tail that is
still unique among the tiles, then the chosen metadata columns (missing values "—"). The
query comes first, framed and captioned in its own colour. A colour bar gives the heatmap's
scale. The layout is computed in inches, so captions, tiles and the colour bar never overlap
whatever the number of caption lines.

Examples
--------
>>> short_ids(["a/x/1.png", "b/x/1.png", "a/y/2.png"])
['a/x/1.png', 'b/x/1.png', '2.png']
>>> caption_lines("COVID-19, ARDS and a long name", width=12)
['COVID-19,', 'ARDS and a', 'long name']
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cxrlabel.figures import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "Tile",
    "grid_figure",
    "short_ids",
    "caption_lines",
    "path_lines",
    "neighbour_caption",
    "THUMB_INCHES",
    "COLUMNS",
]

#: Thumbnail side in inches (at 150 dpi: 285 px).
THUMB_INCHES = 1.9
#: Tiles per grid row.
COLUMNS = 6
QUERY_COLOUR = "#E66100"
_FONT = 7.5  # points
_LINE = _FONT * 1.3 / 72  # inches per caption line
_CHARS = int(THUMB_INCHES * 72 / (_FONT * 0.62))  # monospace characters per caption line
_GAP = 0.14  # between tiles
_MARGIN = 0.15
_TITLE = 0.42
_BAR = 0.12  # colour bar width
_META_LINES = 2  # lines per metadata value (longer values end in an ellipsis)


@dataclass(frozen=True)
class Tile:
    """One image of the grid.

    Attributes
    ----------
    pixels : numpy.ndarray
        ``(H, W)`` gray image in [0, 1].
    rgb : numpy.ndarray or None
        ``(H, W, 3)`` uint8 image with the heatmap blended in; None: the image is missing.
    caption : list of str
        Lines under the tile (already wrapped).
    query : bool
        The query tile (framed in :data:`QUERY_COLOUR`).
    """

    pixels: np.ndarray
    rgb: np.ndarray | None
    caption: list[str]
    query: bool = False


def short_ids(ids: Sequence[str]) -> list[str]:
    """Each id cut to its shortest path tail (``/``-separated parts) unique among ``ids``.

    Ids that are equal stay whole; an id without a path is kept as it is.
    """
    parts = [re.split(r"[\\/]", str(i)) for i in ids]
    depth = [1] * len(ids)
    while True:
        tails = ["/".join(p[-d:]) for p, d in zip(parts, depth, strict=True)]
        clash = [i for i, t in enumerate(tails) if tails.count(t) > 1 and depth[i] < len(parts[i])]
        if not clash:
            return tails
        for i in clash:
            depth[i] += 1


def caption_lines(text: str, width: int = _CHARS, max_lines: int | None = None) -> list[str]:
    """``text`` wrapped to ``width`` characters (long words broken); at most ``max_lines``
    lines when given, the last ending in an ellipsis if text was left out."""
    lines = textwrap.wrap(str(text), width, break_long_words=True, break_on_hyphens=False)
    lines = lines or [""]
    if max_lines is not None and len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1].rstrip() + "…"
    return lines


def path_lines(name: str, width: int = _CHARS) -> list[str]:
    """A path-like id over lines of ``width`` characters, broken after a ``/`` where it can
    be (a part longer than a line is broken inside); nothing is left out.

    Examples
    --------
    >>> path_lines("patient0004/study1/view1_frontal.png", width=20)
    ['patient0004/study1/', 'view1_frontal.png']
    """
    parts = re.findall(r"[^\\/]*[\\/]|[^\\/]+$", str(name)) or [""]
    lines = [""]
    for part in parts:
        while len(part) > width:  # a part longer than a line: break it
            if lines[-1]:
                lines.append("")
            lines[-1], part = part[:width], part[width:]
            lines.append("")
        if len(lines[-1]) + len(part) > width:
            lines.append(part)
        else:
            lines[-1] += part
    return [line for line in lines if line] or [""]


def neighbour_caption(rank: Any, similarity: Any, name: str, metadata: dict[str, Any]) -> list[str]:
    """Caption lines of a neighbour: rank and similarity, its (short) id, its metadata."""
    lines = [f"#{rank}  similarity {float(similarity):.3f}", *path_lines(name)]
    for column, value in metadata.items():
        lines += caption_lines(f"{column}: {_value_text(value)}", max_lines=_META_LINES)
    return lines


def grid_figure(tiles: Sequence[Tile], *, heat_label: str, title: str, cmap: str = "jet") -> Figure:
    """Lay the tiles out in rows of :data:`COLUMNS`, captions below, a colour bar right."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    ncols = min(len(tiles), COLUMNS)
    nrows = math.ceil(len(tiles) / ncols)
    caption = max(len(t.caption) for t in tiles) * _LINE + 0.08
    row = THUMB_INCHES + caption + _GAP
    width = 2 * _MARGIN + ncols * THUMB_INCHES + (ncols - 1) * _GAP + _GAP + _BAR + 0.55
    height = _TITLE + nrows * row + _MARGIN
    fig = new_figure(width, height)
    for t, tile in enumerate(tiles):
        r, c = divmod(t, ncols)
        x = _MARGIN + c * (THUMB_INCHES + _GAP)
        y = height - _TITLE - r * row - THUMB_INCHES  # bottom of the thumbnail
        ax = fig.add_axes((x / width, y / height, THUMB_INCHES / width, THUMB_INCHES / height))
        ax.set_xticks([])
        ax.set_yticks([])
        if tile.rgb is None:
            ax.imshow(np.full(tile.pixels.shape, 0.85), cmap="gray", vmin=0, vmax=1)
            ax.text(
                0.5,
                0.5,
                "image\nunavailable",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=_FONT,
            )
        else:
            ax.imshow(tile.rgb, interpolation="bilinear")
        for spine in ax.spines.values():
            spine.set_visible(tile.query)
            spine.set_color(QUERY_COLOUR)
            spine.set_linewidth(3)
        ax.text(
            0.0,
            -0.04,
            "\n".join(tile.caption),
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=_FONT,
            family="monospace",
            linespacing=1.3,
            color=QUERY_COLOUR if tile.query else "black",
            weight="bold" if tile.query else "normal",
        )
    bar_x = _MARGIN + ncols * THUMB_INCHES + (ncols - 1) * _GAP + _GAP
    bar_y = height - _TITLE - THUMB_INCHES
    cax = fig.add_axes((bar_x / width, bar_y / height, _BAR / width, THUMB_INCHES / height))
    bar = fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=cmap), cax=cax)
    bar.set_ticks([0, 0.5, 1])
    bar.ax.tick_params(labelsize=_FONT)
    bar.set_label(heat_label, fontsize=_FONT)
    fig.text(
        _MARGIN / width, 1 - 0.1 / height, title, va="top", ha="left", fontsize=9.5, weight="bold"
    )
    return fig


def _value_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    try:
        import pandas as pd

        if pd.isna(value):
            return "—"
    except (TypeError, ValueError):
        pass
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).strip() or "—"
