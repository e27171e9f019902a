"""Files of an embeddings folder or file: the manifest, shards, ids, Parquet, and checks.

Private to :mod:`cxrembed.embeddings.embedding_set` and :mod:`cxrembed.embeddings.writer`, which describe
the layout. Loaders return ``(ids, vectors, config_hash, meta)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from cxrembed.errors import ConfigHashMismatchError, EmbeddingsFileError
from cxrlabel.atomic import atomic_open, atomic_path

#: Manifest file name inside an embeddings folder.
MANIFEST = "embeddings.json"
#: ``format`` field of the manifest (and key of the Parquet schema metadata).
FORMAT = "cxrkit.embeddings"
#: Version of the layout; a reader refuses newer versions.
FORMAT_VERSION = 1
DTYPE = "float32"

Loaded = tuple[list[str], np.ndarray, "str | None", dict[str, Any]]


# --- manifest -------------------------------------------------------------------------------


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cxrkit")
    except PackageNotFoundError:
        return "unknown"


def new_manifest(
    count: int, dim: int, config_hash: str | None, shards: list[dict[str, Any]], *,
    complete: bool, meta: dict[str, Any],
) -> dict[str, Any]:
    stamp = now()
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "count": count, "dim": dim,
            "dtype": DTYPE, "config_hash": config_hash, "shards": shards, "complete": complete,
            "created": stamp, "updated": stamp, "cxrkit_version": _version(), "meta": dict(meta)}


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    try:
        text = json.dumps(manifest, indent=2)
    except TypeError as exc:
        raise EmbeddingsFileError(
            f"meta of embeddings {str(folder)!r} must be JSON-serialisable ({exc}); store paths "
            "and numbers as str / int / float"
        ) from None
    with atomic_open(folder / MANIFEST) as fh:
        fh.write(text + "\n")


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EmbeddingsFileError(
            f"cannot read {str(path)!r} ({exc}); expected the JSON manifest written by cxr "
            "embed. Fix: embed again into a fresh folder"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise EmbeddingsFileError(
            f"{str(path)!r} is not a cxrkit embeddings manifest (format field "
            f"{manifest.get('format') if isinstance(manifest, dict) else None!r}, expected "
            f"{FORMAT!r})"
        )
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise EmbeddingsFileError(
            f"{str(path)!r} has format version {manifest['format_version']}, newer than this "
            f"cxrkit reads ({FORMAT_VERSION}). Fix: upgrade cxrkit"
        )
    missing = [k for k in ("count", "dim", "dtype", "shards") if k not in manifest]
    shards = manifest.get("shards")
    if missing or not isinstance(shards, list) or not all(
        isinstance(s, dict) and {"vectors", "ids", "count"} <= set(s) for s in shards
    ):
        raise EmbeddingsFileError(
            f"{str(path)!r} lacks fields {missing or ['shards: vectors, ids, count']}; the "
            "manifest is damaged. Fix: embed again into a fresh folder"
        )
    if manifest["dtype"] != DTYPE:
        raise EmbeddingsFileError(
            f"{str(path)!r} says dtype {manifest['dtype']!r}; this cxrkit reads {DTYPE} only"
        )
    return manifest


def check_resumable(
    manifest: dict[str, Any], folder: Path, dim: int, config_hash: str | None
) -> None:
    if manifest.get("config_hash") != config_hash:
        raise ConfigHashMismatchError(
            f"{str(folder)!r} holds embeddings of a run with config hash "
            f"{manifest.get('config_hash')!r}, not {config_hash!r}; appending would mix two "
            "models. Fix: write to another folder, or delete this one"
        )
    if int(manifest["dim"]) != dim:
        raise EmbeddingsFileError(
            f"{str(folder)!r} holds {manifest['dim']}-dimensional embeddings; cannot append "
            f"{dim}-dimensional ones. Fix: write to another folder"
        )
    for shard in manifest["shards"]:
        for key in ("vectors", "ids"):
            if not (folder / shard[key]).is_file():
                raise EmbeddingsFileError(
                    f"{str(folder)!r}: shard file {shard[key]!r} listed in {MANIFEST} is "
                    "missing. Fix: restore it, or embed again into a fresh folder"
                )


def exists_message(target: Path) -> str:
    return (f"{str(target)!r} already holds embeddings; pass overwrite=True (--overwrite) to "
            "replace them, or choose another path")


# --- reading --------------------------------------------------------------------------------


def load_folder(folder: Path, allow_incomplete: bool) -> Loaded:
    if not (folder / MANIFEST).is_file():
        raise EmbeddingsFileError(
            f"{str(folder)!r} has no {MANIFEST}; expected an embeddings folder written by cxr "
            "embed (or EmbeddingSet.save). For your own vectors pass a .npy file with an ids "
            "file, or a .parquet file"
        )
    manifest = read_manifest(folder)
    if not manifest.get("complete", True) and not allow_incomplete:
        raise EmbeddingsFileError(
            f"{str(folder)!r} is incomplete ({manifest['count']} embeddings in "
            f"{len(manifest['shards'])} finished shards): its writer was interrupted. Fix: run "
            "cxr embed again to finish it, or pass allow_incomplete=True to use what is there"
        )
    dim = int(manifest["dim"])
    vectors: list[np.ndarray] = []
    ids: list[str] = []
    for shard in manifest["shards"]:
        count = int(shard["count"])
        block = _read_npy(folder / shard["vectors"])
        if block.shape != (count, dim):
            raise EmbeddingsFileError(
                f"{str(folder / shard['vectors'])!r} holds an array of shape {block.shape}; the "
                f"manifest expects ({count}, {dim}). The file is damaged or from another set. "
                "Fix: embed again into a fresh folder"
            )
        if block.dtype != np.float32:
            raise EmbeddingsFileError(
                f"{str(folder / shard['vectors'])!r} holds {block.dtype}; expected float32"
            )
        vectors.append(block)
        ids += read_ids(folder / shard["ids"], count)
    if len(ids) != int(manifest["count"]):
        raise EmbeddingsFileError(
            f"{str(folder / MANIFEST)!r} says {manifest['count']} embeddings but its shards hold "
            f"{len(ids)}; the manifest is damaged. Fix: embed again into a fresh folder"
        )
    if not ids:
        raise EmbeddingsFileError(
            f"{str(folder)!r} holds no embeddings (count 0). Check why cxr embed wrote none "
            "(its excluded list)"
        )
    stacked = np.concatenate(vectors) if len(vectors) > 1 else np.asarray(vectors[0])
    meta = manifest.get("meta") or {}
    return ids, stacked, manifest.get("config_hash"), dict(meta)


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise EmbeddingsFileError(
            f"vectors file {str(path)!r} is missing. Fix: restore it, or embed again"
        ) from None
    except (OSError, ValueError, EOFError) as exc:
        raise EmbeddingsFileError(
            f"cannot read vectors file {str(path)!r} ({exc}); expected a numeric .npy array "
            "(written with numpy.save, no pickled objects)"
        ) from None


def read_ids(path: Path, count: int | None) -> list[str]:
    if path.suffix.lower() in (".parquet", ".pq"):
        ids = _read_ids_parquet(path)
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise EmbeddingsFileError(f"ids file {str(path)!r} is missing") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise EmbeddingsFileError(
                f"cannot read ids file {str(path)!r} ({exc}); expected UTF-8 text, one id per "
                "line"
            ) from None
        ids = [line.rstrip("\r") for line in text.split("\n")]
        if ids and ids[-1] == "":
            ids.pop()
        blank = [n for n, i in enumerate(ids, start=1) if not i.strip()]
        if blank:
            raise EmbeddingsFileError(
                f"ids file {str(path)!r} line {blank[0]} is blank ({len(blank)} blank lines); "
                "expected one id per line. Fix: remove the blank lines together with their "
                "vectors"
            )
    if count is not None and len(ids) != count:
        raise EmbeddingsFileError(
            f"ids file {str(path)!r} holds {len(ids)} ids; expected {count} (one per vector). "
            "The file is damaged or belongs to another set"
        )
    return ids


def _read_ids_parquet(path: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["id"])
    except FileNotFoundError:
        raise EmbeddingsFileError(f"ids file {str(path)!r} is missing") from None
    except (OSError, pa.ArrowException) as exc:
        raise EmbeddingsFileError(
            f"cannot read ids file {str(path)!r} ({exc}); expected Parquet with an 'id' column"
        ) from None
    return [str(v) for v in table.column("id").to_pylist()]


def load_npy(path: Path, ids: str | os.PathLike[str] | None) -> Loaded:
    if ids is None:
        raise EmbeddingsFileError(
            f"{str(path)!r} holds vectors without ids; give the ids file (--ids FILE: one id "
            "per line, in the order of the rows)"
        )
    vectors = _read_npy(path)
    if vectors.ndim != 2:
        raise EmbeddingsFileError(
            f"{str(path)!r} holds an array of shape {vectors.shape}; expected N x D"
        )
    id_list = read_ids(Path(ids), None)
    if len(id_list) != len(vectors):
        raise EmbeddingsFileError(
            f"ids file {str(ids)!r} holds {len(id_list)} ids but {str(path)!r} holds "
            f"{len(vectors)} vectors; expected one id per row, in the same order"
        )
    return id_list, vectors, None, {"source": str(path), "ids_file": str(ids)}


def load_parquet(path: Path, id_col: str, vector_col: str | None) -> Loaded:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise EmbeddingsFileError(f"cannot read Parquet file {str(path)!r} ({exc})") from None
    names = table.column_names
    if id_col not in names:
        raise EmbeddingsFileError(
            f"{str(path)!r} has no id column {id_col!r}; found columns {names}. Fix: pass the "
            "id column (--embeddings-id-col)"
        )
    list_cols = [f.name for f in table.schema if pa.types.is_list(f.type)
                 or pa.types.is_fixed_size_list(f.type) or pa.types.is_large_list(f.type)]
    if vector_col is None:
        if len(list_cols) != 1:
            raise EmbeddingsFileError(
                f"{str(path)!r} needs exactly one list/array column of vectors; found "
                f"{list_cols or 'none'} among {names}. Fix: name it (--vector-col)"
            )
        vector_col = list_cols[0]
    elif vector_col not in list_cols:
        raise EmbeddingsFileError(
            f"{str(path)!r}: column {vector_col!r} is not a list/array column of vectors; list "
            f"columns: {list_cols}"
        )
    vectors = _list_column(table.column(vector_col).combine_chunks(), path, vector_col)
    ids = table.column(id_col).to_pylist()
    info = (table.schema.metadata or {}).get(FORMAT.encode())
    header = json.loads(info) if info else {}
    meta = dict(header.get("meta") or {"source": str(path)})
    return check_ids(ids, str(path)), vectors, header.get("config_hash"), meta


def _list_column(column: Any, path: Path, name: str) -> np.ndarray:
    import pyarrow as pa

    if column.null_count:
        row = column.is_null().to_pylist().index(True)
        raise EmbeddingsFileError(
            f"{str(path)!r}: column {name!r} row {row} is null ({column.null_count} such rows); "
            "expected a vector on every row"
        )
    if pa.types.is_fixed_size_list(column.type):
        dim = column.type.list_size
    else:
        lengths = np.diff(column.offsets.to_numpy())
        if len(lengths) == 0 or (lengths != lengths[0]).any():
            row = int(np.flatnonzero(lengths != lengths[0])[0]) if len(lengths) else 0
            raise EmbeddingsFileError(
                f"{str(path)!r}: column {name!r} row {row} has a vector of another length than "
                "row 0; expected vectors of one dimension"
            )
        dim = int(lengths[0])
    values = column.flatten()
    if values.null_count:
        raise EmbeddingsFileError(
            f"{str(path)!r}: column {name!r} holds null values inside vectors; expected floats"
        )
    try:
        flat = values.to_numpy(zero_copy_only=False).astype(np.float32)
    except (TypeError, ValueError, pa.ArrowInvalid) as exc:
        raise EmbeddingsFileError(
            f"{str(path)!r}: column {name!r} does not hold numbers ({exc})"
        ) from None
    return flat.reshape(len(column), dim)


# --- writing --------------------------------------------------------------------------------


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def write_ids_parquet(ids: list[str], target: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_path(target) as tmp:
        pq.write_table(pa.table({"id": pa.array(ids, type=pa.string())}), tmp)


def write_parquet(
    ids: list[str], vectors: np.ndarray, config_hash: str | None, meta: dict[str, Any],
    target: Path,
) -> None:
    """One Parquet file: ``id`` and a fixed-size-list ``vector`` column, the manifest fields
    (but shards) in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dim = vectors.shape[1]
    values = pa.array(vectors.reshape(-1), type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(values, dim)
    header = {k: v for k, v in new_manifest(len(ids), dim, config_hash, [], complete=True,
                                            meta=meta).items() if k != "shards"}
    table = pa.table({"id": pa.array(ids, type=pa.string()), "vector": column})
    table = table.replace_schema_metadata({FORMAT: json.dumps(header)})
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)


# --- validation -----------------------------------------------------------------------------


def check_vectors(values: Any, source: str, error: type = EmbeddingsFileError) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise error(f"{source}: vectors must be numeric ({exc})") from None
    if array.ndim != 2 or array.shape[1] == 0:
        raise error(
            f"{source}: vectors must be a 2-D array (N rows x D dimensions, D >= 1); got shape "
            f"{array.shape}. Fix: stack one vector per row"
        )
    return np.ascontiguousarray(array)


def check_ids(values: Iterable[Any], source: str, error: type = EmbeddingsFileError) -> list[str]:
    ids: list[str] = []
    for row, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, str | int | np.integer):
            raise error(
                f"{source}: id at row {row} is {value!r} ({type(value).__name__}); expected a "
                "string (or int). Fix: give every vector a text id"
            )
        text = str(value)
        if not text.strip() or "\n" in text or "\r" in text:
            raise error(
                f"{source}: id at row {row} is {text!r}; expected a non-blank id on one line"
            )
        ids.append(text)
    if len(set(ids)) != len(ids):
        seen: dict[str, int] = {}
        for row, text in enumerate(ids):
            if text in seen:
                n = len(ids) - len(set(ids))
                raise error(
                    f"{source}: id {text!r} appears at rows {seen[text]} and {row} ({n} repeated "
                    "ids in all); expected one vector per id. Fix: de-duplicate before embedding"
                )
            seen[text] = row
    return ids
