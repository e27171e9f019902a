"""Table headers and column checks that run before any heavy work.

A command that will spend seconds (importing spaCy, decoding images, bootstrapping scores)
first reads only the header of each table it was given and checks that every column named
on the command line is there, so a typo is reported at once, naming the flag to fix and the
closest column. The id column is found the same way everywhere: the one given, else the first
of :data:`ID_CANDIDATES` present.

Examples
--------
>>> find_id_column(["uid", "findings"])
'uid'
>>> check_columns("r.csv", ["uid", "findings"], {"--text-col": ["findings", "impresion"]})
Traceback (most recent call last):
...
cxrlabel.errors.InputError: r.csv: column 'impresion' not found (--text-col); columns present: ['uid', 'findings']
"""

from __future__ import annotations

import csv
import difflib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from cxrlabel.errors import CxrError, InputError, MissingExtraError

__all__ = [
    "ID_CANDIDATES",
    "SEPARATORS",
    "PARQUET_SUFFIXES",
    "read_header",
    "find_id_column",
    "missing_column_message",
    "check_columns",
    "check_table_header",
]

#: Id column names looked for, in order, when no id column is given.
ID_CANDIDATES = ("id", "uid", "report_id", "study_id")
#: Column separator of each delimited-text extension (shared by every table reader).
SEPARATORS: dict[str, str] = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
#: Extensions read as Parquet.
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
_JSONL = (".jsonl", ".ndjson", ".json")


def read_header(path: str | os.PathLike[str], error: type[CxrError] = InputError) -> list[str]:
    """Column names of a CSV / TSV / Parquet / JSON Lines table, reading only its header.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text('id,"a, b"\\n1,2\\n')
    >>> read_header(p)
    ['id', 'a, b']
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            try:
                import pyarrow.parquet as pq
            except ModuleNotFoundError:
                raise MissingExtraError("pyarrow", "parquet") from None
            return [str(c) for c in pq.read_schema(path).names]
        if suffix in _JSONL:
            with open(path, encoding="utf-8", errors="replace") as fh:
                first = fh.readline()
            row = json.loads(first) if first.strip() else {}
            return [str(c) for c in row] if isinstance(row, dict) else []
        sep = SEPARATORS.get(suffix)
        if sep is None:
            raise error(
                f"{path}: unsupported table type '{suffix}'; expected .csv, .tsv, .parquet or "
                ".jsonl"
            )
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            return next(csv.reader(fh, delimiter=sep), [])
    except (OSError, ValueError, csv.Error) as exc:
        if isinstance(exc, CxrError):
            raise
        raise error(f"{path}: cannot read the header ({type(exc).__name__}: {exc})") from None


def find_id_column(columns: Sequence[str], candidates: Sequence[str] = ID_CANDIDATES) -> str | None:
    """The first of ``candidates`` among ``columns`` (None when there is none)."""
    present = set(columns)
    return next((c for c in candidates if c in present), None)


def missing_column_message(
    where: object, missing: Sequence[str], columns: Sequence[str], option: str
) -> str:
    """``"<where>: column 'x' (did you mean 'y'?) not found (<option>); columns present: [...]"``."""
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, list(columns), n=1)
        hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    return (
        f"{where}: column {', '.join(hints)} not found ({option}); columns present: {list(columns)}"
    )


def check_columns(
    where: object,
    columns: Sequence[str],
    wanted: Mapping[str, str | Sequence[str] | None],
    error: type[CxrError] = InputError,
) -> None:
    """Raise ``error`` for the first option whose column(s) are not among ``columns``.

    ``wanted`` maps an option name (``--image-col``) to the column it names, a list of
    columns, or None (not given: nothing to check).
    """
    present = set(columns)
    for option, names in wanted.items():
        if names is None:
            continue
        names = [names] if isinstance(names, str) else list(names)
        missing = [n for n in names if n not in present]
        if missing:
            raise error(missing_column_message(where, missing, columns, option))


def check_table_header(
    path: str | os.PathLike[str],
    wanted: Mapping[str, str | Sequence[str] | None],
    error: type[CxrError] = InputError,
) -> None:
    """:func:`check_columns` on the header of the table at ``path``, before any heavy work.

    A table that cannot be read is left alone: the command's full read says why.
    """
    try:
        columns = read_header(path)
    except CxrError:
        return
    if columns:
        check_columns(path, columns, wanted, error)
