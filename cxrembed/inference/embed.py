"""Embed many images with a trained run: batched, resumable, sharded (``cxr embed``).

Three sources of images:

``images``
    a folder: every DICOM/PNG/JPEG file below it (recursively; extension-less files when
    they carry the DICOM ``DICM`` preamble). The id is the path relative to the folder
    without its extension, in POSIX form (``patient1/study2/view1``).
``table``
    a labels/metadata table (CSV or Parquet) with an image path column or an id column,
    joined to the images as :func:`cxrembed.data.table.join_images` does (ids as there).
``cache``
    a cache folder made by ``cxr prepare`` (ids as prepared).

Output: an embeddings folder (:mod:`cxrembed.embeddings.embedding_set`): sharded float32 vectors, ids
and the run's config hash, plus

* ``sources.csv``: ``id``, ``source`` (the image file each embedding came from; the search
  grid reads neighbour images from it);
* ``excluded.csv``: every image of the source not embedded, with the reason (``row`` is
  the table row for a table source, else empty; ``kind`` a short code, ``reason`` the
  detail). Nothing is dropped silently: every candidate is embedded, already done, or
  listed there.

Resuming: ids already in the folder are skipped (the folder must come from a run with the
same config hash); buffered vectors are written as a shard every ``checkpoint_seconds`` and
on Ctrl-C or an error, so an interrupted run loses at most that much work. Unreadable
images are tried again on the next run (they may have been fixed).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from cxrembed.data.table import EXCLUDED_COLUMNS, IMAGE_EXTENSIONS, excluded_frame, exclusion
from cxrembed.embeddings.embedding_set import MANIFEST, EmbeddingWriter
from cxrembed.errors import ImageReadError
from cxrembed.inference.encoder import Encoder
from cxrlabel.atomic import atomic_path
from cxrlabel.errors import InputError

__all__ = ["SourceKind", "EmbedSummary", "embed_images", "read_sources", "SOURCES_FILE",
           "EXCLUDED_FILE"]

SourceKind = Literal["auto", "images", "table", "cache"]
#: File of an embeddings folder mapping each id to its image file.
SOURCES_FILE = "sources.csv"
#: File of an embeddings folder listing the images not embedded, with the reason.
EXCLUDED_FILE = "excluded.csv"
_KINDS = ("auto", "images", "table", "cache")
_DICOM_MAGIC = b"DICM"
_NON_FINITE = ("the model gave NaN or infinite values for this image (a diverged model, or "
               "pixels it cannot handle); check the run and the image")


@dataclass
class EmbedSummary:
    """What one :func:`embed_images` run did; every candidate image is counted once.

    Attributes
    ----------
    out : pathlib.Path
        The embeddings folder.
    kind : str
        ``images``, ``table`` or ``cache``.
    candidates : int
        Images (or table rows) the source offered.
    embedded : int
        Embedded by this run.
    already : int
        Skipped because their id was already in the folder (resume).
    excluded : pandas.DataFrame
        The others, with the reason (also in ``out/excluded.csv``).
    total : int
        Embeddings in the folder at the end.
    config_hash : str or None
    seconds : float
        Wall time of the embedding loop.
    """

    out: Path
    kind: str
    candidates: int
    embedded: int
    already: int
    excluded: pd.DataFrame = field(repr=False)
    total: int = 0
    config_hash: str | None = None
    seconds: float = 0.0

    @property
    def reasons(self) -> dict[str, int]:
        """Excluded images by kind (``corrupt``, ``missing``...), most frequent first."""
        return dict(Counter(self.excluded["kind"].tolist()).most_common())

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else float("nan")


def embed_images(
    run_dir: str | os.PathLike[str] | Encoder,
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    kind: SourceKind = "auto",
    images_root: str | os.PathLike[str] | None = None,
    image_col: str | None = None,
    id_col: str | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    resume: bool = True,
    shard_size: int = 100_000,
    checkpoint_seconds: float = 120.0,
    device: str | None = "auto",
    progress: bool = True,
) -> EmbedSummary:
    """Embed every image of ``source`` with the run in ``run_dir`` into the folder ``out``.

    Parameters
    ----------
    run_dir : path-like or Encoder
        A run folder from ``cxr train`` (or an :class:`~cxrembed.inference.encoder.Encoder`).
    source : path-like
        Images folder, labels table, or cache folder (see the module docstring).
    out : path-like
        Embeddings folder to create or resume.
    kind : {"auto", "images", "table", "cache"}
        What ``source`` is; ``auto``: a file is a table, a folder with ``cache.json`` a
        cache, another folder an images folder.
    images_root, image_col, id_col
        Table source only: how rows find their image (:mod:`cxrembed.data.table`).
    batch_size, num_workers : int
        DataLoader settings (workers decode images in parallel).
    resume : bool
        Skip ids already in ``out``; False starts again, replacing the embeddings there.
    shard_size : int
        Embeddings per shard file.
    checkpoint_seconds : float
        Write buffered embeddings at least this often.
    device : str, optional
        ``auto`` (CUDA when present), ``cpu``, ``cuda:0``...
    progress : bool
        Progress bar on stderr.

    Returns
    -------
    EmbedSummary

    Raises
    ------
    InputError
        Bad source or options, or no image at all to embed.
    ConfigHashMismatchError
        ``out`` holds embeddings of another run (resume refused).
    """
    if batch_size < 1 or num_workers < 0 or shard_size < 1:
        raise InputError(
            f"batch_size and shard_size must be >= 1 and num_workers >= 0; got batch_size="
            f"{batch_size}, shard_size={shard_size}, num_workers={num_workers}"
        )
    encoder = run_dir if isinstance(run_dir, Encoder) else Encoder.from_run(run_dir, device=device)
    chosen = _source_kind(Path(source), kind)
    items = _collect(chosen, Path(source), images_root=images_root, image_col=image_col,
                     id_col=id_col, encoder=encoder)
    if not items.ids and not items.excluded:
        raise InputError(
            f"{str(source)!r} offered no image to embed; expected DICOM, PNG or JPEG files "
            f"({', '.join(IMAGE_EXTENSIONS)})"
        )
    out = Path(out)
    if not resume:
        _clear(out)
    meta = {"run": encoder.source, "source": str(Path(source).resolve()), "source_kind": chosen,
            "image_size": encoder.image_size}
    writer = EmbeddingWriter(out, _dim(encoder), encoder.config_hash, shard_size, meta=meta)
    done = writer.done_ids()
    todo = [i for i, item_id in enumerate(items.ids) if item_id not in done]
    excluded = list(items.excluded)
    embedded: list[int] = []
    started = time.perf_counter()
    try:
        with writer:
            last_flush = time.perf_counter()
            loader = DataLoader(items.dataset(todo), batch_size=batch_size, shuffle=False,
                                num_workers=num_workers, collate_fn=_collate)
            bar = tqdm(total=len(todo), unit="img", desc="embed", file=sys.stderr,
                       disable=not progress or not todo)
            try:
                for images, positions, failures in loader:
                    excluded += [exclusion(items.rows[p], items.ids[p], items.sources[p],
                                           kind_, reason) for p, kind_, reason in failures]
                    if positions:
                        vectors = encoder.encode(images)
                        finite = np.isfinite(vectors).all(axis=1)
                        excluded += [exclusion(items.rows[p], items.ids[p], items.sources[p],
                                               "non-finite-embedding", _NON_FINITE)
                                     for p, ok in zip(positions, finite, strict=True) if not ok]
                        positions = [p for p, ok in zip(positions, finite, strict=True) if ok]
                        if positions:
                            writer.append([items.ids[p] for p in positions], vectors[finite])
                            embedded += positions
                    bar.update(len(positions) + len(failures))
                    if time.perf_counter() - last_flush > checkpoint_seconds:
                        writer.flush()
                        last_flush = time.perf_counter()
            finally:
                bar.close()
    finally:
        # Whatever was written is valid: record its sources, and what was left out.
        _write_sources(out, {items.ids[p]: items.sources[p] for p in embedded})
        frame = _excluded_frame(excluded)
        with atomic_path(out / EXCLUDED_FILE) as tmp:
            frame.to_csv(tmp, index=False)
    return EmbedSummary(
        out=out, kind=chosen, candidates=len(items.ids) + len(items.excluded),
        embedded=len(embedded), already=len(items.ids) - len(todo), excluded=frame,
        total=len(done) + len(embedded), config_hash=encoder.config_hash,
        seconds=time.perf_counter() - started,
    )


def read_sources(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """``folder/sources.csv`` as a DataFrame (``id``, ``source``), empty when absent."""
    path = Path(folder) / SOURCES_FILE
    if not path.is_file():
        return pd.DataFrame({"id": pd.Series(dtype="string"),
                             "source": pd.Series(dtype="string")})
    return pd.read_csv(path, dtype="string", keep_default_na=False)


# ----------------------------------------------------------------------------- sources


@dataclass
class _Items:
    """Candidate images: ids, their source (file path or cache slot), table rows."""

    ids: list[str]
    sources: list[str]
    rows: list[int]  # table row, -1 for other sources
    excluded: list[dict[str, Any]]
    loader: Any  # (positions) -> Dataset

    def dataset(self, positions: Sequence[int]) -> Dataset:
        return self.loader(list(positions))


class _FileItems(Dataset):
    """Reads and prepares image files; a failure becomes data (kind, reason), not an error,
    so one bad file never stops a DataLoader worker."""

    def __init__(self, positions: list[int], paths: list[str], encoder: Encoder) -> None:
        self.positions = positions
        self.paths = paths
        self.reader = _PrepareOnly(encoder)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str, str]:
        position = self.positions[index]
        try:
            return position, self.reader.prepare(self.reader.read(self.paths[position])), "", ""
        except ImageReadError as exc:
            return position, None, exc.kind, exc.reason
        except InputError as exc:  # e.g. pixels outside [0, 1] from a foreign reader
            return position, None, "bad-pixels", str(exc)


class _PrepareOnly:
    """The reading/preprocessing half of an Encoder: what DataLoader workers get (the model
    is never pickled into them)."""

    def __init__(self, encoder: Encoder) -> None:
        self.reference = Encoder(torch.nn.Identity(), image_size=encoder.image_size,
                                 fit=encoder.fit, normalization=encoder.normalization,
                                 window=encoder.window)

    def read(self, path: str) -> np.ndarray:
        return self.reference.read(path)

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        return self.reference.prepare(image)


class _CacheItems(Dataset):
    """Images from a ``cxr prepare`` cache, prepared like files."""

    def __init__(self, positions: list[int], cached: Any, encoder: Encoder) -> None:
        self.positions = positions
        self.cached = cached
        self.prepare = _PrepareOnly(encoder).prepare

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str, str]:
        position = self.positions[index]
        image = self.cached[position][0][0].numpy()
        return position, self.prepare(image), "", ""


def _collate(
    batch: list[tuple[int, torch.Tensor | None, str, str]],
) -> tuple[torch.Tensor, list[str], list[tuple[int, str, str]]]:
    good = [(p, t) for p, t, _, _ in batch if t is not None]
    failures = [(p, k, r) for p, t, k, r in batch if t is None]
    images = torch.stack([t for _, t in good]) if good else torch.empty(0)
    return images, [p for p, _ in good], failures


def _source_kind(source: Path, kind: str) -> str:
    if kind not in _KINDS:
        raise InputError(f"kind must be one of {', '.join(_KINDS)}; got {kind!r}")
    if not source.exists():
        raise InputError(
            f"{str(source)!r} not found; expected an images folder, a labels table or a cache "
            "folder (cxr prepare)"
        )
    if kind != "auto":
        if kind == "table" and not source.is_file():
            raise InputError(f"{str(source)!r} is a folder; a table source must be a CSV or "
                             "Parquet file")
        if kind in ("images", "cache") and not source.is_dir():
            raise InputError(f"{str(source)!r} is a file; an {kind} source must be a folder")
        return kind
    if source.is_file():
        return "table"
    return "cache" if (source / "cache.json").is_file() else "images"


def _collect(kind: str, source: Path, *, images_root: Any, image_col: str | None,
             id_col: str | None, encoder: Encoder) -> _Items:
    if kind != "table" and (images_root is not None or image_col or id_col):
        raise InputError(
            f"images_root, image_col and id_col describe a table source; {str(source)!r} is "
            f"an {kind} source. Remove them, or pass the labels table as the source"
        )
    if kind == "images":
        return _folder_items(source, encoder)
    if kind == "table":
        return _table_items(source, images_root, image_col, id_col, encoder)
    return _cache_items(source, encoder)


def _folder_items(root: Path, encoder: Encoder) -> _Items:
    wanted = {e.lower() for e in IMAGE_EXTENSIONS}
    ids: list[str] = []
    paths: list[str] = []
    excluded: list[dict[str, Any]] = []
    first: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            suffix = path.suffix.lower()
            if suffix not in wanted and not (suffix == "" and _has_dicom_preamble(path)):
                continue
            image_id = path.relative_to(root).with_suffix("").as_posix()
            if image_id in first:
                excluded.append(exclusion(-1, image_id, path, "duplicate-id",
                                          f"id {image_id!r} already used by {first[image_id]}; "
                                          "keep one file per name"))
                continue
            first[image_id] = str(path)
            ids.append(image_id)
            paths.append(str(path.resolve()))
    return _Items(ids, paths, [-1] * len(ids), excluded,
                  lambda positions: _FileItems(positions, paths, encoder))


def _table_items(table: Path, images_root: Any, image_col: str | None, id_col: str | None,
                 encoder: Encoder) -> _Items:
    from cxrembed.data.table import join_images, read_table

    df = read_table(table, text_columns=(id_col, image_col))
    join = join_images(df, images_root, image_col=image_col, id_col=id_col)
    paths = [str(p.resolve()) for p in join.paths]
    return _Items(list(join.ids), paths, [int(r) for r in join.rows],
                  join.excluded.to_dict("records"),
                  lambda positions: _FileItems(positions, paths, encoder))


def _cache_items(cache: Path, encoder: Encoder) -> _Items:
    from cxrembed.data.cache import CachedImageDataset, read_cache_index, read_cache_info

    info = read_cache_info(cache)
    index = read_cache_index(cache)
    ok = index[index["status"] == "ok"].sort_values("slot", kind="stable")
    failed = index[index["status"] != "ok"]
    excluded = [exclusion(-1, i, s, k, f"not in the cache: {r}") for i, s, k, r in
                zip(failed["id"], failed["source"], failed["status"], failed["reason"],
                    strict=True)]
    if int(info["size"]) < encoder.image_size:
        warnings.warn(
            f"the cache {str(cache)!r} holds {info['size']} px images but the run takes "
            f"{encoder.image_size} px: they are upsampled (blurrier than the training images). "
            f"Prepare a cache of at least {encoder.image_size} px",
            stacklevel=3,
        )
    if info.get("fit") != encoder.fit:
        warnings.warn(
            f"the cache {str(cache)!r} was prepared with fit={info.get('fit')!r} but the run "
            f"uses fit={encoder.fit!r}: the geometry differs from training",
            stacklevel=3,
        )
    ids = [str(i) for i in ok["id"].tolist()]
    cached = CachedImageDataset(cache, ok["slot"].astype(np.int64).to_numpy(), ids,
                                np.zeros((len(ids), 0), dtype=np.float32), [])
    return _Items(ids, [str(s) for s in ok["source"].tolist()], [-1] * len(ids), excluded,
                  lambda positions: _CacheItems(positions, cached, encoder))


def _has_dicom_preamble(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == _DICOM_MAGIC
    except OSError:
        return False


# ----------------------------------------------------------------------------- output


def _dim(encoder: Encoder) -> int:
    dim = getattr(encoder.model, "embedding_dim", None)
    if isinstance(dim, int):
        return dim
    probe = torch.zeros(1, 1, encoder.image_size, encoder.image_size)
    return int(encoder.encode(probe).shape[1])


def _write_sources(out: Path, new: dict[str, str]) -> None:
    if not new and (out / SOURCES_FILE).is_file():
        return
    old = read_sources(out)
    frame = pd.concat([old[~old["id"].isin(list(new))],
                       pd.DataFrame({"id": list(new), "source": list(new.values())})],
                      ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / SOURCES_FILE) as tmp:
        frame.to_csv(tmp, index=False)


def _excluded_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = excluded_frame(records) if records else pd.DataFrame(columns=EXCLUDED_COLUMNS)
    frame["row"] = frame["row"].astype("Int64").mask(frame["row"] < 0)
    return frame


def _clear(out: Path) -> None:
    """Remove the embeddings of an earlier run (only the files cxr embed writes)."""
    if not out.is_dir():
        return
    names = {MANIFEST, SOURCES_FILE, EXCLUDED_FILE, "vectors.npy", "ids.parquet"}
    for path in out.iterdir():
        if path.name in names or (path.is_file() and (
                (path.name.startswith("vectors-") and path.suffix == ".npy")
                or (path.name.startswith("ids-") and path.suffix == ".txt"))):
            path.unlink()
