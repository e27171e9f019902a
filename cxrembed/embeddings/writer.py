"""Incremental, resumable writing of an embeddings folder, shard by shard.

See :mod:`cxrembed.embeddings.embedding_set` for the layout. Each shard's files are written atomically
and then listed in the manifest with their checksums, so the manifest only ever names
finished shards: after a crash, :meth:`EmbeddingWriter.done_ids` says what is done and new
shards follow them. Resuming checks every listed shard first: one whose files no longer
match their checksums (or, in an older folder, their sizes) is dropped with a warning and
its images are embedded again.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from cxrembed._vectors import as_vectors, nonfinite_rows, text_ids
from cxrembed.embeddings._files import (
    MANIFEST,
    check_resumable,
    new_manifest,
    new_shard,
    now,
    read_ids,
    read_manifest,
    shard_problem,
    write_manifest,
)
from cxrembed.errors import EmbeddingsFileError, VectorInputError
from cxrlabel.atomic import atomic_open, atomic_path, writing
from cxrlabel.checksums import ALGORITHM
from cxrlabel.vocab import Interval

__all__ = ["EmbeddingWriter"]


class EmbeddingWriter:
    """Append embeddings to a folder shard by shard, so an interrupted ``cxr embed`` resumes.

    Parameters
    ----------
    path : path-like
        The embeddings folder (created if needed). If it already holds embeddings of the same
        ``dim`` and ``config_hash``, new shards are added after them.
    dim : int
        Vector dimension D.
    config_hash : str or None
        Config hash of the run making the vectors; an existing folder must match it.
    shard_size : int
        Rows per shard file; the last shard may be shorter.
    meta : dict, optional
        Stored in the manifest (merged over the existing one when resuming).
    weights_sha256 : str, optional
        Fingerprint of the weights making the vectors; an existing folder must match it too.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with EmbeddingWriter(folder, dim=2, config_hash="h", shard_size=2) as w:
    ...     w.append(["a", "b", "c"], np.ones((3, 2)))
    >>> sorted(EmbeddingWriter(folder, dim=2, config_hash="h").done_ids())
    ['a', 'b', 'c']
    >>> sorted(p.name for p in folder.glob("vectors-*"))
    ['vectors-00000.npy', 'vectors-00001.npy']
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        dim: int,
        config_hash: str | None,
        shard_size: int = 100_000,
        meta: dict[str, Any] | None = None,
        weights_sha256: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.dim = dim
        self.config_hash = config_hash
        self.weights_sha256 = weights_sha256
        self.shard_size = shard_size
        self.meta = meta
        self._manifest: dict[str, Any] | None = None
        self._seen: set[str] = set()
        self._buffer_ids: list[str] = []
        self._buffer_vectors: list[np.ndarray] = []

    def done_ids(self) -> set[str]:
        """Ids already written to finished shards (plus those appended since opening)."""
        self._open()
        return set(self._seen)

    def append(self, ids: Sequence[str], vectors: Any) -> None:
        """Buffer ``len(ids)`` vectors; full shards are written at once.

        Raises :class:`~cxrembed.errors.VectorInputError` for a bad shape, NaN rows, or an id
        written before (filter with :meth:`done_ids` when resuming).
        """
        self._open()
        batch_ids = text_ids(list(ids), "appended ids", VectorInputError)
        batch = as_vectors(vectors, name="appended vectors", allow_empty=True, finite=False)
        if batch.shape != (len(batch_ids), self.dim):
            raise VectorInputError(
                f"appended vectors have shape {batch.shape}; expected ({len(batch_ids)}, "
                f"{self.dim}): one row of dimension {self.dim} per id"
            )
        bad = nonfinite_rows(batch)
        if len(bad):
            raise VectorInputError(
                f"the vector of id {batch_ids[bad[0]]!r} holds NaN or infinite values "
                f"({len(bad)} such rows in this batch); nothing of the batch was written. Fix: "
                "check the image and the model (a NaN usually means a diverged model)"
            )
        again = [i for i in batch_ids if i in self._seen]
        if again:
            raise VectorInputError(
                f"id {again[0]!r} was already written to {str(self.path)!r} ({len(again)} such "
                "ids in this batch); nothing of the batch was written. Fix: skip the ids in "
                "done_ids() when resuming"
            )
        self._seen.update(batch_ids)
        self._buffer_ids += batch_ids
        self._buffer_vectors.append(batch)
        while len(self._buffer_ids) >= self.shard_size:
            self._write_shard(self.shard_size)

    def flush(self) -> None:
        """Write the buffered rows as a (short) shard now, e.g. every few minutes."""
        self._open()
        if self._buffer_ids:
            self._write_shard(len(self._buffer_ids))

    def close(self) -> int:
        """Flush and mark the folder complete; return the number of embeddings in it."""
        self.flush()
        assert self._manifest is not None
        self._manifest["complete"] = True
        write_manifest(self.path, self._manifest)
        return int(self._manifest["count"])

    def __enter__(self) -> EmbeddingWriter:
        self._open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:  # keep what was computed (it is valid), but leave the folder incomplete
            self.flush()

    def _open(self) -> None:
        if self._manifest is not None:
            return
        Interval(int, 1, None).check(self.dim, "dim", VectorInputError)
        Interval(int, 1, None).check(self.shard_size, "shard_size", VectorInputError)
        if (self.path / MANIFEST).is_file():
            manifest = read_manifest(self.path)
            check_resumable(
                manifest, self.path, int(self.dim), self.config_hash, self.weights_sha256
            )
            manifest["shards"] = self._usable_shards(manifest)
            manifest["count"] = sum(int(shard["count"]) for shard in manifest["shards"])
            for shard in manifest["shards"]:
                self._seen.update(read_ids(self.path / shard["ids"], shard["count"]))
            manifest["meta"] = {**manifest.get("meta", {}), **(self.meta or {})}
            manifest["complete"] = False
        elif self.path.exists() and not self.path.is_dir():
            raise EmbeddingsFileError(
                f"{str(self.path)!r} is a file; expected a folder for the embeddings"
            )
        else:
            manifest = new_manifest(
                0,
                int(self.dim),
                self.config_hash,
                [],
                complete=False,
                meta=self.meta or {},
                weights_sha256=self.weights_sha256,
            )
        with writing(self.path):
            self.path.mkdir(parents=True, exist_ok=True)
        self._manifest = manifest

    def _usable_shards(self, manifest: dict[str, Any]) -> list[dict[str, Any]]:
        """The listed shards whose files are intact; damaged ones are removed (warned), so
        their ids are not done and get embedded again."""
        kept = []
        for shard in manifest["shards"]:
            problem = shard_problem(self.path, shard, int(self.dim), manifest)
            if problem is None:
                kept.append(shard)
                continue
            warnings.warn(
                f"embeddings folder {str(self.path)!r}: shard {shard['vectors']} is damaged "
                f"({problem}); its {shard['count']} embeddings are made again",
                UserWarning,
                stacklevel=4,
            )
            for key in ("vectors", "ids"):
                (self.path / shard[key]).unlink(missing_ok=True)
                manifest.get(ALGORITHM, {}).pop(shard[key], None)
        return kept

    def _write_shard(self, n: int) -> None:
        assert self._manifest is not None
        vectors = (
            np.concatenate(self._buffer_vectors)
            if len(self._buffer_vectors) > 1
            else self._buffer_vectors[0]
        )
        ids = self._buffer_ids[:n]
        listed = {shard[key] for shard in self._manifest["shards"] for key in ("vectors", "ids")}
        index = len(self._manifest["shards"])
        while f"vectors-{index:05d}.npy" in listed or f"ids-{index:05d}.txt" in listed:
            index += 1  # a shard dropped as damaged left a gap: never reuse a listed name
        names = {"vectors": f"vectors-{index:05d}.npy", "ids": f"ids-{index:05d}.txt"}
        block = np.ascontiguousarray(vectors[:n])
        with (
            atomic_path(self.path / names["vectors"], need=block.nbytes) as tmp,
            open(tmp, "wb") as fh,
        ):
            np.save(fh, block, allow_pickle=False)
        with atomic_open(self.path / names["ids"]) as fh:
            fh.write("".join(f"{i}\n" for i in ids))
        new_shard(self._manifest, self.path, names["vectors"], names["ids"], n)
        self._manifest["count"] += n
        self._manifest["updated"] = now()
        write_manifest(self.path, self._manifest)  # the shard exists once listed here
        self._buffer_ids = self._buffer_ids[n:]
        self._buffer_vectors = [vectors[n:]] if len(self._buffer_ids) else []
