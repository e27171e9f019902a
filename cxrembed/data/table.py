"""Read a labels table and join its rows to image files.

Two ways to find a row's image:

* ``image_col``: the column holds a path, relative to ``images_root`` (default: the table's
  own folder) or absolute. The row's id is ``id_col`` when given, else this path.
* ``id_col`` alone: the image is ``<images_root>/<id>`` or ``<images_root>/<id>.<ext>``
  for one of :data:`IMAGE_EXTENSIONS`.

No row is dropped silently: a row without a usable image is *excluded* with a reason
(:mod:`cxrembed.data.exclusions`: ``row`` is the 0-based position in the table, ``kind``
a short code for counting, ``reason`` the detail). Ids must be unique (they name
embeddings), so a repeated id is excluded after its first row.

A path that leaves the images folder (an absolute path elsewhere, or ``../`` going above
it) is excluded (kind ``outside-images``) unless ``allow_outside=True``
(``--allow-outside-images``): a table from someone else cannot make a command read
``/etc/...`` or another user's files. Paths are compared as written (``..`` resolved, links
not followed), so an images folder that links to another disk keeps working.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxrembed.data.exclusions import EXCLUDED_COLUMNS, excluded_frame, exclusion
from cxrlabel.errors import InputError
from cxrlabel.tables import TableMessages, read_table_file

__all__ = [
    "IMAGE_EXTENSIONS",
    "EXCLUDED_COLUMNS",
    "ImageJoin",
    "read_table",
    "table_source",
    "check_image_columns",
    "row_ids",
    "join_images",
    "exclusion",
    "excluded_frame",
]

#: Extensions tried, in order, when images are found by id.
IMAGE_EXTENSIONS: tuple[str, ...] = (".dcm", ".dicom", ".png", ".jpg", ".jpeg")
# Tables are CSV (any other extension too), TSV or Parquet (cxrlabel.tables).
_MESSAGES = TableMessages(
    missing="labels table {name!r} not found; give a CSV or Parquet file",
    empty_file="cannot read labels table {name!r} (the file is empty); expected a header row",
    unreadable="cannot read labels table {name!r} ({detail}); expected CSV, TSV, or Parquet "
    "with a .parquet extension",
)


@dataclass(frozen=True)
class ImageJoin:
    """Rows of a table that have an image file, and the rows that do not.

    Attributes
    ----------
    rows : numpy.ndarray
        0-based positions (int64) of the usable rows in the table, increasing.
    ids : list of str
        Their ids.
    paths : list of pathlib.Path
        Their image files.
    excluded : pandas.DataFrame
        The other candidate rows, with :data:`EXCLUDED_COLUMNS`.
    """

    rows: np.ndarray
    ids: list[str]
    paths: list[Path]
    excluded: pd.DataFrame


def read_table(
    table: str | os.PathLike[str] | pd.DataFrame, *, text_columns: Iterable[str | None] = ()
) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet labels table (or take a DataFrame) with at least one row.

    ``text_columns`` (id, image path) are read as text, so ids like ``00012`` keep their
    zeros. The source path is kept in ``df.attrs["source"]`` for error messages.

    Examples
    --------
    >>> df = read_table(pd.DataFrame({"id": [1, 2]}))
    >>> len(df), table_source(df)
    (2, '<DataFrame>')
    """
    if isinstance(table, pd.DataFrame):
        df = table.copy(deep=False)  # the caller's frame keeps its attrs untouched
        df.attrs.setdefault("source", "<DataFrame>")
    else:
        path = Path(table)
        text = [c for c in text_columns if c]
        df = read_table_file(
            path, text_columns=text, messages=_MESSAGES, other_suffixes=",", name=str(path)
        )
        df = df.astype({c: "string" for c in text if c in df.columns})  # Parquet ids too
        df.attrs["source"] = str(path)
        df.attrs["folder"] = str(path.parent)
    if len(df) == 0:
        raise InputError(f"labels table {table_source(df)} has no rows")
    return df


def table_source(table: pd.DataFrame) -> str:
    """The table's file name (or ``<DataFrame>``), for messages."""
    return str(table.attrs.get("source", "<DataFrame>"))


def row_ids(table: pd.DataFrame, *, image_col: str | None, id_col: str | None) -> list[str | None]:
    """Each row's id: ``id_col`` when given, else the ``image_col`` path; None when blank."""
    _check_columns(table, image_col=image_col, id_col=id_col)
    column = table[id_col if id_col else image_col]
    return [_text(v) for v in column.tolist()]


def join_images(
    table: pd.DataFrame,
    images_root: str | os.PathLike[str] | None = None,
    *,
    image_col: str | None = None,
    id_col: str | None = None,
    rows: Sequence[int] | None = None,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    allow_outside: bool = False,
) -> ImageJoin:
    """Find the image file of each row (of ``rows``, default all) of ``table``.

    Parameters
    ----------
    table : pandas.DataFrame
    images_root : path-like, optional
        Folder of the images. Defaults to the table file's folder (``image_col`` only).
    image_col, id_col : str, optional
        At least one (see the module docstring).
    rows : sequence of int, optional
        Positions to consider; the others are neither kept nor excluded.
    extensions : sequence of str
        Extensions tried for ``<id>.<ext>``.
    allow_outside : bool
        Read image paths outside the images folder (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()); _ = (root / "a.png").write_bytes(b"x")
    >>> j = join_images(pd.DataFrame({"id": ["a", "b"]}), root, id_col="id")
    >>> j.ids, j.excluded[["row", "kind"]].values.tolist()
    (['a'], [[1, 'missing']])
    """
    _check_columns(table, image_col=image_col, id_col=id_col)
    root = _images_root(table, images_root, id_col=id_col, image_col=image_col)
    ids = row_ids(table, image_col=image_col, id_col=id_col)
    rel = [_text(v) for v in table[image_col].tolist()] if image_col else None
    by_stem = None if image_col else _files_by_stem(root, extensions)
    positions = range(len(table)) if rows is None else [int(r) for r in rows]
    kept_rows: list[int] = []
    kept_ids: list[str] = []
    kept_paths: list[Path] = []
    excluded: list[dict[str, Any]] = []
    first_row: dict[str, int] = {}
    for row in positions:
        row_id = ids[row]
        if rel is not None:
            path, problem = _by_path(root, rel[row], image_col or "")
        else:
            path, problem = _by_id(root, row_id, by_stem or {}, id_col or "")
        if problem is None and not allow_outside:
            problem = _outside(root, path)
        if problem is None and row_id is None:
            problem = ("no-id", f"column {id_col!r} is blank")
        if problem is None and row_id in first_row:
            problem = ("duplicate-id", f"id {row_id!r} already used by row {first_row[row_id]}")
        if problem is None:
            problem = _file_problem(path)
        if problem is not None:
            excluded.append(exclusion(row, row_id, path, *problem))
            continue
        first_row[row_id] = row
        kept_rows.append(row)
        kept_ids.append(row_id)
        kept_paths.append(path)
    return ImageJoin(
        np.asarray(kept_rows, dtype=np.int64), kept_ids, kept_paths, excluded_frame(excluded)
    )


def _check_columns(table: pd.DataFrame, *, image_col: str | None, id_col: str | None) -> None:
    check_image_columns(
        table_source(table), list(table.columns), image_col=image_col, id_col=id_col
    )


def check_image_columns(
    source: str, columns: Sequence[Any], *, image_col: str | None, id_col: str | None
) -> None:
    """The table has an image path column or an id column, and every column named exists
    (run on the header before any model is loaded)."""
    if not image_col and not id_col:
        raise InputError(
            f"say how to find the images of {source}: give an image path column "
            f"(image_col / --image-col) or an id column (id_col / --id-col); found columns "
            f"{list(columns)}"
        )
    for col, option in ((image_col, "--image-col"), (id_col, "--id-col")):
        if col and col not in columns:
            close = difflib.get_close_matches(col, [str(c) for c in columns], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(
                f"{source} has no column {col!r}{hint} ({option}); found columns {list(columns)}"
            )


def _images_root(
    table: pd.DataFrame,
    images_root: str | os.PathLike[str] | None,
    *,
    id_col: str | None,
    image_col: str | None,
) -> Path:
    if images_root is None:
        if image_col is None:
            raise InputError("images found by id need an images folder (images_root / --images)")
        return Path(table.attrs.get("folder", "."))
    root = Path(images_root)
    if not root.is_dir():
        raise InputError(f"images folder {str(root)!r} not found or not a folder")
    return root


def _files_by_stem(root: Path, extensions: Sequence[str]) -> dict[str, list[str]]:
    wanted = {e.lower() for e in extensions}
    found: dict[str, list[str]] = defaultdict(list)
    with os.scandir(root) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            if ext.lower() in wanted:
                found[stem].append(entry.name)
    return found


def _by_path(root: Path, rel: str | None, image_col: str) -> tuple[Path | None, tuple | None]:
    if rel is None:
        return None, ("no-image", f"column {image_col!r} is blank: no image for this row")
    return root / rel, None


def _by_id(
    root: Path, row_id: str | None, by_stem: dict[str, list[str]], id_col: str
) -> tuple[Path | None, tuple | None]:
    if row_id is None:
        return None, ("no-image", f"column {id_col!r} is blank: no image for this row")
    exact = root / row_id
    if exact.is_file():
        return exact, None
    names = by_stem.get(row_id, [])
    if not names:
        return exact, ("missing", f"no file {row_id}.<ext> in {str(root)!r}")
    if len(names) > 1:
        return exact, (
            "ambiguous",
            f"several files for id {row_id!r}: {sorted(names)}; "
            "keep one or use an image path column",
        )
    return root / names[0], None


def _outside(root: Path, path: Path | None) -> tuple[str, str] | None:
    """``("outside-images", reason)`` when ``path`` is not below ``root`` (as written)."""
    if path is None:
        return None
    base = os.path.normpath(os.path.abspath(root))
    target = os.path.normpath(os.path.abspath(path))
    if target == base or target.startswith(base.rstrip(os.sep) + os.sep):
        return None
    return (
        "outside-images",
        f"image path {str(path)!r} leaves the images folder {base!r}; "
        "pass --allow-outside-images (allow_outside_images=True) to read it",
    )


def _file_problem(path: Path | None) -> tuple[str, str] | None:
    try:
        info = path.stat() if path is not None else None
    except FileNotFoundError:
        return ("missing", "image file not found")
    except OSError as exc:
        return ("unreadable", f"cannot access the image file: {exc.strerror or exc}")
    if info is None:
        return ("no-image", "no image for this row")
    if not stat.S_ISREG(info.st_mode):
        return ("not-a-file", "image path is a folder, not a file")
    if info.st_size == 0:
        return ("empty", "image file is empty (0 bytes)")
    return None


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None
