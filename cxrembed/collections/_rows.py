"""What every collection reader does once its own reasons are set: check the columns and
leave out missing or twice-listed images, so the collections exclude rows the same way."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cxrlabel.errors import InputError


def check_columns(source: Path, table: pd.DataFrame, needed: Sequence[str]) -> None:
    """Raise :class:`InputError` naming the columns of ``needed`` that ``table`` lacks."""
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise InputError(f"{source} lacks the column(s) {missing}; found {list(table.columns)}")


def split_rows(
    table: pd.DataFrame, reasons: pd.Series, root: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(kept, excluded)``: rows with no reason whose image exists under ``root`` and is
    listed once, and the others with ``row``, ``image`` and their first reason.

    ``table`` has ``id``, ``image`` and ``row`` columns; ``reasons`` is blank for a row the
    collection keeps so far (it is filled in place).
    """
    exists = table["image"].map(lambda p: (root / p).is_file())
    reasons[(reasons == "") & ~exists] = "image file not found"
    reasons[(reasons == "") & table["id"].duplicated()] = "image listed twice"
    excluded = table.loc[reasons != "", ["row", "image"]].assign(reason=reasons[reasons != ""])
    kept = table[reasons == ""].drop(columns="row").reset_index(drop=True)
    return kept, excluded.reset_index(drop=True)
