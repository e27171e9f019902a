"""Files of an embeddings folder or file: the manifest, shards, ids, Parquet, and checks.

Private to :mod:`cxrembed.embeddings.embedding_set` and :mod:`cxrembed.embeddings.writer`, which describe
the layout. Loaders return ``(ids, vectors, config_hash, meta, weights_sha256)``.

The manifest records the SHA-256 of every shard file (``sha256: {file name: digest}``) next
to the shards' row counts; :func:`load_folder` checks them before reading, and
:func:`shard_problem` tells the resuming writer which shards to embed again.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from cxrembed._vectors import text_ids
from cxrembed.embeddings.config_hash import check_config_hash
from cxrembed.errors import EmbeddingsFileError
from cxrlabel.atomic import atomic_open, atomic_path
from cxrlabel.checksums import ALGORITHM, check_sha256, file_sha256, unverified

#: Manifest file name inside an embeddings folder.
MANIFEST = "embeddings.json"
#: ``format`` field of the manifest (and key of the Parquet schema metadata).
FORMAT = "cxrkit.embeddings"
#: Version of the layout; a reader refuses newer versions.
FORMAT_VERSION = 1
DTYPE = "float32"

Loaded = tuple[list[str], np.ndarray, "str | None", dict[str, Any], "str | None"]
_AGAIN = "run cxr embed again on the same folder (it embeds damaged shards again), or embed into a fresh folder"


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
    count: int,
    dim: int,
    config_hash: str | None,
    shards: list[dict[str, Any]],
    *,
    complete: bool,
    meta: dict[str, Any],
    weights_sha256: str | None = None,
) -> dict[str, Any]:
    stamp = now()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "count": count,
        "dim": dim,
        "dtype": DTYPE,
        "config_hash": config_hash,
        "weights_sha256": weights_sha256,
        "shards": shards,
        ALGORITHM: {},
        "complete": complete,
        "created": stamp,
        "updated": stamp,
        "cxrkit_version": _version(),
        "meta": dict(meta),
    }


def new_shard(manifest: dict[str, Any], folder: Path, vectors: str, ids: str, count: int) -> None:
    """List a written shard in the manifest, with its row count and its files' checksums."""
    manifest["shards"].append({"vectors": vectors, "ids": ids, "count": count})
    digests = manifest.setdefault(ALGORITHM, {})
    for name in (vectors, ids):
        digests[name] = file_sha256(folder / name)


def _digests(manifest: dict[str, Any]) -> dict[str, str]:
    digests = manifest.get(ALGORITHM)
    return digests if isinstance(digests, dict) else {}


def shard_problem(
    folder: Path, shard: dict[str, Any], dim: int, manifest: dict[str, Any]
) -> str | None:
    """Why a listed shard's files cannot be used as they are (checksum, size), or None.

    Missing files are :func:`check_resumable`'s to report. Shards without checksums (older
    folders) are checked by the size their ``.npy`` header and row count imply.
    """
    digests = _digests(manifest)
    names = [shard["vectors"], shard["ids"]]
    if all(name in digests for name in names):
        for name in names:
            if file_sha256(folder / name) != digests[name]:
                return f"{name} does not match its checksum"
        return None
    path = folder / shard["vectors"]
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            fmt = np.lib.format
            reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = reader(fh)
            offset = fh.tell()
    except (OSError, ValueError) as exc:
        return f"{shard['vectors']} is not a readable .npy file ({exc})"
    expected = offset + int(shard["count"]) * dim * np.dtype(DTYPE).itemsize
    if (
        shape != (int(shard["count"]), dim)
        or dtype != np.float32
        or path.stat().st_size != expected
    ):
        return (
            f"{shard['vectors']} holds {path.stat().st_size} bytes for shape {shape}; expected "
            f"{expected} for ({shard['count']}, {dim}) float32"
        )
    return None


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
    if (
        missing
        or not isinstance(shards, list)
        or not all(isinstance(s, dict) and {"vectors", "ids", "count"} <= set(s) for s in shards)
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
    manifest: dict[str, Any],
    folder: Path,
    dim: int,
    config_hash: str | None,
    weights_sha256: str | None = None,
) -> None:
    check_config_hash(
        manifest.get("config_hash"),
        config_hash,
        what=repr(str(folder)),
        fix="write to another folder, or delete this one (appending would mix two models)",
        compare_none=True,
        found_weights=manifest.get("weights_sha256"),
        expected_weights=weights_sha256,
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
    return (
        f"{str(target)!r} already holds embeddings; pass overwrite=True to replace them "
        "(EmbeddingSet.save), or choose another path"
    )


# --- reading --------------------------------------------------------------------------------


def check_shards(folder: Path, manifest: dict[str, Any]) -> None:
    """Every listed shard file matches its recorded checksum (a note when none are)."""
    digests = _digests(manifest)
    names = [shard[key] for shard in manifest["shards"] for key in ("vectors", "ids")]
    if any(name not in digests for name in names):
        unverified(f"embeddings folder {str(folder)!r}", "Embed again into a fresh folder")
    for name in names:
        if name in digests and (folder / name).is_file():
            check_sha256(folder / name, str(digests[name]), error=EmbeddingsFileError, fix=_AGAIN)


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
    return ids, stacked, manifest.get("config_hash"), dict(meta), manifest.get("weights_sha256")


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
                f"cannot read ids file {str(path)!r} ({exc}); expected UTF-8 text, one id per line"
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
    return id_list, vectors, None, {"source": str(path), "ids_file": str(ids)}, None


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
            f"{str(path)!r} has no id column {id_col!r}; found columns {names}. Fix: name the "
            "id column (EmbeddingSet.load(..., id_col=...)), or name it 'id' in the file"
        )
    list_cols = [
        f.name
        for f in table.schema
        if pa.types.is_list(f.type)
        or pa.types.is_fixed_size_list(f.type)
        or pa.types.is_large_list(f.type)
    ]
    if vector_col is None:
        if len(list_cols) != 1:
            raise EmbeddingsFileError(
                f"{str(path)!r} needs exactly one list/array column of vectors; found "
                f"{list_cols or 'none'} among {names}. Fix: name it (EmbeddingSet.load(..., vector_col=...))"
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
    return (
        text_ids(ids, str(path), EmbeddingsFileError),
        vectors,
        header.get("config_hash"),
        meta,
        header.get("weights_sha256"),
    )


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
    ids: list[str],
    vectors: np.ndarray,
    config_hash: str | None,
    meta: dict[str, Any],
    target: Path,
    weights_sha256: str | None = None,
) -> None:
    """One Parquet file: ``id`` and a fixed-size-list ``vector`` column, the manifest fields
    (but shards) in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dim = vectors.shape[1]
    values = pa.array(vectors.reshape(-1), type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(values, dim)
    header = {
        k: v
        for k, v in new_manifest(
            len(ids), dim, config_hash, [], complete=True, meta=meta, weights_sha256=weights_sha256
        ).items()
        if k != "shards"
    }
    table = pa.table({"id": pa.array(ids, type=pa.string()), "vector": column})
    table = table.replace_schema_metadata({FORMAT: json.dumps(header)})
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)
