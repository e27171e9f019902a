"""The embeddings folder's side files: which image each embedding came from, and clearing.

``cxr embed`` writes ``sources.csv`` (``id``, ``source``: the image file or cache slot of
each embedding) next to the vectors; ``cxr embed --index`` and the search grid read it to
show neighbour images. :func:`clear_embeddings` removes only the files ``cxr embed`` writes.

Examples
--------
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> write_sources(folder, {"a": "/img/a.png"})
>>> write_sources(folder, {"b": "/img/b.png"})
>>> read_sources(folder).values.tolist()
[['a', '/img/a.png'], ['b', '/img/b.png']]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from cxrembed.data.exclusions import EXCLUDED_FILE
from cxrembed.embeddings._files import MANIFEST
from cxrlabel.atomic import atomic_path

__all__ = ["SOURCES_FILE", "EXCLUDED_FILE", "read_sources", "write_sources", "clear_embeddings"]

#: File of an embeddings folder mapping each id to its image file.
SOURCES_FILE = "sources.csv"


def read_sources(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """``folder/sources.csv`` as a DataFrame (``id``, ``source``), empty when absent."""
    path = Path(folder) / SOURCES_FILE
    if not path.is_file():
        return pd.DataFrame({"id": pd.Series(dtype="string"), "source": pd.Series(dtype="string")})
    return pd.read_csv(path, dtype="string", keep_default_na=False)


def write_sources(folder: str | os.PathLike[str], new: Mapping[str, str]) -> None:
    """Add (or replace) the sources of the ids in ``new``; written atomically."""
    out = Path(folder)
    if not new and (out / SOURCES_FILE).is_file():
        return
    old = read_sources(out)
    frame = pd.concat(
        [
            old[~old["id"].isin(list(new))],
            pd.DataFrame({"id": list(new), "source": list(new.values())}),
        ],
        ignore_index=True,
    )
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / SOURCES_FILE) as tmp:
        frame.to_csv(tmp, index=False)


def clear_embeddings(folder: str | os.PathLike[str]) -> None:
    """Remove the embeddings of an earlier run (only the files cxr embed writes)."""
    out = Path(folder)
    if not out.is_dir():
        return
    names = {MANIFEST, SOURCES_FILE, EXCLUDED_FILE, "vectors.npy", "ids.parquet"}
    for path in out.iterdir():
        if path.name in names or (
            path.is_file()
            and (
                (path.name.startswith("vectors-") and path.suffix == ".npy")
                or (path.name.startswith("ids-") and path.suffix == ".txt")
            )
        ):
            path.unlink()
