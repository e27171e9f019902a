"""Options shared by the image commands (on top of :mod:`cxrlabel.commands.options`, the
vocabulary of every ``cxr`` command), and the comma-separated value parsers (re-exported)."""

from __future__ import annotations

from typing import Annotated

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
    "Missing",
    "MISSING",
]

LabelCol = text_option("--label-col", "One categorical label column (one-hot), e.g. finding.")
LabelCols = text_option("--label-cols", "Comma-separated label columns holding 1/0/-1/blank.")
LabelSchema = text_option(
    "--schema", "Label schema whose columns `cxr label` wrote (chexpert, chestxray14 or a YAML)."
)
Cache = path_option("--cache", "Image cache folder made by `cxr prepare` (faster).")
#: What happens to table rows without an embedding (``--missing``).
MISSING = Options(("exclude", "error"))
Missing = Annotated[
    str,
    typer.Option(
        "--missing",
        help="Table rows without an embedding: exclude (listed in excluded.csv) or error.",
    ),
]
