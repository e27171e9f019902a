"""Table headers and column checks that run before any heavy work.

A command that will spend seconds (importing spaCy, decoding images, bootstrapping scores)
first reads only the header of each table it was given and checks that every column named
on the command line is there, so a typo is reported at once, naming the flag to fix and the
closest column. The id column is found the same way everywhere: the one given, else the first
of :data:`ID_CANDIDATES` present.

The header of a delimited file is also where a table named for another format shows
(:func:`delimited_header`): UTF-16 text (Excel's "Unicode text"), a tab- or
semicolon-separated file named ``.csv``, binary data, or a column name used twice (which
pandas would silently rename ``name.1``) are errors that say what the file looks like and
what to do.

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
    "delimited_header",
    "check_utf8_text",
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
        return delimited_header(path, sep, error)
    except (OSError, ValueError, csv.Error) as exc:
        if isinstance(exc, CxrError):
            raise
        raise error(f"{path}: cannot read the header ({type(exc).__name__}: {exc})") from None


#: Byte-order marks of UTF-16 / UTF-32 text.
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")
_OTHER_SEPARATORS = {"\t": "tab", ";": "semicolon", "|": "pipe", ",": "comma"}
_SUFFIX_OF = {",": ".csv", "\t": ".tsv"}


def delimited_header(
    path: str | os.PathLike[str], sep: str, error: type[CxrError] = InputError
) -> list[str]:
    r"""The header of a delimited text table, refusing files that only look like one.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("id\tfile\tfinding\n1\ta.png\tx\n")
    >>> delimited_header(p, ",")
    Traceback (most recent call last):
    ...
    cxrlabel.errors.InputError: ...t.csv: the header is one column 'id\tfile\tfinding' that holds tab characters: the file looks tab-separated, not comma-separated. Fix: name it .tsv (or save it comma-separated)
    >>> _ = p.write_text("id,file,id\n")
    >>> delimited_header(p, ",")
    Traceback (most recent call last):
    ...
    cxrlabel.errors.InputError: ...t.csv: column 'id' appears 2 times in the header (positions 1 and 3); every column needs its own name. Fix: rename or drop the repeats
    """
    path = Path(path)
    check_utf8_text(path, error)
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        columns = next(csv.reader(fh, delimiter=sep), [])
    if len(columns) == 1:
        found = [
            name for char, name in _OTHER_SEPARATORS.items() if char != sep and char in columns[0]
        ]
        if found:
            char = next(c for c, n in _OTHER_SEPARATORS.items() if n == found[0])
            kind = "comma" if sep == "," else _OTHER_SEPARATORS.get(sep, repr(sep))
            fix = (
                f"name it {_SUFFIX_OF[char]} (or save it {kind}-separated)"
                if char in _SUFFIX_OF
                else f"save it {kind}-separated"
            )
            raise error(
                f"{path}: the header is one column {columns[0]!r} that holds {found[0]} "
                f"characters: the file looks {found[0]}-separated, not {kind}-separated. "
                f"Fix: {fix}"
            )
    seen: dict[str, list[int]] = {}
    for position, name in enumerate(columns, start=1):
        seen.setdefault(name, []).append(position)
    repeated = {name: places for name, places in seen.items() if len(places) > 1 and name.strip()}
    if repeated:
        name, places = next(iter(repeated.items()))
        where = " and ".join(str(p) for p in places)
        raise error(
            f"{path}: column {name!r} appears {len(places)} times in the header (positions "
            f"{where}); every column needs its own name. Fix: rename or drop the repeats"
        )
    return columns


def check_utf8_text(path: str | os.PathLike[str], error: type[CxrError] = InputError) -> None:
    """Refuse a text file that is UTF-16 / UTF-32 or binary, from its first 4 KB.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = p.write_bytes("No effusion.".encode("utf-16"))
    >>> check_utf8_text(p)
    Traceback (most recent call last):
    ...
    cxrlabel.errors.InputError: ...r.csv: the file is UTF-16 (or UTF-32) text, not UTF-8: it starts with a byte-order mark or holds NUL bytes between the characters. Fix: save it as UTF-8 (Excel: 'CSV UTF-8'; iconv -f UTF-16 -t UTF-8)
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(_WIDE_BOMS) or (head and head.count(b"\0") > len(head) // 4):
        raise error(
            f"{path}: the file is UTF-16 (or UTF-32) text, not UTF-8: it starts with a "
            "byte-order mark or holds NUL bytes between the characters. Fix: save it as UTF-8 "
            "(Excel: 'CSV UTF-8'; iconv -f UTF-16 -t UTF-8)"
        )
    if b"\0" in head:
        raise error(
            f"{path}: the file holds binary data (NUL bytes), not a text table. Fix: give a "
            "CSV / TSV file, or a Parquet file named .parquet"
        )


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
