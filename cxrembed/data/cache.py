"""The preprocessed image cache: decode every image once, read it fast ever after.

Layout of ``cache_dir``::

    cache.json     settings: version, size, dtype, fit, window, count (slots), id_col,
                   image_col, images_root; a run with other settings refuses to mix
    images.u8      raw C-order array, ``count`` x size x size (``images.u16`` for uint16),
                   read with numpy.memmap; pixel = round(value in [0, 1] * 255 or 65535)
    index.csv      one row per image tried: slot (-1 when it failed), id, source (absolute
                   path), bytes, mtime_ns, status (``ok`` or the failure kind), reason,
                   orig_rows, orig_cols, source_bits, photometric, view_position, intensity
    excluded.csv   rows of the last run that are not in the cache: row, id, path, kind,
                   reason (every table row is either cached or listed here)

Geometry: each image is fitted into the square by :func:`~cxrembed.data.square.fit_square`
(default ``"letterbox"``: aspect ratio kept, shorter side zero-padded; ``"crop"``:
centre crop), with the reader's [0, 1] convention (:mod:`cxrembed.io.image`).

Resumable: an image whose id is in the index, with the same source path, size in bytes
and modification time, is not decoded again: cached ones count as ``already``, failed ones
are excluded again with their recorded reason. A changed (or fixed) file is decoded again,
into its old slot when it had one. ``index.csv``, ``cache.json`` and ``excluded.csv`` are written
atomically, after the image array is flushed (every ``checkpoint_seconds`` and at the end,
also on Ctrl-C or an error), so the index never points at unwritten pixels; the image
array itself is written in place (rewriting gigabytes per run would defeat resuming). Run
one ``prepare`` per cache folder at a time.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxrembed.data.dataset import _LabeledImages, no_usable_rows
from cxrembed.data.decode_pool import decode_in_order
from cxrembed.data.exclusions import CountsExcluded, excluded_frame, exclusion, write_excluded
from cxrembed.data.image_check import warn_degenerate
from cxrembed.data.labels import LabelOptions, status_exclusions
from cxrembed.data.square import STORAGE_DTYPES, Fit, decode_or_reason, dequantize
from cxrembed.data.table import (
    join_images,
    read_table,
    row_ids,
    table_source,
)
from cxrembed.io.image import Window
from cxrlabel.atomic import atomic_path, check_free, writing
from cxrlabel.errors import InputError, OutputError
from cxrlabel.vocab import FIT, Interval, check_window

__all__ = [
    "CACHE_VERSION",
    "INDEX_COLUMNS",
    "PrepareSummary",
    "prepare_cache",
    "read_cache_info",
    "read_cache_index",
    "CachedImageDataset",
]

CACHE_VERSION = 1
INDEX_COLUMNS = [
    "slot",
    "id",
    "source",
    "bytes",
    "mtime_ns",
    "status",
    "reason",
    "orig_rows",
    "orig_cols",
    "source_bits",
    "photometric",
    "view_position",
    "intensity",
]
_SETTINGS = ("version", "size", "dtype", "fit", "window")
_TEXT_COLUMNS = ("id", "source", "status", "reason", "photometric", "view_position", "intensity")
_NUMBER_COLUMNS = tuple(c for c in INDEX_COLUMNS if c not in _TEXT_COLUMNS)


@dataclass
class PrepareSummary(CountsExcluded):
    """What one :func:`prepare_cache` run did; every table row is counted exactly once.

    Attributes
    ----------
    cache_dir : pathlib.Path
    rows : int
        Rows in the input table.
    decoded : int
        Images decoded and stored by this run.
    already : int
        Rows skipped because their image was already cached (unchanged). Rows whose
        unchanged file failed before are not decoded again; they are in ``excluded``.
    excluded : pandas.DataFrame
        Rows not cached, with the reason (also in ``cache_dir/excluded.csv``).
    seconds : float
        Wall time of the decoding stage.
    """

    cache_dir: Path
    rows: int
    decoded: int
    already: int
    excluded: pd.DataFrame = field(repr=False)
    seconds: float = 0.0

    @property
    def usable(self) -> int:
        """Rows whose image is in the cache."""
        return self.decoded + self.already


def prepare_cache(
    table: str | os.PathLike[str] | pd.DataFrame,
    images_root: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str],
    *,
    image_col: str | None = None,
    id_col: str | None = None,
    size: int = 256,
    dtype: str = "uint8",
    fit: Fit = "letterbox",
    window: Window = "auto",
    jobs: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    checkpoint_seconds: float = 30.0,
    allow_outside_images: bool = False,
) -> PrepareSummary:
    """Decode, fit and store every image of a table in ``cache_dir`` (see module doc).

    Parameters
    ----------
    table : path or DataFrame
        Any table with an image path column or an id column.
    images_root : path, optional
        Folder of the images (default: the table's folder, with ``image_col``).
    cache_dir : path
        Created when missing; an existing cache with the same settings is resumed.
    image_col, id_col : str, optional
        How rows find their image (see :mod:`cxrembed.data.table`).
    size : int
        Side of the stored square, in pixels.
    dtype : {"uint8", "uint16"}
        Storage type (uint16 keeps 16-bit detail at twice the space).
    fit : {"letterbox", "crop"}
    window : see :func:`cxrembed.io.image.read_image`.
    jobs : int
        Worker processes (0: all CPU cores; 1: decode in this process).
    overwrite : bool
        Delete an existing cache with other settings instead of refusing.
    progress : bool
        Show a progress bar on stderr.
    checkpoint_seconds : float
        How often finished work is made durable (index written).
    allow_outside_images : bool
        Read image paths that leave ``images_root`` (excluded by default, see
        :mod:`cxrembed.data.table`).

    Returns
    -------
    PrepareSummary

    Raises
    ------
    InputError
        Bad table/columns/settings, a cache with other settings, or no usable image at all
        (``excluded.csv`` is written first, so the reasons can be read).

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> Image.new("L", (20, 10), 255).save(root / "a.png")
    >>> t = pd.DataFrame({"file": ["a.png", "gone.png"]})
    >>> s = prepare_cache(t, root, root / "cache", image_col="file", size=8, progress=False)
    >>> s.decoded, s.already, s.reasons
    (1, 0, {'missing': 1})
    >>> prepare_cache(t, root, root / "cache", image_col="file", size=8,
    ...               progress=False).already
    1
    """
    settings = _settings(size, dtype, fit, window)
    cache = Path(cache_dir)
    df = read_table(table, text_columns=(id_col, image_col))
    join = join_images(
        df, images_root, image_col=image_col, id_col=id_col, allow_outside=allow_outside_images
    )
    existed = cache.exists()
    info = _open_settings(cache, settings, overwrite)
    info.update(
        id_col=id_col,
        image_col=image_col,
        images_root=None if images_root is None else str(Path(images_root).resolve()),
    )
    writer = _CacheWriter(cache, info, read_cache_index(cache))
    todo: list[tuple[int, str, str, os.stat_result]] = []  # row, id, source, stat
    already = 0
    excluded = list(join.excluded.to_dict("records"))
    for row, row_id, path in zip(join.rows.tolist(), join.ids, join.paths, strict=True):
        source = os.path.abspath(path)
        try:
            stat = os.stat(source)
        except OSError as exc:  # removed since the join looked
            excluded.append(exclusion(row, row_id, source, "missing", f"cannot stat: {exc}"))
            continue
        known = writer.records.get(row_id)
        if known is None or not _unchanged(known, source, stat):
            todo.append((row, row_id, source, stat))
        elif known["status"] == "ok":
            already += 1
        else:  # failed before and unchanged since: the same reason, without decoding
            excluded.append(exclusion(row, row_id, source, known["status"], known["reason"]))
    started = time.perf_counter()
    shapes: list[tuple[str, int, int]] = []  # of the images decoded now
    try:
        writer.grow(len(todo))
    except OutputError:
        writer.discard(new=not existed)  # nothing decoded yet: leave no stray file
        raise
    try:
        decoding = _decode_all([t[2] for t in todo], settings, jobs, progress)
        with closing(decoding) as results:
            for (row, row_id, source, stat), (stored, meta) in zip(todo, results, strict=True):
                if stored is None:
                    excluded.append(exclusion(row, row_id, source, meta["kind"], meta["reason"]))
                else:
                    shapes.append((row_id, meta["orig_rows"], meta["orig_cols"]))
                writer.put(row_id, source, stat, stored, meta)
                if time.perf_counter() - writer.saved_at > checkpoint_seconds:
                    writer.save(excluded)
    finally:
        writer.save(excluded, final=True)
    summary = PrepareSummary(
        cache,
        len(df),
        writer.decoded,
        already,
        excluded_frame(excluded),
        time.perf_counter() - started,
    )
    warn_degenerate(shapes)
    no_usable_rows(df, summary.usable, summary.excluded)
    return summary


def read_cache_info(cache_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings in ``cache_dir/cache.json``; a clear error when it is not a cache."""
    path = Path(cache_dir) / "cache.json"
    if not path.is_file():
        raise InputError(
            f"no image cache at {str(cache_dir)!r} (cache.json missing); create it with "
            "`cxr prepare TABLE --images DIR -o CACHE_DIR`"
        )
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); prepare the cache again") from None
    if info.get("version") != CACHE_VERSION:
        raise InputError(
            f"{path} has cache version {info.get('version')!r}; this cxrkit reads version "
            f"{CACHE_VERSION}. Prepare the cache again (--overwrite)"
        )
    return info


def read_cache_index(cache_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """``cache_dir/index.csv`` (slot, id, source...), ids as text."""
    path = Path(cache_dir) / "index.csv"
    if not path.is_file():
        return _empty_index()
    # Text stays text ("NA" is a valid id); only the numeric columns may be blank.
    index = pd.read_csv(
        path,
        dtype={c: "string" for c in _TEXT_COLUMNS},
        keep_default_na=False,
        na_values={c: [""] for c in _NUMBER_COLUMNS},
    )
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise InputError(f"{path} lacks columns {missing}; prepare the cache again")
    return index


class CachedImageDataset(_LabeledImages):
    """Images read from a cache made by :func:`prepare_cache`, labels from a table.

    The item contract is :mod:`cxrembed.data.dataset`'s. Images are ``size`` x ``size``
    [0, 1] squares read from a memory map (opened lazily in each DataLoader worker).
    Build it with :meth:`from_table`.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        slots: np.ndarray,
        ids: Sequence[str],
        labels: np.ndarray,
        label_names: Sequence[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(ids, labels, label_names, **kwargs)
        self.cache_dir = Path(cache_dir)
        self.slots = slots
        self._memmap: np.memmap | None = None

    @classmethod
    def from_table(
        cls,
        cache_dir: str | os.PathLike[str],
        table: str | os.PathLike[str] | pd.DataFrame,
        *,
        labels: LabelOptions,
        image_col: str | None = None,
        id_col: str | None = None,
        transform: Any = None,
    ) -> CachedImageDataset:
        """Join a labels table to the cache by id.

        ``image_col``/``id_col`` default to those the cache was prepared with, so ids
        match. Rows whose image is not in the cache are excluded with the reason found
        when preparing (or ``not-cached``).

        Examples
        --------
        >>> import tempfile
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> Image.new("L", (20, 10), 255).save(root / "a.png")
        >>> t = pd.DataFrame({"file": ["a.png"], "finding": ["COVID-19"]})
        >>> _ = prepare_cache(t, root, root / "c", image_col="file", size=8, progress=False)
        >>> ds = CachedImageDataset.from_table(root / "c", t,
        ...                                    labels=LabelOptions(label_col="finding"))
        >>> image, target, mask, item_id = ds[0]
        >>> tuple(image.shape), float(image.max()), target.tolist(), item_id
        ((1, 8, 8), 1.0, [1.0], 'a.png')
        """
        info = read_cache_info(cache_dir)
        if image_col is None and id_col is None:
            image_col, id_col = info.get("image_col"), info.get("id_col")
        df = read_table(table, text_columns=(id_col, image_col))
        matrix = labels.matrix(df, table_source(df))
        ids = row_ids(df, image_col=image_col, id_col=id_col)
        status = status_exclusions(df, ids, labels.status_col)
        skip = {r.row for r in status}
        index = read_cache_index(cache_dir)
        cached = index[index["status"] == "ok"]
        slot_of = dict(zip(cached["id"].tolist(), cached["slot"].astype(int).tolist(), strict=True))
        why = _reasons_not_cached(Path(cache_dir), index)
        kept: list[int] = []
        excluded = list(status)
        seen: dict[str, int] = {}
        for row, row_id in enumerate(ids):
            if row in skip:
                continue
            if row_id is None:
                excluded.append(exclusion(row, None, None, "no-id", "blank id: no image"))
            elif row_id in seen:
                excluded.append(
                    exclusion(
                        row,
                        row_id,
                        None,
                        "duplicate-id",
                        f"id {row_id!r} already used by row {seen[row_id]}",
                    )
                )
            elif row_id not in slot_of:
                kind, reason = why.get(
                    row_id, ("not-cached", "not in the cache; run `cxr prepare` on this table")
                )
                excluded.append(exclusion(row, row_id, None, kind, f"not in the cache ({reason})"))
            else:
                seen[row_id] = row
                kept.append(row)
        excluded_rows = excluded_frame(excluded)
        no_usable_rows(df, len(kept), excluded_rows)
        rows = np.asarray(kept, dtype=np.int64)
        return cls(
            cache_dir,
            np.asarray([slot_of[ids[r]] for r in kept], dtype=np.int64),
            [ids[r] for r in kept],
            matrix.values[rows],
            matrix.names,
            policy=labels.policy,
            soft_value=labels.soft_value,
            unmentioned=labels.unmentioned_for(categorical=matrix.categorical),
            transform=transform,
            table=df.iloc[rows].reset_index(drop=True),
            rows=rows,
            excluded=excluded_rows,
        )

    def _load(self, index: int) -> np.ndarray:
        return dequantize(np.asarray(self._images()[self.slots[index]]))

    def load_batch(self, indices: Sequence[int]) -> np.ndarray:
        """Images ``indices`` as one ``(B, size, size)`` float32 [0, 1] array.

        One gather from the memory map instead of one read per item: at 64 px the per-item
        Python of ``dataset[i]`` costs about a quarter of the model's forward pass.
        """
        return dequantize(self._images()[self.slots[np.asarray(indices, dtype=np.int64)]])

    def _images(self) -> np.memmap:
        if self._memmap is None:
            self._memmap = _open_images(self.cache_dir, read_cache_info(self.cache_dir), "r")
        return self._memmap

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_memmap"] = None  # each process maps the file itself (never pickle pixels)
        return state


# ----------------------------------------------------------------------------- writing


class _CacheWriter:
    """Owns the image array and the index during one run; ``save`` makes work durable."""

    def __init__(self, cache: Path, info: dict[str, Any], index: pd.DataFrame) -> None:
        self.cache = cache
        self.info = info
        self.records = {str(r["id"]): r for r in index.to_dict("records")}
        self.count = int(info.get("count", 0))
        self.decoded = 0
        self.saved_at = time.perf_counter()
        self._memmap: np.memmap | None = None

    def grow(self, extra: int) -> None:
        """Make room for up to ``extra`` new images."""
        capacity = self.count + extra
        _resize_file(_images_path(self.cache, self.info), capacity, self.info)
        if capacity:
            self._memmap = _open_images(self.cache, {**self.info, "count": capacity}, "r+")

    def discard(self, *, new: bool) -> None:
        """Undo :meth:`grow` after it failed: the image file shrinks back (it is removed when
        it holds no image), and a cache folder made by this run and left empty goes too."""
        path = _images_path(self.cache, self.info)
        if self.count == 0:
            path.unlink(missing_ok=True)
        elif path.is_file():
            _resize_file(path, self.count, self.info)
        if new and self.cache.is_dir() and not any(self.cache.iterdir()):
            self.cache.rmdir()

    def put(
        self,
        row_id: str,
        source: str,
        stat: os.stat_result,
        stored: np.ndarray | None,
        meta: dict[str, Any],
    ) -> None:
        """Record one result: pixels into the id's old slot or a new one; a failure as
        ``status`` = its kind, with slot -1 (an old slot is then left unused)."""
        record = {
            "id": row_id,
            "source": source,
            "bytes": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
        }
        if stored is None:
            self.records[row_id] = {
                **record,
                "slot": -1,
                "status": meta["kind"],
                "reason": meta["reason"],
            }
            return
        old = self.records.get(row_id)
        slot = int(old["slot"]) if old is not None and int(old["slot"]) >= 0 else self.count
        if slot == self.count:
            self.count += 1
        assert self._memmap is not None
        self._memmap[slot] = stored
        self.records[row_id] = {**record, "slot": slot, "status": "ok", "reason": "", **meta}
        self.decoded += 1

    def save(self, excluded: list[Any], final: bool = False) -> None:
        if self._memmap is not None:
            self._memmap.flush()
        if final:
            self._memmap = None
            _resize_file(_images_path(self.cache, self.info), self.count, self.info)
        index = pd.DataFrame(list(self.records.values()), columns=INDEX_COLUMNS)
        with atomic_path(self.cache / "index.csv") as tmp:
            index.sort_values("slot").to_csv(tmp, index=False)
        with atomic_path(self.cache / "cache.json") as tmp:
            tmp.write_text(
                json.dumps({**self.info, "count": self.count}, indent=2) + "\n", encoding="utf-8"
            )
        if final:
            write_excluded(self.cache, excluded)
        self.saved_at = time.perf_counter()


def _decode_all(
    paths: list[str], settings: dict[str, Any], jobs: int, progress: bool
) -> Iterator[tuple[np.ndarray | None, dict[str, Any]]]:
    """Decode in order, in ``jobs`` processes, with a progress bar on stderr."""
    work = partial(
        decode_or_reason,
        size=settings["size"],
        fit=settings["fit"],
        window=_window_from_json(settings["window"]),
        dtype=settings["dtype"],
    )
    return decode_in_order(work, paths, jobs=jobs, progress=progress, desc="prepare")


def _settings(size: int, dtype: str, fit: str, window: Window) -> dict[str, Any]:
    Interval(int, 8, None).check(size, "size (pixels)")
    if dtype not in STORAGE_DTYPES:
        raise InputError(f"dtype must be one of {list(STORAGE_DTYPES)}; got {dtype!r}")
    fit = FIT.check(fit, "fit")
    checked = check_window(window, "window")
    window_json: Any = checked if isinstance(checked, str) else list(checked)
    return {
        "version": CACHE_VERSION,
        "size": size,
        "dtype": dtype,
        "fit": fit,
        "window": window_json,
    }


def _window_from_json(value: Any) -> Window:
    return value if isinstance(value, str) else (float(value[0]), float(value[1]))


def _open_settings(cache: Path, settings: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """Settings of the run, checked against an existing cache (or the cache removed)."""
    if (cache / "cache.json").is_file():
        try:
            old = json.loads((cache / "cache.json").read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        differs = {k: (old.get(k), settings[k]) for k in _SETTINGS if old.get(k) != settings[k]}
        if not differs:
            return {**old, **settings}
        if not overwrite:
            detail = ", ".join(f"{k} {a!r} (asked {b!r})" for k, (a, b) in differs.items())
            raise InputError(
                f"the cache at {str(cache)!r} was made with other settings: {detail}. Use "
                "another output folder, or overwrite it (--overwrite / overwrite=True)"
            )
        _remove_cache(cache)
    elif cache.exists() and any(cache.iterdir()) and not overwrite:
        raise InputError(
            f"{str(cache)!r} exists, is not empty and is not an image cache (no cache.json); "
            "choose an empty or new output folder"
        )
    cache.mkdir(parents=True, exist_ok=True)
    return {**settings, "count": 0}


def _remove_cache(cache: Path) -> None:
    for name in ("cache.json", "index.csv", "excluded.csv", "images.u8", "images.u16"):
        path = cache / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _images_path(cache: Path, info: dict[str, Any]) -> Path:
    return cache / ("images.u8" if info["dtype"] == "uint8" else "images.u16")


def _resize_file(path: Path, count: int, info: dict[str, Any]) -> None:
    """Set the image file to ``count`` images; growing reserves the disk space first, so a
    full disk is an :class:`OutputError` now rather than a SIGBUS in the memory map later."""
    nbytes = count * info["size"] * info["size"] * np.dtype(info["dtype"]).itemsize
    current = path.stat().st_size if path.is_file() else 0
    with writing(path, need=max(nbytes - current, 0)), open(path, "ab") as fh:
        if nbytes > current:
            _reserve(fh.fileno(), current, nbytes - current, path)
        fh.truncate(nbytes)


def _reserve(fd: int, offset: int, length: int, path: Path) -> None:
    """Allocate ``length`` bytes of ``fd`` from ``offset`` (ENOSPC when they do not fit);
    where the file system cannot allocate ahead, compare with the free space instead."""
    try:
        os.posix_fallocate(fd, offset, length)
    except AttributeError:  # no posix_fallocate on this platform (macOS, Windows)
        check_free(path, length)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS):
            raise
        check_free(path, length)


def _open_images(cache: Path, info: dict[str, Any], mode: str) -> np.memmap:
    path = _images_path(cache, info)
    shape = (int(info["count"]), int(info["size"]), int(info["size"]))
    expected = int(np.prod(shape)) * np.dtype(info["dtype"]).itemsize
    actual = path.stat().st_size if path.is_file() else -1
    if actual < expected or shape[0] == 0:
        raise InputError(
            f"{path} holds {max(actual, 0)} bytes, expected {expected} for {shape[0]} images "
            f"of {shape[1]} px ({info['dtype']}); the cache is incomplete: run prepare again"
        )
    return np.memmap(path, dtype=info["dtype"], mode=mode, shape=shape)


def _unchanged(record: dict[str, Any], source: str, stat: os.stat_result) -> bool:
    return (
        str(record["source"]) == source
        and int(record["bytes"]) == stat.st_size
        and int(record["mtime_ns"]) == stat.st_mtime_ns
    )


def _empty_index() -> pd.DataFrame:
    return pd.DataFrame(columns=INDEX_COLUMNS)


def _reasons_not_cached(cache: Path, index: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """id -> (kind, reason) for ids prepare could not cache: decode failures recorded in the
    index, then the last run's excluded.csv (rows without a usable file)."""
    reasons: dict[str, tuple[str, str]] = {}
    path = cache / "excluded.csv"
    if path.is_file():
        last = pd.read_csv(path, dtype={"id": "string"}, keep_default_na=False)
        reasons.update(
            {
                i: (k, r)
                for i, k, r in zip(last["id"], last["kind"], last["reason"], strict=True)
                if i
            }
        )
    failed = index[index["status"] != "ok"]
    reasons.update(
        {
            i: (k, r)
            for i, k, r in zip(failed["id"], failed["status"], failed["reason"], strict=True)
        }
    )
    return reasons
