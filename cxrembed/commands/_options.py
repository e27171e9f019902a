"""Options shared by the image commands (on top of :mod:`cxrlabel.commands.options`, the
vocabulary of every ``cxr`` command), and the comma-separated value parsers (re-exported)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cxrlabel.commands.options import parse_ints, path_option, split_names, text_option
from cxrlabel.vocab import Options

__all__ = [
    "split_names",
    "parse_ints",
    "LabelCol",
    "LabelCols",
    "LabelSchema",
    "Cache",
    "Checkpoint",
    "CHECKPOINT",
    "AllowOutsideImages",
    "non_default",
    "Missing",
    "MISSING",
]

LabelCol = text_option("--label-col", "One categorical label column (one-hot), e.g. finding.")
LabelCols = text_option("--label-cols", "Comma-separated label columns holding 1/0/-1/blank.")
LabelSchema = text_option(
    "--schema", "Label schema whose columns `cxr label` wrote (chexpert, chestxray14 or a YAML)."
)
Cache = path_option("--cache", "Image cache folder made by `cxr prepare` (faster).")
AllowOutsideImages = Annotated[
    bool,
    typer.Option(
        "--allow-outside-images",
        help="Read image paths of the table that leave --images (absolute, or with ../); "
        "by default they are excluded and listed in excluded.csv.",
    ),
]
#: Which weights of a run embed images (``--checkpoint``).
CHECKPOINT = Options(("best", "last"))
Checkpoint = Annotated[
    str,
    typer.Option(
        "--checkpoint",
        help="Weights of the run: best (model.safetensors) or last (the latest checkpoint, "
        "e.g. while the first epoch runs).",
    ),
]
#: What happens to table rows without an embedding (``--missing``).
MISSING = Options(("exclude", "error"))
Missing = Annotated[
    str,
    typer.Option(
        "--missing",
        help="Table rows without an embedding: exclude (listed in excluded.csv) or error.",
    ),
]


#: Defaults of the image commands' newer options, left out of library calls when unchanged.
_DEFAULTS = {"checkpoint": "best", "allow_outside_images": False}


def non_default(**options: Any) -> dict[str, Any]:
    """The newer options whose values differ from their defaults (keyword arguments to pass on).

    Examples
    --------
    >>> non_default(checkpoint="best"), non_default(checkpoint="last")
    ({}, {'checkpoint': 'last'})
    """
    return {name: value for name, value in options.items() if value != _DEFAULTS[name]}
