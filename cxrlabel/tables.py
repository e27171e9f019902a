"""Read a table file (CSV, TSV or Parquet, chosen by extension): the one reader of both packages.

``cxr validate`` (gold and prediction tables) and every cxrembed command (labels and
metadata tables) read their tables here, so the same file reads the same way everywhere.
Each caller keeps its own words: :class:`TableMessages` holds the messages for a missing,
unsupported, empty or unreadable file (``{path}``, ``{suffix}``, ``{detail}`` and the
caller's own fields are filled in), raised as the caller's error class.

Examples
--------
>>> import tempfile, pathlib
>>> tsv = pathlib.Path(tempfile.mkdtemp()) / "gold.tsv"
>>> _ = tsv.write_text("id\\tEdema\\n007\\t1\\n")
>>> read_table_file(tsv, text_columns=["id"]).values.tolist()
[['007', 1]]
>>> _ = tsv.with_suffix(".xlsx").write_bytes(b"PK")
>>> read_table_file(tsv.with_suffix(".xlsx"))
Traceback (most recent call last):
...
cxrlabel.errors.InputError: ...gold.xlsx: unsupported table file type '.xlsx'; expected .csv, .tsv or .parquet
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cxrlabel.columns import PARQUET_SUFFIXES, SEPARATORS, delimited_header
from cxrlabel.errors import CxrError, InputError, MissingExtraError

__all__ = ["SEPARATORS", "PARQUET_SUFFIXES", "TableMessages", "read_table_file"]


@dataclass(frozen=True)
class TableMessages:
    """How a caller words each problem (``str.format`` templates, see the module docstring)."""

    missing: str = "{path}: table file not found"
    unsupported: str = (
        "{path}: unsupported table file type '{suffix}'; expected .csv, .tsv or .parquet"
    )
    empty_file: str = "{path}: the table file is empty"
    unreadable: str = "{path}: cannot read the table ({detail})"


def read_table_file(
    path: str | os.PathLike[str],
    *,
    text_columns: Iterable[str | None] = (),
    text_dtype: Any = "string",
    error: type[CxrError] = InputError,
    messages: TableMessages = TableMessages(),
    other_suffixes: str | None = None,
    **fields: Any,
) -> pd.DataFrame:
    """Read one table file by its extension (:data:`SEPARATORS`, :data:`PARQUET_SUFFIXES`).

    Parameters
    ----------
    path : path-like
    text_columns : iterable of str
        Columns read as text (``text_dtype``) from delimited files, so ids like ``007``
        keep their zeros. Parquet files keep their stored types.
    error : CxrError subclass
        What the problems are raised as.
    messages : TableMessages
        The caller's wording; ``fields`` fill its extra placeholders.
    other_suffixes : str, optional
        Separator for any other extension (e.g. ``","``: read it as CSV); None refuses it.
    """
    path = Path(path)
    values = {"path": path, "suffix": path.suffix.lower(), **fields}
    if not path.is_file():
        raise error(messages.missing.format(**values))
    suffix = path.suffix.lower()
    sep = SEPARATORS.get(suffix, other_suffixes)
    if suffix not in PARQUET_SUFFIXES and sep is None:
        raise error(messages.unsupported.format(**values))
    text = {c: text_dtype for c in text_columns if c}
    try:
        if suffix in PARQUET_SUFFIXES:
            return _unique_columns(_read_parquet(path), path, error)
        delimited_header(path, sep, error)  # UTF-16, another separator, repeated names
        return pd.read_csv(path, sep=sep, dtype=text or None, low_memory=False)
    except CxrError:
        raise  # already says what is wrong with the file
    except pd.errors.EmptyDataError:
        raise error(messages.empty_file.format(**values)) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise error(messages.unreadable.format(detail=exc, **values)) from None


def _unique_columns(frame: pd.DataFrame, path: Path, error: type[CxrError]) -> pd.DataFrame:
    repeated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if repeated:
        raise error(
            f"{path}: column {str(repeated[0])!r} appears more than once; every column needs "
            "its own name. Fix: rename or drop the repeats"
        )
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401 - pandas' Parquet engine, from the parquet extra
    except ModuleNotFoundError:
        raise MissingExtraError("pyarrow", "parquet") from None
    return pd.read_parquet(path)
