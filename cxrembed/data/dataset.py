"""PyTorch datasets of labelled radiographs: the item contract shared by every source.

An item is ``(image, target, mask, id)``:

* ``image``: FloatTensor ``(1, H, W)``, [0, 1] from the reader, then the ``transform``
  (which normalises, see :mod:`cxrembed.data.transforms`);
* ``target``, ``mask``: FloatTensor ``(C,)`` from :func:`~cxrembed.data.labels.encode_labels`
  (uncertain policy, not-mentioned handling);
* ``id``: str, unique within the dataset.

Every dataset exposes ``label_names``, ``ids``, ``labels`` (N x C raw 1/0/-1/NaN as read),
``targets``/``mask`` (encoded), ``table`` (its rows of the input table, aligned, index
0..N-1), ``rows`` (their positions in the input table) and ``excluded`` (skipped rows with
the reason, see :data:`~cxrembed.data.exclusions.EXCLUDED_COLUMNS`).

Sources: :class:`LabeledImageDataset` reads image files (a labels table joined to a
folder); :class:`XRVDataset` wraps a torchxrayvision-style dataset object;
:class:`~cxrembed.data.cache.CachedImageDataset` reads the preprocessed cache (fastest:
use it for training).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from cxrembed.data.labels import (
    UNCERTAIN_POLICIES,
    LabelOptions,
    UncertainPolicy,
    Unmentioned,
    encode_labels,
    label_matrix,
    status_exclusions,
)
from cxrembed.data.table import (
    excluded_frame,
    join_images,
    read_table,
    row_ids,
    table_source,
)
from cxrembed.errors import ImageReadError
from cxrembed.io._common import plane
from cxrembed.io.image import Window, read_image
from cxrlabel.errors import InputError

__all__ = [
    "Item",
    "LabeledImageDataset",
    "XRVDataset",
    "UncertainPolicy",
    "LabelOptions",
    "encode_labels",
    "label_matrix",
    "UNCERTAIN_POLICIES",
    "no_usable_rows",
]

Item = tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]
Transform = Callable[[torch.Tensor], torch.Tensor]


class _LabeledImages(Dataset):
    """Shared item logic; subclasses implement ``_load(i)`` -> 2-D float32 [0, 1] or None."""

    def __init__(
        self,
        ids: Sequence[str],
        labels: np.ndarray,
        label_names: Sequence[str],
        *,
        policy: UncertainPolicy = "ignore",
        soft_value: float = 0.5,
        unmentioned: Unmentioned = "zeros",
        transform: Transform | None = None,
        table: pd.DataFrame | None = None,
        rows: np.ndarray | None = None,
        excluded: pd.DataFrame | None = None,
    ) -> None:
        self.ids = list(ids)
        self.labels = labels
        self.label_names = list(label_names)
        self.policy = policy
        self.soft_value = soft_value
        self.unmentioned = unmentioned
        self.transform = transform
        self.table = pd.DataFrame({"id": self.ids}) if table is None else table
        self.rows = np.arange(len(self.ids)) if rows is None else rows
        self.excluded = excluded_frame([]) if excluded is None else excluded

    @cached_property
    def _encoded(self) -> tuple[np.ndarray, np.ndarray]:
        return encode_labels(self.labels, self.policy, self.soft_value, self.unmentioned)

    @property
    def targets(self) -> np.ndarray:
        """N x C float32 training targets (after the uncertain policy)."""
        return self._encoded[0]

    @property
    def mask(self) -> np.ndarray:
        """N x C float32, 1 where the target counts."""
        return self._encoded[1]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Item:
        image = self._load(index)
        target = torch.from_numpy(self.targets[index].copy())
        mask = torch.from_numpy(self.mask[index].copy())
        if image is None:  # unreadable and on_error="mask": the item teaches nothing
            image = np.zeros((1, 1), dtype=np.float32)
            mask.zero_()
        tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
        if self.transform is not None:
            tensor = self.transform(tensor)
        return tensor, target, mask, self.ids[index]

    def _load(self, index: int) -> np.ndarray | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} images, {len(self.label_names)} labels, "
            f"policy={self.policy!r}, {len(self.excluded)} excluded)"
        )


class LabeledImageDataset(_LabeledImages):
    """Images read from their source files (DICOM/PNG/JPEG), labels from a table.

    Build it with :meth:`from_table`. Decoding full-size DICOMs every epoch is slow: for
    training, prepare a cache (``cxr prepare``) and use
    :class:`~cxrembed.data.cache.CachedImageDataset`.

    ``on_error``: an image that fails to decode at read time (files are only checked for
    existence and size up front) raises :class:`~cxrembed.errors.ImageReadError`
    (``"raise"``) or, with ``"mask"`` (default), warns and returns a blank image with an
    all-zero mask, so a long run does not stop on one bad file. Give a transform that fits
    images to a fixed size (e.g. :func:`~cxrembed.data.transforms.eval_transform`) to batch.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        ids: Sequence[str],
        labels: np.ndarray,
        label_names: Sequence[str],
        *,
        window: Window = "auto",
        on_error: Literal["raise", "mask"] = "mask",
        **kwargs: Any,
    ) -> None:
        super().__init__(ids, labels, label_names, **kwargs)
        self.paths = list(paths)
        self.window = window
        self.on_error = on_error

    @classmethod
    def from_table(
        cls,
        table: str | os.PathLike[str] | pd.DataFrame,
        images_root: str | os.PathLike[str] | None = None,
        *,
        labels: LabelOptions,
        image_col: str | None = None,
        id_col: str | None = None,
        transform: Transform | None = None,
        window: Window = "auto",
        on_error: Literal["raise", "mask"] = "mask",
        allow_outside_images: bool = False,
    ) -> LabeledImageDataset:
        """Join a labels table to its image files.

        Parameters
        ----------
        table : path or DataFrame
            CSV/Parquet labels table (``cxr label`` output or any table with label columns).
        images_root : path, optional
            Folder of the images (default: the table's folder, for ``image_col``).
        labels : LabelOptions
            Which labels (schema, columns or one categorical column) and the policy.
        image_col, id_col : str, optional
            How rows find their image (see :mod:`cxrembed.data.table`).
        transform : callable, optional
            Applied to the ``(1, H, W)`` [0, 1] tensor.
        window : see :func:`cxrembed.io.image.read_image`.
        on_error : {"mask", "raise"}
            What an image that fails to decode does (see the class docstring).
        allow_outside_images : bool
            Read image paths that leave ``images_root`` (excluded by default, see
            :mod:`cxrembed.data.table`).

        Raises
        ------
        InputError
            Bad columns or label values, or no usable row at all.

        Examples
        --------
        >>> import tempfile
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> Image.new("L", (8, 6)).save(root / "a.png")
        >>> t = pd.DataFrame({"id": ["a", "b"], "Edema": [1, None], "status": ["ok", "ok"]})
        >>> ds = LabeledImageDataset.from_table(t, root, id_col="id",
        ...                                     labels=LabelOptions(columns=("Edema",)))
        >>> image, target, mask, item_id = ds[0]
        >>> tuple(image.shape), target.tolist(), item_id, ds.excluded["kind"].tolist()
        ((1, 6, 8), [1.0], 'a', ['missing'])
        """
        df = read_table(table, text_columns=(id_col, image_col))
        matrix = labels.matrix(df, table_source(df))
        ids = row_ids(df, image_col=image_col, id_col=id_col)
        status = status_exclusions(df, ids, labels.status_col)
        skip = {r.row for r in status}
        candidates = [r for r in range(len(df)) if r not in skip]
        join = join_images(
            df,
            images_root,
            image_col=image_col,
            id_col=id_col,
            rows=candidates,
            allow_outside=allow_outside_images,
        )
        excluded = excluded_frame(pd.concat([excluded_frame(status), join.excluded]))
        no_usable_rows(df, len(join.rows), excluded)
        return cls(
            join.paths,
            join.ids,
            matrix.values[join.rows],
            matrix.names,
            window=window,
            on_error=on_error,
            policy=labels.policy,
            soft_value=labels.soft_value,
            unmentioned=labels.unmentioned_for(categorical=matrix.categorical),
            transform=transform,
            table=df.iloc[join.rows].reset_index(drop=True),
            rows=join.rows,
            excluded=excluded,
        )

    def _load(self, index: int) -> np.ndarray | None:
        try:
            return read_image(self.paths[index], window=self.window)[0]
        except ImageReadError as exc:
            if self.on_error == "raise":
                raise
            warnings.warn(f"{exc}; item {self.ids[index]!r} masked out", stacklevel=2)
            return None


class XRVDataset(_LabeledImages):
    """A torchxrayvision-style dataset object as a source of ``(image, target, mask, id)``.

    Duck-typed: the object needs ``pathologies`` (C names), ``labels`` (N x C with 1/0/NaN,
    -1 also accepted) and ``__getitem__`` returning a dict with ``"img"`` (``(1, H, W)`` or
    ``(H, W)`` in torchxrayvision's [-1024, 1024]); torchxrayvision itself is not imported.
    Images are mapped back to [0, 1]. In torchxrayvision NaN means "no label", so
    ``unmentioned`` defaults to ``"ignore"``. Build it with :meth:`from_xrv`.
    """

    def __init__(
        self,
        source: Any,
        ids: Sequence[str],
        labels: np.ndarray,
        label_names: Sequence[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(ids, labels, label_names, **kwargs)
        self.source = source

    @classmethod
    def from_xrv(
        cls,
        source: Any,
        *,
        label_names: Sequence[str] | None = None,
        id_col: str | None = None,
        policy: UncertainPolicy = "ignore",
        soft_value: float = 0.5,
        unmentioned: Unmentioned = "ignore",
        transform: Transform | None = None,
    ) -> XRVDataset:
        """Wrap ``source``; ``label_names`` reorders its labels to a target list (absent
        names become all-NaN columns, like torchxrayvision's ``relabel_dataset``);
        ``id_col`` takes ids from ``source.csv`` (default: the row position as text).

        Examples
        --------
        >>> class Tiny:
        ...     pathologies = ["Edema", "Effusion"]
        ...     labels = np.array([[1.0, np.nan]])
        ...     def __len__(self): return 1
        ...     def __getitem__(self, i): return {"img": np.zeros((1, 4, 4)), "idx": i}
        >>> ds = XRVDataset.from_xrv(Tiny(), label_names=["Effusion", "Edema", "Mass"])
        >>> ds.label_names, ds.labels.tolist(), ds[0][2].tolist()
        (['Effusion', 'Edema', 'Mass'], [[nan, 1.0, nan]], [0.0, 1.0, 0.0])
        """
        for attr in ("pathologies", "labels", "__getitem__"):
            if not hasattr(source, attr):
                raise InputError(
                    f"{type(source).__name__} is not a torchxrayvision-style dataset: it has "
                    f"no {attr!r} (expected .pathologies, .labels and items with 'img')"
                )
        names = [str(n) for n in source.pathologies]
        raw = np.asarray(source.labels, dtype=np.float32)
        if raw.ndim != 2 or raw.shape[1] != len(names):
            raise InputError(
                f"{type(source).__name__}.labels has shape {raw.shape}; expected "
                f"(N, {len(names)}) to match its {len(names)} pathologies"
            )
        if label_names is not None:
            raw = _relabel(raw, names, list(label_names))
            names = list(label_names)
        table = getattr(source, "csv", None)
        if not isinstance(table, pd.DataFrame) or len(table) != len(raw):
            table = None
        if id_col is not None:
            if table is None or id_col not in table.columns:
                raise InputError(
                    f"id_col {id_col!r} needs a .csv table with that column aligned with the "
                    f"{len(raw)} labels of {type(source).__name__}"
                )
            ids = [str(v) for v in table[id_col].tolist()]
        else:
            ids = [str(i) for i in range(len(raw))]
        if len(set(ids)) != len(ids):
            raise InputError(f"ids from column {id_col!r} are not unique; choose another id_col")
        return cls(
            source,
            ids,
            raw,
            names,
            policy=policy,
            soft_value=soft_value,
            unmentioned=unmentioned,
            transform=transform,
            table=None if table is None else table.reset_index(drop=True),
        )

    def _load(self, index: int) -> np.ndarray:
        image = plane(self.source[index]["img"])
        if image.ndim != 2:
            raise InputError(
                f"item {index} of {type(self.source).__name__} has an image of shape "
                f"{image.shape}; expected (1, H, W) or (H, W)"
            )
        return np.clip((image + 1024.0) / 2048.0, 0.0, 1.0)


def no_usable_rows(table: pd.DataFrame, kept: int, excluded: pd.DataFrame) -> None:
    """Raise a clear :class:`InputError` when no row of ``table`` is usable."""
    if kept:
        return
    counts = excluded["kind"].value_counts().to_dict() if len(excluded) else {}
    first = excluded.iloc[0] if len(excluded) else None
    example = f"; e.g. row {first['row']}: {first['reason']}" if first is not None else ""
    raise InputError(
        f"no usable row in {table_source(table)}: all {len(table)} rows were excluded "
        f"({', '.join(f'{k}: {v}' for k, v in counts.items()) or 'none considered'}){example}. "
        "Check the image folder and the image/id column"
    )


def _relabel(raw: np.ndarray, names: list[str], wanted: list[str]) -> np.ndarray:
    out = np.full((raw.shape[0], len(wanted)), np.nan, dtype=np.float32)
    index = {n: i for i, n in enumerate(names)}
    for j, name in enumerate(wanted):
        if name in index:
            out[:, j] = raw[:, index[name]]
    return out
