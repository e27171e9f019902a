"""Figure files: one format and resolution for every figure a ``cxr`` command draws.

``cxr validate`` (``f1``), ``cxr search --grid``, ``cxr evaluate`` (``embedding_map``,
``roc``, ``pr``) and ``cxr train`` (``training_curves``) all take ``--format png|svg|pdf``
and ``--dpi`` (:mod:`cxrlabel.commands.options`) and pass a :class:`FigureStyle` to the
drawing code, which builds a matplotlib :class:`~matplotlib.figure.Figure` with
:func:`new_figure` (the object API on the Agg canvas: no pyplot, no global state, no
display) and writes it with :func:`save_figure` (atomically, reproducibly: SVG and PDF
carry no creation date; text stays editable text in SVG and TrueType in PDF).

matplotlib is imported only when a figure is drawn (it is the ``plots`` extra).

Examples
--------
>>> style = FigureStyle("svg", dpi=200)
>>> style.path("out", "f1").as_posix(), style.suffix
('out/f1.svg', '.svg')
>>> FigureStyle().target("grid").name, FigureStyle().target("grid.pdf").name
('grid.png', 'grid.pdf')
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cxrlabel.atomic import atomic_path
from cxrlabel.errors import InputError
from cxrlabel.vocab import Interval, Options

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FIGURE_FORMATS",
    "DEFAULT_DPI",
    "FigureStyle",
    "new_figure",
    "figure_heading",
    "save_figure",
]

#: File formats of every figure (``--format``).
FIGURE_FORMATS = Options(("png", "svg", "pdf"))
#: Dots per inch of every figure unless ``--dpi`` says otherwise (print quality at the
#: figures' physical size; raster parts of SVG and PDF use it too).
DEFAULT_DPI = 150
_DPI = Interval(int, 20, 1200)
# No creation date in vector files, so the same figure gives the same bytes.
_METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": {}}
# Text stays text in SVG (editable, searchable) and PDF embeds TrueType fonts (not Type 3),
# as journals ask.
_EDITABLE_TEXT = {"svg.fonttype": "none", "pdf.fonttype": 42}


@dataclass(frozen=True)
class FigureStyle:
    """Format and resolution of the figures of one command.

    Parameters
    ----------
    format : {"png", "svg", "pdf"} or None
        None: taken from the file name where the user names the file (``--grid x.svg``),
        else PNG.
    dpi : int
        Dots per inch (20 to 1200): the PNG's pixels per inch of figure.
    """

    format: str | None = None
    dpi: int = DEFAULT_DPI

    def __post_init__(self) -> None:
        if self.format is not None:
            object.__setattr__(self, "format", FIGURE_FORMATS.check(self.format, "--format"))
        _DPI.check(self.dpi, "--dpi")

    @property
    def kind(self) -> str:
        """The format written when the file name does not choose one (``png`` by default)."""
        return self.format or "png"

    @property
    def suffix(self) -> str:
        return f".{self.kind}"

    def path(self, folder: str | os.PathLike[str], stem: str) -> Path:
        """``folder/stem.<format>``: a figure whose name the command fixes (``f1``)."""
        return Path(folder) / f"{stem}{self.suffix}"

    def target(self, path: str | os.PathLike[str], option: str = "--grid") -> Path:
        """A figure file named by the user: its suffix chooses the format, or gets one.

        A ``.png``/``.svg``/``.pdf`` name must agree with ``format`` when both are given;
        a name without a suffix gets ``format``'s; any other suffix is an error.
        """
        path = Path(path)
        suffix = path.suffix.lower().lstrip(".")
        if not suffix:
            return path.with_name(path.name + self.suffix)
        if suffix not in FIGURE_FORMATS.values:
            raise InputError(
                f"{option} {str(path)!r}: figures are written as PNG, SVG or PDF; use a .png, "
                ".svg or .pdf name (or none, with --format)"
            )
        if self.format is not None and suffix != self.format:
            raise InputError(
                f"{option} {str(path)!r} names a .{suffix} file but --format is {self.format}; "
                f"name it {path.with_suffix(self.suffix).name} or leave out --format"
            )
        return path

    def of(self, path: str | os.PathLike[str]) -> FigureStyle:
        """This style with the format of ``path``'s suffix (see :meth:`target`)."""
        target = self.target(path)
        return FigureStyle(target.suffix.lstrip(".").lower(), self.dpi)


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure of ``width`` x ``height`` inches on the Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def figure_heading(
    figure: Figure,
    title: str,
    subtitle: Sequence[str] = (),
    *,
    subtitle_top: float = 0.36,
) -> None:
    """The bold title and the grey subtitle lines at the top left of a cxr figure.

    Positions are in inches from the top-left corner (the subtitle's top ``subtitle_top``
    down), so the heading sits alike on figures of any size.
    """
    width, height = figure.get_size_inches()
    figure.text(0.12 / width, 1 - 0.1 / height, title, va="top", fontsize=10, weight="bold")
    if subtitle:
        figure.text(
            0.12 / width,
            1 - subtitle_top / height,
            "\n".join(subtitle),
            va="top",
            fontsize=8,
            color="0.25",
            linespacing=1.3,
        )


def save_figure(
    figure: Figure, path: str | os.PathLike[str], style: FigureStyle | None = None
) -> Path:
    """Write ``figure`` to ``path`` atomically in ``style``'s format (from the suffix when
    the style leaves it open) and resolution; return the path."""
    import matplotlib

    style = (style or FigureStyle()).of(path)
    path = Path(path)
    with matplotlib.rc_context(_EDITABLE_TEXT), atomic_path(path) as tmp:
        figure.savefig(tmp, format=style.kind, dpi=style.dpi, metadata=_METADATA[style.kind])
    return path
