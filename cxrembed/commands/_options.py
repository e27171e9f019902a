"""Options shared by the image commands (on top of :mod:`cxrlabel.commands.options`, the
vocabulary of every ``cxr`` command), and the comma-separated value parsers (re-exported)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxrlabel.commands.options import (
    IdCol,
    argument,
    option,
    parse_ints,
    path_option,
    split_names,
    text_option,
)
from cxrlabel.vocab import Options

__all__ = [
    "Run",
    "Embeddings",
    "Ids",
    "split_names",
    "parse_ints",
    "LabelCol",
    "LabelCols",
    "LabelSchema",
    "Cache",
    "ImageTableIdCol",
    "Checkpoint",
    "CHECKPOINT",
    "AllowOutsideImages",
    "non_default",
    "Missing",
    "MISSING",
]

Run = argument(Path, help="Run folder written by `cxr train`.")
Embeddings = argument(
    Path, help="Embeddings folder (cxr embed), .npy file (with --ids) or .parquet."
)
Ids = path_option("--ids", "Ids file (one per line) for .npy embeddings.")
LabelCol = text_option("--label-col", "One categorical label column (one-hot), e.g. finding.")
LabelCols = text_option("--label-cols", "Comma-separated label columns holding 1/0/-1/blank.")
LabelSchema = text_option(
    "--schema", "Label schema whose columns `cxr label` wrote (chexpert, chestxray14 or a YAML)."
)
Cache = path_option("--cache", "Image cache folder made by `cxr prepare` (faster).")
#: ``--id-col`` of a table whose images ``cxr prepare`` and ``cxr train`` read (by path or id).
ImageTableIdCol = IdCol("none (alone: images are <images>/<id>.<ext>)")
AllowOutsideImages = option(
    bool,
    "--allow-outside-images",
    help="Read image paths of the table that leave --images (absolute, or with ../); "
    "by default they are excluded and listed in excluded.csv.",
)
#: Which weights of a run embed images (``--checkpoint``).
CHECKPOINT = Options(("best", "last"))
Checkpoint = option(
    str,
    "--checkpoint",
    help="Weights of the run: best (model.safetensors) or last (the latest checkpoint, "
    "e.g. while the first epoch runs).",
)
#: What happens to table rows without an embedding (``--missing``).
MISSING = Options(("exclude", "error"))
Missing = option(
    str,
    "--missing",
    help="Table rows without an embedding: exclude (listed in excluded.csv) or error.",
)


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
