"""The embeddings file contract: ids + float32 vectors + the config hash of the run that made them.

An embeddings folder is what ``cxr embed`` writes and what ``cxr search``, ``cxr evaluate``
and ``cxr predict-outcome`` read::

    embeddings/
      embeddings.json    manifest: format, count, dim, dtype, config_hash, weights_sha256,
                         shards (files, row count, SHA-256 of each file), created, cxrkit
                         version, complete, meta (run path, model...)
      vectors.npy        float32 N x D            <- EmbeddingSet.save
      ids.parquet        one string column "id", same order
    or, written shard by shard by EmbeddingWriter (resumable, for millions of images):
      vectors-00000.npy  ids-00000.txt  vectors-00001.npy  ids-00001.txt ...

Every file is written atomically, and the manifest is rewritten after each shard and only
lists shards that are complete: an interrupted run leaves a folder that says what is done, and
:meth:`EmbeddingWriter.done_ids` resumes from it. A folder whose writer was not closed is
marked ``complete: false`` and refused by :meth:`EmbeddingSet.load` unless asked for.
Loading checks each shard file against its checksum, so a damaged or replaced file is
refused with its name (folders written before checksums existed load with a note).

People bringing their own vectors can load a ``.npy`` file (N x D) with an ids text file
(one id per line, same order), or a Parquet file with an ``id`` column and one list/array
vector column; :meth:`EmbeddingSet.save` also writes that Parquet form when the path ends in
``.parquet``.

Examples
--------
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp()) / "emb"
>>> EmbeddingSet(["a", "b"], np.eye(2, 3, dtype=np.float32), "abc123").save(folder)
>>> loaded = EmbeddingSet.load(folder)
>>> loaded.ids, loaded.vectors.shape, loaded.config_hash
(['a', 'b'], (2, 3), 'abc123')
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxrembed._vectors import as_vectors, nonfinite_rows, text_ids
from cxrembed.embeddings._files import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    check_shards,
    exists_message,
    is_parquet,
    load_folder,
    load_npy,
    load_parquet,
    new_manifest,
    new_shard,
    read_manifest,
    write_ids_parquet,
    write_manifest,
    write_parquet,
)
from cxrembed.embeddings.config_hash import check_config_hash
from cxrembed.embeddings.writer import EmbeddingWriter
from cxrembed.errors import EmbeddingsFileError
from cxrlabel.atomic import atomic_path, writing

__all__ = ["EmbeddingSet", "EmbeddingWriter", "MANIFEST", "FORMAT", "FORMAT_VERSION"]


@dataclass(eq=False)
class EmbeddingSet:
    """Embedding vectors with their ids and the config hash of the run that made them.

    Attributes
    ----------
    ids : list of str
        One unique id per vector (image path or id, as in the labels table).
    vectors : numpy.ndarray
        float32, N x D, finite.
    config_hash : str, optional
        Hash of the run configuration (model + preprocessing); None for foreign vectors.
    meta : dict
        Free JSON-able information: run folder, checkpoint, backbone...
    weights_sha256 : str, optional
        Fingerprint of the weights that made the vectors (None for foreign vectors).

    The constructor only stores its arguments; :meth:`check` validates them (``save`` and
    ``load`` call it).
    """

    ids: list[str]
    vectors: np.ndarray
    config_hash: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        """Number of dimensions D."""
        return int(np.shape(self.vectors)[1])

    def vectors_for(self, ids: Iterable[Any]) -> np.ndarray:
        """The vectors in the order of ``ids`` (a table's rows), so that row i of the result
        belongs to ``ids[i]`` whatever order the embedding loop wrote them in.

        Raises :class:`~cxrembed.errors.EmbeddingsFileError` naming the first id the set
        does not hold.

        Examples
        --------
        >>> emb = EmbeddingSet(["a", "b"], np.eye(2, dtype=np.float32))
        >>> emb.vectors_for(["b", "a", "b"]).tolist()
        [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
        """
        position = {image_id: i for i, image_id in enumerate(self.ids)}
        wanted = [str(i) for i in ids]
        absent = [i for i in wanted if i not in position]
        if absent:
            raise EmbeddingsFileError(
                f"no embedding for id {absent[0]!r} ({len(absent)} of {len(wanted)} ids "
                "absent); expected every id in the set. Fix: embed those images first"
            )
        return np.asarray(self.vectors)[[position[i] for i in wanted]]

    def check(self, source: str = "embeddings") -> EmbeddingSet:
        """Validate and normalise in place (float32 C-contiguous, str ids); return self.

        Raises :class:`~cxrembed.errors.EmbeddingsFileError` naming ``source`` for a bad
        shape, NaN / infinite rows, or missing, blank or repeated ids.
        """
        self.vectors = as_vectors(
            self.vectors,
            name=f"{source}: vectors",
            error=EmbeddingsFileError,
            allow_empty=True,
            finite=False,
        )
        self.ids = text_ids(self.ids, source, EmbeddingsFileError)
        if len(self.ids) != len(self.vectors):
            raise EmbeddingsFileError(
                f"{source}: {len(self.ids)} ids for {len(self.vectors)} vectors; expected one "
                "id per vector row. Fix: give the ids in the same order as the vectors"
            )
        bad = nonfinite_rows(self.vectors)
        if len(bad):
            raise EmbeddingsFileError(
                f"{source}: the vector of id {self.ids[bad[0]]!r} (row {bad[0]}) holds NaN or "
                f"infinite values ({len(bad)} such rows); expected finite floats. Fix: re-embed "
                "those images (a NaN usually means a diverged model or an unreadable image)"
            )
        if self.config_hash is not None and not isinstance(self.config_hash, str):
            raise EmbeddingsFileError(
                f"{source}: config_hash must be a string or None; got {self.config_hash!r}"
            )
        return self

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write a folder (``vectors.npy``, ``ids.parquet``, ``embeddings.json``), or one
        Parquet file when ``path`` ends in ``.parquet``; every file atomically.

        An existing embeddings folder or file is replaced only with ``overwrite=True``.
        """
        target = Path(path)
        self.check(str(target))
        if is_parquet(target):
            if target.exists() and not overwrite:
                raise EmbeddingsFileError(exists_message(target))
            write_parquet(
                self.ids, self.vectors, self.config_hash, self.meta, target, self.weights_sha256
            )
            return
        old = read_manifest(target) if (target / MANIFEST).is_file() else None
        if old is not None and not overwrite:
            raise EmbeddingsFileError(exists_message(target))
        with writing(target):
            target.mkdir(parents=True, exist_ok=True)
        with (
            atomic_path(target / "vectors.npy", need=self.vectors.nbytes) as tmp,
            open(tmp, "wb") as fh,
        ):
            np.save(fh, self.vectors, allow_pickle=False)
        write_ids_parquet(self.ids, target / "ids.parquet")
        manifest = new_manifest(
            len(self),
            self.dim,
            self.config_hash,
            [],
            complete=True,
            meta=self.meta,
            weights_sha256=self.weights_sha256,
        )
        new_shard(manifest, target, "vectors.npy", "ids.parquet", len(self))
        write_manifest(target, manifest)
        if old is not None:  # files of the replaced set that the new one does not use
            keep = {"vectors.npy", "ids.parquet"}
            for shard in old["shards"]:
                for name in (shard["vectors"], shard["ids"]):
                    if name not in keep:
                        (target / name).unlink(missing_ok=True)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        ids: str | os.PathLike[str] | None = None,
        id_col: str = "id",
        vector_col: str | None = None,
        expect_config_hash: str | None = None,
        allow_incomplete: bool = False,
        expect_weights_sha256: str | None = None,
    ) -> EmbeddingSet:
        """Read embeddings from a folder, a ``.npy`` + ids text file, or a Parquet file.

        Parameters
        ----------
        path : path-like
            An embeddings folder (with ``embeddings.json``), a ``.npy`` file or a ``.parquet``
            file.
        ids : path-like, optional
            For a ``.npy``: text file with one id per line, in the order of the rows.
        id_col, vector_col : str
            For a Parquet file: the id column, and the list/array column of vectors (default:
            the only list column).
        expect_config_hash : str, optional
            Refuse embeddings made by a run with another config hash.
        allow_incomplete : bool
            Read a folder whose writer was interrupted (only its finished shards).
        expect_weights_sha256 : str, optional
            Refuse embeddings made with other weights (same settings, other training).

        Returns
        -------
        EmbeddingSet
            Checked: float32 N x D, finite, unique ids.

        Examples
        --------
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> np.save(d / "v.npy", np.ones((2, 4)))
        >>> _ = (d / "ids.txt").write_text("x.png\\ny.png\\n")
        >>> EmbeddingSet.load(d / "v.npy", ids=d / "ids.txt").ids
        ['x.png', 'y.png']
        """
        source = Path(path)
        if ids is not None and source.suffix.lower() != ".npy":
            raise EmbeddingsFileError(
                f"an ids file ({str(ids)!r}) only goes with a .npy vectors file; {str(source)!r} "
                "carries its own ids"
            )
        if source.is_dir():
            loaded = load_folder(source, allow_incomplete)
        elif not source.exists():
            raise EmbeddingsFileError(
                f"embeddings {str(source)!r} not found; expected an embeddings folder (from "
                "cxr embed), a .npy file with an ids file, or a .parquet file"
            )
        elif source.suffix.lower() == ".npy":
            loaded = load_npy(source, ids)
        elif is_parquet(source):
            loaded = load_parquet(source, id_col, vector_col)
        else:
            raise EmbeddingsFileError(
                f"cannot read embeddings from {str(source)!r}: expected an embeddings folder, a "
                f".npy file (with an ids file) or a .parquet file; got a {source.suffix or 'no'} "
                "extension"
            )
        result = cls(*loaded).check(str(source))
        if source.is_dir():  # after the checks of shapes, values and ids, which say more
            check_shards(source, read_manifest(source))
        check_config_hash(
            result.config_hash,
            expect_config_hash,
            what=f"embeddings {str(source)!r}",
            fix="embed the images again with this run, or point at the embeddings of the right run",
            found_weights=result.weights_sha256,
            expected_weights=expect_weights_sha256,
        )
        return result
