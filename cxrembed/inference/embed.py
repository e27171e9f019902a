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

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from cxrembed.data.exclusions import CountsExcluded, exclusion, write_excluded
from cxrembed.data.image_check import warn_degenerate
from cxrembed.data.table import IMAGE_EXTENSIONS
from cxrembed.embeddings.embedding_set import EmbeddingWriter
from cxrembed.embeddings.sources import (
    EXCLUDED_FILE,
    SOURCES_FILE,
    clear_embeddings,
    read_sources,
    write_sources,
)
from cxrembed.errors import ImageReadError
from cxrembed.inference.encoder import Encoder
from cxrlabel.errors import InputError, OutputError
from cxrlabel.vocab import Interval

__all__ = [
    "SourceKind",
    "EmbedSummary",
    "embed_images",
    "read_sources",
    "SOURCES_FILE",
    "EXCLUDED_FILE",
]

SourceKind = Literal["auto", "images", "table", "cache"]
_KINDS = ("auto", "images", "table", "cache")
_DICOM_MAGIC = b"DICM"
_NON_FINITE = (
    "the model gave NaN or infinite values for this image (a diverged model, or "
    "pixels it cannot handle); check the run and the image"
)


@dataclass
class EmbedSummary(CountsExcluded):
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
    checkpoint: str = "best",
    allow_outside_images: bool = False,
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
    checkpoint : {"best", "last"}
        The run's weights: ``model.safetensors`` (best by validation) or the latest
        checkpoint (``last.safetensors``).
    allow_outside_images : bool
        Table source: read image paths that leave ``images_root`` (excluded by default, see
        :mod:`cxrembed.data.table`).

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
    for name, value, low in (
        ("batch_size", batch_size, 1),
        ("shard_size", shard_size, 1),
        ("num_workers", num_workers, 0),
    ):
        Interval(int, low, None).check(value, name)
    encoder = (
        run_dir
        if isinstance(run_dir, Encoder)
        else Encoder.from_run(run_dir, device=device, which=checkpoint)
    )
    chosen, items = _candidates(
        source,
        kind,
        encoder,
        images_root=images_root,
        image_col=image_col,
        id_col=id_col,
        allow_outside=allow_outside_images,
    )
    out = Path(out)
    if not resume:
        clear_embeddings(out)
    writer = _writer(encoder, Path(source), chosen, out, shard_size)
    done = writer.done_ids()
    todo = [i for i, item_id in enumerate(items.ids) if item_id not in done]
    excluded = list(items.excluded)
    embedded: list[int] = []
    shapes: list[tuple[str, int, int]] = []
    started = time.perf_counter()
    try:
        with writer:
            _embed_todo(
                items,
                todo,
                encoder,
                writer,
                batch_size=batch_size,
                num_workers=num_workers,
                checkpoint_seconds=checkpoint_seconds,
                progress=progress,
                embedded=embedded,
                excluded=excluded,
                shapes=shapes,
            )
    finally:
        # Whatever was written is valid: record its sources, and what was left out (unless
        # the disk that stopped the run refuses these too: its error is the one to show).
        with _unless_failing(OutputError):
            write_sources(out, {items.ids[p]: items.sources[p] for p in embedded})
            frame = write_excluded(out, excluded)
    warn_degenerate(shapes)
    return EmbedSummary(
        out=out,
        kind=chosen,
        candidates=len(items.ids) + len(items.excluded),
        embedded=len(embedded),
        already=len(items.ids) - len(todo),
        excluded=frame,
        total=len(done) + len(embedded),
        config_hash=encoder.config_hash,
        seconds=time.perf_counter() - started,
    )


def _writer(
    encoder: Encoder, source: Path, kind: str, out: Path, shard_size: int
) -> EmbeddingWriter:
    """The embeddings folder's writer, its meta saying which run embedded which source."""
    meta = {
        "run": encoder.source,
        "source": str(source.resolve()),
        "source_kind": kind,
        "image_size": encoder.image_size,
    }
    if Path(encoder.source).is_dir():  # cxr evaluate finds the run's split.csv through it
        meta["run_path"] = str(Path(encoder.source).resolve())
    return EmbeddingWriter(
        out,
        _dim(encoder),
        encoder.config_hash,
        shard_size,
        meta=meta,
        weights_sha256=encoder.weights_sha256,
    )


def _embed_todo(
    items: _Items,
    todo: list[int],
    encoder: Encoder,
    writer: EmbeddingWriter,
    *,
    batch_size: int,
    num_workers: int,
    checkpoint_seconds: float,
    progress: bool,
    embedded: list[int],
    excluded: list[Any],
    shapes: list[tuple[str, int, int]],
) -> None:
    """:func:`_embed_batches` over the items at ``todo``, under the ``embed`` progress bar."""
    loader = DataLoader(
        items.dataset(todo),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
    )
    with tqdm(
        total=len(todo),
        unit="img",
        desc="embed",
        file=sys.stderr,
        disable=not progress or not todo,
    ) as bar:
        _embed_batches(
            loader,
            encoder,
            writer,
            items,
            checkpoint_seconds,
            bar,
            embedded=embedded,
            excluded=excluded,
            shapes=shapes,
        )


@contextlib.contextmanager
def _unless_failing(kind: type[BaseException]) -> Iterator[None]:
    """Inside ``finally``: drop an error of ``kind`` when another is already propagating."""
    failing = sys.exc_info()[1] is not None
    try:
        yield
    except kind:
        if not failing:
            raise


def _embed_batches(
    loader: DataLoader,
    encoder: Encoder,
    writer: EmbeddingWriter,
    items: _Items,
    checkpoint_seconds: float,
    bar: Any,
    *,
    embedded: list[int],
    excluded: list[Any],
    shapes: list[tuple[str, int, int]],
) -> None:
    """Embed and write every batch; ``embedded``, ``excluded`` and ``shapes`` (of the images
    read) grow as it goes, so an interrupted run still records what it did."""

    def left_out(position: int, kind: str, reason: str) -> Any:
        return exclusion(
            items.rows[position], items.ids[position], items.sources[position], kind, reason
        )

    last_flush = time.perf_counter()
    for images, positions, failures, sizes in loader:
        excluded += [left_out(p, kind, reason) for p, kind, reason in failures]
        shapes += [
            (items.ids[p], rows, cols) for p, (rows, cols) in zip(positions, sizes, strict=True)
        ]
        if positions:
            vectors = encoder.encode(images)
            finite = np.isfinite(vectors).all(axis=1)
            excluded += [
                left_out(p, "non-finite-embedding", _NON_FINITE)
                for p, ok in zip(positions, finite, strict=True)
                if not ok
            ]
            good = [p for p, ok in zip(positions, finite, strict=True) if ok]
            if good:
                writer.append([items.ids[p] for p in good], vectors[finite])
                embedded += good
        bar.update(len(positions) + len(failures))
        if time.perf_counter() - last_flush > checkpoint_seconds:
            writer.flush()
            last_flush = time.perf_counter()


# ----------------------------------------------------------------------------- sources


@dataclass
class _Items:
    """Candidate images: ids, their source (file path or cache slot), table rows."""

    ids: list[str]
    sources: list[str]
    rows: list[int]  # table row, -1 for other sources
    excluded: list[Any]
    loader: Any  # (positions) -> Dataset

    def dataset(self, positions: Sequence[int]) -> Dataset:
        return self.loader(list(positions))


#: A read image: (position, prepared tensor or None, failure kind, reason, (rows, cols)).
_Item = tuple[int, "torch.Tensor | None", str, str, tuple[int, int]]


class _PositionItems(Dataset):
    """The images at ``positions`` of the table, prepared by the encoder's reader; the
    subclasses differ only in where the pixels come from."""

    def __init__(self, positions: list[int], encoder: Encoder) -> None:
        self.positions = positions
        self.reader = _PrepareOnly(encoder)

    def __len__(self) -> int:
        return len(self.positions)


class _FileItems(_PositionItems):
    """Reads and prepares image files; a failure becomes data (kind, reason), not an error,
    so one bad file never stops a DataLoader worker."""

    def __init__(self, positions: list[int], paths: list[str], encoder: Encoder) -> None:
        super().__init__(positions, encoder)
        self.paths = paths

    def __getitem__(self, index: int) -> _Item:
        position = self.positions[index]
        try:
            image = self.reader.read(self.paths[position])
            return position, self.reader.prepare(image), "", "", image.shape
        except ImageReadError as exc:
            return position, None, exc.kind, exc.reason, (0, 0)
        except InputError as exc:  # e.g. pixels outside [0, 1] from a foreign reader
            return position, None, "bad-pixels", str(exc), (0, 0)


class _PrepareOnly:
    """The reading/preprocessing half of an Encoder: what DataLoader workers get (the model
    is never pickled into them)."""

    def __init__(self, encoder: Encoder) -> None:
        self.reference = Encoder(
            torch.nn.Identity(),
            image_size=encoder.image_size,
            fit=encoder.fit,
            normalization=encoder.normalization,
            window=encoder.window,
        )

    def read(self, path: str) -> np.ndarray:
        return self.reference.read(path)

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        return self.reference.prepare(image)

    def prepare_batch(self, images: np.ndarray) -> torch.Tensor:
        return self.reference.prepare_batch(images)


class _CacheItems(_PositionItems):
    """Images from a ``cxr prepare`` cache, prepared like files."""

    def __init__(self, positions: list[int], cached: Any, encoder: Encoder) -> None:
        super().__init__(positions, encoder)
        self.cached = cached

    def __getitem__(self, index: int) -> _Item:
        position = self.positions[index]
        image = self.cached[position][0][0].numpy()
        return position, self.reader.prepare(image), "", "", image.shape

    def __getitems__(self, indices: list[int]) -> list[_Item]:
        """A DataLoader batch in one cache read and one normalisation (what the loader
        calls when it exists): per-image Python would cost a quarter of a 64 px forward."""
        positions = [self.positions[i] for i in indices]
        images = self.cached.load_batch(positions)
        prepared = self.reader.prepare_batch(images)
        shape = images.shape[1:]
        return [(p, prepared[k], "", "", shape) for k, p in enumerate(positions)]


def _collate(
    batch: list[_Item],
) -> tuple[torch.Tensor, list[int], list[tuple[int, str, str]], list[tuple[int, int]]]:
    good = [(p, t, shape) for p, t, _, _, shape in batch if t is not None]
    failures = [(p, k, r) for p, t, k, r, _ in batch if t is None]
    images = torch.stack([t for _, t, _ in good]) if good else torch.empty(0)
    return images, [p for p, _, _ in good], failures, [tuple(s) for _, _, s in good]


def _candidates(
    source: str | os.PathLike[str],
    kind: str,
    encoder: Encoder,
    *,
    images_root: Any,
    image_col: str | None,
    id_col: str | None,
    allow_outside: bool,
) -> tuple[str, _Items]:
    """The source's kind and its candidate images; a source without any is an error."""
    chosen = _source_kind(Path(source), kind)
    items = _collect(
        chosen,
        Path(source),
        images_root=images_root,
        image_col=image_col,
        id_col=id_col,
        encoder=encoder,
        allow_outside=allow_outside,
    )
    if not items.ids and not items.excluded:
        raise InputError(
            f"{str(source)!r} offered no image to embed; expected DICOM, PNG or JPEG files "
            f"({', '.join(IMAGE_EXTENSIONS)})"
        )
    return chosen, items


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
            raise InputError(
                f"{str(source)!r} is a folder; a table source must be a CSV or Parquet file"
            )
        if kind in ("images", "cache") and not source.is_dir():
            raise InputError(f"{str(source)!r} is a file; an {kind} source must be a folder")
        return kind
    if source.is_file():
        return "table"
    return "cache" if (source / "cache.json").is_file() else "images"


def _collect(
    kind: str,
    source: Path,
    *,
    images_root: Any,
    image_col: str | None,
    id_col: str | None,
    encoder: Encoder,
    allow_outside: bool = False,
) -> _Items:
    if kind != "table" and (images_root is not None or image_col or id_col):
        raise InputError(
            f"images_root, image_col and id_col describe a table source; {str(source)!r} is "
            f"an {kind} source. Remove them, or pass the labels table as the source"
        )
    if kind == "images":
        return _folder_items(source, encoder)
    if kind == "cache":
        return _cache_items(source, encoder)
    # A table: the one source the table options above describe.
    from cxrembed.data.table import join_images, read_table

    df = read_table(source, text_columns=(id_col, image_col))
    join = join_images(
        df, images_root, image_col=image_col, id_col=id_col, allow_outside=allow_outside
    )
    paths = [str(p.resolve()) for p in join.paths]
    return _Items(
        list(join.ids),
        paths,
        [int(r) for r in join.rows],
        join.excluded.to_dict("records"),
        lambda positions: _FileItems(positions, paths, encoder),
    )


def _folder_items(root: Path, encoder: Encoder) -> _Items:
    wanted = {e.lower() for e in IMAGE_EXTENSIONS}
    ids: list[str] = []
    paths: list[str] = []
    excluded: list[Any] = []
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
                excluded.append(
                    exclusion(
                        -1,
                        image_id,
                        path,
                        "duplicate-id",
                        f"id {image_id!r} already used by {first[image_id]}; "
                        "keep one file per name",
                    )
                )
                continue
            first[image_id] = str(path)
            ids.append(image_id)
            paths.append(str(path.resolve()))
    return _Items(
        ids,
        paths,
        [-1] * len(ids),
        excluded,
        lambda positions: _FileItems(positions, paths, encoder),
    )


def _cache_items(cache: Path, encoder: Encoder) -> _Items:
    from cxrembed.data.cache import CachedImageDataset, read_cache_index, read_cache_info

    info = read_cache_info(cache)
    index = read_cache_index(cache)
    ok = index[index["status"] == "ok"].sort_values("slot", kind="stable")
    failed = index[index["status"] != "ok"]
    excluded = [
        exclusion(-1, i, s, k, f"not in the cache: {r}")
        for i, s, k, r in zip(
            failed["id"], failed["source"], failed["status"], failed["reason"], strict=True
        )
    ]
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
    cached = CachedImageDataset(
        cache,
        ok["slot"].astype(np.int64).to_numpy(),
        ids,
        np.zeros((len(ids), 0), dtype=np.float32),
        [],
    )
    return _Items(
        ids,
        [str(s) for s in ok["source"].tolist()],
        [-1] * len(ids),
        excluded,
        lambda positions: _CacheItems(positions, cached, encoder),
    )


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
