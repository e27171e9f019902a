"""The index folder: writing and reading a :class:`~cxrembed.search.index.VectorIndex`.

A folder holds ``index.faiss`` (the FAISS index), ``ids.json`` (one id per FAISS row),
``meta.parquet`` (display columns, optional), ``vectors.npy`` (the full vectors of a
re-ranking index, optional) and ``index.json`` (kind, parameters, dim, count, metric, the
run's config hash and weights fingerprint, recall, faiss version, and the byte size and
SHA-256 of every file). Every file is written atomically, ``index.json`` last; a file the
new save does not have is removed. Reading checks sizes, then checksums, then counts, so a
damaged, edited or swapped file (a byte flipped in ``index.faiss``, two ids exchanged in
``ids.json``) is refused with its name. Folders saved before checksums existed load with a
note.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxrembed._deps import require
from cxrembed._vectors import as_ids
from cxrembed.errors import IndexFileError
from cxrembed.search.rerank import ExactVectors
from cxrlabel.atomic import atomic_open, atomic_path
from cxrlabel.checksums import ALGORITHM, check_sha256, file_sha256, unverified

faiss = require("faiss")

__all__ = ["FORMAT_VERSION", "FILES", "write_folder", "read_folder", "read_info"]

FORMAT_VERSION = 1
FILES = ("index.faiss", "ids.json", "meta.parquet", "vectors.npy")


def write_folder(
    path: str | os.PathLike[str],
    index: Any,
    ids: np.ndarray,
    info: Mapping[str, Any],
    *,
    metadata: pd.DataFrame | None,
    vectors: ExactVectors | None,
) -> Path:
    """Write the folder; returns its path."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise IndexFileError(f"cannot save the index to {folder}: it is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "index.faiss") as tmp:
        faiss.write_index(index, str(tmp))
    with atomic_open(folder / "ids.json") as fh:
        json.dump(ids.tolist(), fh)
    if metadata is not None:
        with atomic_path(folder / "meta.parquet") as tmp:
            try:
                metadata.to_parquet(tmp, index=False)
            except (ValueError, TypeError, ImportError) as exc:
                raise IndexFileError(
                    f"cannot write the metadata columns to {folder / 'meta.parquet'}: {exc}. "
                    "Fix: give those columns one type each (e.g. convert them to str)"
                ) from exc
    else:
        with contextlib.suppress(FileNotFoundError):
            (folder / "meta.parquet").unlink()
    if vectors is not None:
        with atomic_path(folder / "vectors.npy") as tmp:
            vectors.save(tmp)
    else:
        with contextlib.suppress(FileNotFoundError):
            (folder / "vectors.npy").unlink()
    info = dict(info)
    present = [name for name in FILES if (folder / name).exists()]
    info["files"] = {
        name: (folder / name).stat().st_size if name in present else None for name in FILES
    }
    info[ALGORITHM] = {name: file_sha256(folder / name) for name in present}
    with atomic_open(folder / "index.json") as fh:
        json.dump(info, fh, indent=2)
    return folder


def read_folder(
    path: str | os.PathLike[str], info: Mapping[str, Any] | None = None
) -> tuple[Any, np.ndarray, dict[str, Any], pd.DataFrame | None, ExactVectors | None]:
    """(FAISS index, ids, info, metadata, vectors) of a folder, checked to agree.

    ``info``: the folder's ``index.json`` when already read by :func:`read_info`.
    """
    folder = Path(path)
    info = dict(read_info(folder) if info is None else info)
    _check_files(folder, info)
    try:
        index = faiss.read_index(str(folder / "index.faiss"))
    except RuntimeError as exc:
        raise IndexFileError(f"cannot read {folder / 'index.faiss'}: {exc}") from exc
    ids = _read_ids(folder / "ids.json")
    meta = None
    if info["files"].get("meta.parquet") is not None:
        meta = _read_meta(folder / "meta.parquet")
    count = int(info["count"])
    found = {"index.faiss vectors": index.ntotal, "ids.json ids": len(ids)}
    if meta is not None:
        found["meta.parquet rows"] = len(meta)
    wrong = {name: n for name, n in found.items() if n != count}
    if wrong or index.d != int(info["dim"]):
        raise IndexFileError(
            f"index folder {folder} is inconsistent: index.json says {count} vectors of "
            f"dimension {info['dim']}, found {found} and dimension {index.d}. Fix: rebuild "
            "the index"
        )
    vectors = None
    if info["files"].get("vectors.npy") is not None:
        vectors = _read_vectors(folder / "vectors.npy", count, int(info["dim"]), info)
    return index, ids, info, meta, vectors


def _check_files(folder: Path, info: Mapping[str, Any]) -> None:
    """Every file index.json lists is there, of its size and (when recorded) checksum."""
    for name, size in info["files"].items():
        file = folder / name
        if size is None:
            continue
        if not file.is_file():
            raise IndexFileError(
                f"index folder {folder} lacks {name}, which index.json lists. Fix: rebuild "
                "the index (cxr embed), or copy the whole folder"
            )
        if file.stat().st_size != size:
            raise IndexFileError(
                f"{file} has {file.stat().st_size} bytes but index.json expects {size}: the "
                "folder mixes files from two saves or a copy was cut short. Fix: rebuild the "
                "index"
            )
    digests = info.get(ALGORITHM)
    if not isinstance(digests, Mapping):
        unverified(f"index folder {folder}", "Rebuild the index (cxr embed ... --index DIR)")
        return
    for name, size in info["files"].items():
        if size is not None:
            if name not in digests:
                raise IndexFileError(
                    f"{folder / 'index.json'} lists {name} without its checksum; the file was "
                    "edited. Fix: rebuild the index"
                )
            check_sha256(
                folder / name,
                str(digests[name]),
                error=IndexFileError,
                fix="rebuild the index (cxr embed ... --index DIR), or copy the whole folder again",
            )


def _read_meta(file: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(file)
    except ImportError:
        raise  # the parquet extra is missing: the CLI names it
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise IndexFileError(
            f"cannot read {file} ({type(exc).__name__}: {exc}); expected the Parquet table of "
            "display columns written with the index. Fix: rebuild the index"
        ) from None


def read_info(folder: Path) -> dict[str, Any]:
    """The folder's ``index.json``, checked to be one this cxrkit reads."""
    file = folder / "index.json"
    if not folder.is_dir():
        raise IndexFileError(f"index folder {folder} does not exist. Fix: build it with cxr embed")
    if not file.is_file():
        raise IndexFileError(
            f"{folder} has no index.json, so it is not a complete index folder (a save may have "
            "been interrupted). Fix: rebuild the index"
        )
    info = _read_json(file)
    required = ("format", "kind", "params", "dim", "count", "files")
    missing = [key for key in required if key not in info] if isinstance(info, dict) else required
    if missing:
        raise IndexFileError(f"{file} lacks the keys {list(missing)}; it was not written by cxrkit")
    if info["format"] != FORMAT_VERSION:
        raise IndexFileError(
            f"{file} has format {info['format']!r}; this cxrkit reads format {FORMAT_VERSION}. "
            "Fix: rebuild the index or use the cxrkit version that wrote it"
        )
    return info


def _read_vectors(file: Path, count: int, dim: int, info: Mapping[str, Any]) -> ExactVectors:
    """``vectors.npy`` memory-mapped, or in RAM when the build's budget holds it."""
    try:
        vectors = np.load(file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise IndexFileError(f"cannot read {file}: {exc}. Fix: rebuild the index") from exc
    if vectors.shape != (count, dim) or vectors.dtype != np.float32:
        raise IndexFileError(
            f"{file} holds {vectors.dtype} vectors of shape {vectors.shape}; index.json expects "
            f"float32 ({count}, {dim}). Fix: rebuild the index"
        )
    budget = info.get("max_memory")
    if budget is not None and int(info.get("memory_bytes", 0)) + vectors.nbytes <= budget:
        return ExactVectors.in_memory(vectors)
    return ExactVectors.mapped(vectors)


def _read_ids(file: Path) -> np.ndarray:
    values = _read_json(file)
    if not isinstance(values, list):
        raise IndexFileError(f"{file} must hold a JSON list of ids; found {type(values).__name__}")
    return as_ids(values, source=str(file), error=IndexFileError)


def _read_json(file: Path) -> Any:
    """The JSON in ``file``, with one error wording for ``index.json`` and ``ids.json``."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFileError(f"cannot parse {file}: {exc}") from exc
