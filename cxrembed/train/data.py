"""The data of one training run: datasets, the patient-level split, label checks, batches.

:func:`build_train_data` joins the labels table to the images (a folder, or the cache made
by ``cxr prepare``), encodes the labels with the run's uncertain policy, splits by patient
and checks, before any training step, that the labels can teach anything: some label
known, more than one label set, and (for metric losses) two training images sharing a
label. Rows that cannot be used are listed with the reason (``excluded``), never dropped
silently; rows whose labels are all unknown (a categorical ``todo``, every column blank
with ``unmentioned="ignore"``) are excluded from training and scoring (kind
``no-known-label``).

Augmentation runs once per batch (:class:`~cxrembed.data.transforms.BatchAugment` in
:meth:`ImageView.__getitems__`), with a generator seeded from the item seeds of
:class:`SeededBatches`, themselves from ``(seed, epoch, rank, batch)``: a batch's jitter
does not depend on what ran before it, so a resumed run draws exactly the same jitter as
an uninterrupted one, whatever the number of loader workers. (Until per-batch
augmentation, each image drew its own jitter with torchvision's transforms; a run resumed
from a checkpoint made before that continues with the new jitter stream.)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from cxrembed.data.cache import CachedImageDataset, read_cache_info
from cxrembed.data.dataset import LabeledImageDataset
from cxrembed.data.image_check import usable_images
from cxrembed.data.labels import LabelOptions
from cxrembed.data.samplers import MultiLabelBatchSampler, label_groups
from cxrembed.data.split import split_by_group
from cxrembed.data.table import excluded_frame, exclusion, read_table, table_source
from cxrembed.data.transforms import (
    BatchAugment,
    FitSquare,
    eval_transform_for,
    normalization_for,
)
from cxrembed.losses.registry import loss_spec
from cxrembed.train.config import RunConfig
from cxrlabel.errors import InputError

__all__ = [
    "TrainData",
    "build_train_data",
    "ImageView",
    "SeededBatches",
    "batch_seed",
    "make_sampler",
]

_SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val"}


@dataclass(frozen=True)
class TrainData:
    """Everything the loop needs about the data of a run.

    Attributes
    ----------
    train, val : ImageView
        Training images (augmented) and validation images (deterministic); ``val`` is
        empty when ``val_fraction`` is 0.
    names : list of str
        Label columns, in order.
    train_targets, train_known : numpy.ndarray
        (N_train, C) float32 0/1 targets and bool mask of the known positions.
    val_relevance : numpy.ndarray
        (N_val, C) 0/1 labels for validation retrieval (positive and known).
    val_groups : numpy.ndarray or None
        Patient of each validation row (a query's own patient is left out of its gallery).
    split : pandas.DataFrame
        ``id``, ``split`` (train / val), ``group`` for every used row.
    excluded : pandas.DataFrame
        Rows not used and why (columns of :data:`cxrembed.data.table.EXCLUDED_COLUMNS`).
    """

    train: ImageView
    val: ImageView
    names: list[str]
    train_targets: np.ndarray
    train_known: np.ndarray
    val_relevance: np.ndarray
    val_groups: np.ndarray | None
    split: pd.DataFrame
    excluded: pd.DataFrame


class ImageView(Dataset):
    """Some rows of a dataset, with a transform; items ``(image, target, mask, id)``.

    ``transform`` runs on each image; ``augment`` (training) then runs once on the stacked
    images of a batch in :meth:`__getitems__`, which the DataLoader calls with the
    batch's keys. A key may be ``(row, seed)`` (from :class:`SeededBatches`): the batch's
    augmentation then draws from a generator seeded by :func:`batch_seed` of its seeds;
    with plain row keys it draws its seed from torch's global generator.
    """

    def __init__(
        self,
        base: Dataset,
        rows: np.ndarray,
        transform: Callable[[torch.Tensor], torch.Tensor],
        augment: BatchAugment | None = None,
    ) -> None:
        self.base = base
        self.rows = rows
        self.transform = transform
        self.augment = augment

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[Any, ...]:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[int] | list[tuple[int, int]]) -> list[tuple[Any, ...]]:
        """The items of one batch (a list, as the default collate expects)."""
        items = [self._item(key[0] if isinstance(key, tuple) else key) for key in keys]
        if self.augment is None or not items:
            return items
        images = self.augment(torch.stack([item[0] for item in items]), self._generator(keys))
        return [(image, *item[1:]) for image, item in zip(images.unbind(0), items, strict=True)]

    def _generator(self, keys: list[Any]) -> torch.Generator:
        if all(isinstance(key, tuple) for key in keys):
            seed = batch_seed([int(key[1]) for key in keys])
        else:
            seed = int(torch.randint(0, 2**63 - 1, ()))
        return torch.Generator().manual_seed(seed)

    def _item(self, index: int) -> tuple[Any, ...]:
        image, target, mask, item_id = self.base[int(self.rows[index])]
        return self.transform(image), target, mask, item_id

    @property
    def ids(self) -> list[str]:
        return [self.base.ids[int(r)] for r in self.rows]


def batch_seed(seeds: list[int]) -> int:
    """One seed for a batch from its items' seeds (order matters).

    Examples
    --------
    >>> batch_seed([1, 2]) == batch_seed([1, 2]) != batch_seed([2, 1])
    True
    """
    return int(np.random.SeedSequence(seeds).generate_state(1, np.uint64)[0])


class SeededBatches:
    """Wrap a batch sampler: each index becomes ``(index, seed)`` for :class:`ImageView`.

    The seed depends on ``(seed, epoch, rank, batch number in the epoch, position)`` only,
    so the augmentation of a batch does not depend on what ran before it.
    """

    def __init__(self, sampler: MultiLabelBatchSampler, seed: int) -> None:
        self.sampler = sampler
        self.seed = seed

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, start, rank = self.sampler.epoch, self.sampler.batches_done, self.sampler.rank
        for number, batch in enumerate(self.sampler, start):
            seeds = np.random.SeedSequence([self.seed, epoch, rank, number]).generate_state(
                len(batch), np.uint64
            )
            yield [(int(i), int(s)) for i, s in zip(batch, seeds, strict=True)]


def make_sampler(
    data: TrainData, config: RunConfig, *, rank: int = 0, world_size: int = 1
) -> MultiLabelBatchSampler:
    """The run's batch sampler over the training rows (``m`` images per drawn label)."""
    t = config.training
    return MultiLabelBatchSampler(
        data.train_targets,
        m=t.m,
        batch_size=t.batch_size,
        batches_per_epoch=t.batches_per_epoch,
        seed=t.seed,
        num_replicas=world_size,
        rank=rank,
        known=data.train_known,
    )


def build_train_data(
    table: str | os.PathLike[str] | pd.DataFrame,
    config: RunConfig,
    *,
    images: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
    allow_outside_images: bool = False,
    progress: bool = False,
) -> tuple[TrainData, RunConfig]:
    """Join, encode, split and check the data of a run.

    From an images folder, every image is decoded once first and the unusable ones are
    excluded with the reason (:func:`cxrembed.data.image_check.usable_images`); paths
    leaving the folder are excluded unless ``allow_outside_images``.

    Returns the data and the config completed with what the data decides: label
    ``names``; with a cache, the ``fit`` and ``window`` the cache was made with; for the
    ``ce`` loss, ``model.num_classes``.

    Raises
    ------
    InputError
        Neither or both of ``images`` / ``cache``; bad columns; no usable row; labels that
        cannot teach (all unknown, one label set only, no positive pair).
    """
    if (images is None) == (cache is None):
        raise InputError(
            "give the images with exactly one of images= (a folder, --images) or cache= (a "
            f"`cxr prepare` folder, --cache); got {'both' if images is not None else 'neither'}"
        )
    if not config.labels.chosen:
        raise InputError(
            "choose the labels: a categorical column (--label-col), label columns "
            "(--label-cols) or a schema's columns as written by `cxr label` (--schema)"
        )
    lab, data_cfg = config.labels, config.data
    options = _label_options(config)
    df = read_table(
        table,
        text_columns=(data_cfg.id_col, data_cfg.image_col, data_cfg.group_col, data_cfg.split_col),
    )
    source = table_source(df)
    base, config = _labelled_images(
        df,
        config,
        options,
        images,
        cache,
        allow_outside_images=allow_outside_images,
        progress=progress,
    )
    names = list(base.label_names)
    targets, mask = base.targets, base.mask > 0
    known_rows = mask.any(axis=1)
    if not known_rows.any():
        raise InputError(
            f"{source}: every label of the {len(names)} label column(s) {names[:5]}"
            f"{'...' if len(names) > 5 else ''} is blank or unknown in the {len(base)} usable "
            "rows: nothing to learn. Check the label columns (or run `cxr label` first)"
        )
    excluded = [base.excluded] + [_unlabelled(base, np.flatnonzero(~known_rows), lab)]
    rows = np.flatnonzero(known_rows)
    train_rows, val_rows, groups, other = _split(base, rows, config, source)
    excluded.append(other)
    _check_labels(targets[train_rows], mask[train_rows], names, config, source)
    _warn_small(len(train_rows), config, source)
    config = _completed(config, names, cached=cache is not None)
    return _train_data(base, config, names, train_rows, val_rows, groups, excluded), config


# ----------------------------------------------------------------------------- helpers


def _labelled_images(
    df: pd.DataFrame,
    config: RunConfig,
    options: LabelOptions,
    images: str | os.PathLike[str] | None,
    cache: str | os.PathLike[str] | None,
    *,
    allow_outside_images: bool,
    progress: bool,
) -> tuple[Any, RunConfig]:
    """The table's images with their labels encoded by ``options``, from the cache or from
    the folder (then decoded once, the unusable ones excluded); with a cache, the config
    takes the cache's geometry."""
    data_cfg = config.data
    if cache is not None:
        base = CachedImageDataset.from_table(
            cache, df, labels=options, image_col=data_cfg.image_col, id_col=data_cfg.id_col
        )
        return base, _with_cache_geometry(config, cache)
    base = LabeledImageDataset.from_table(
        df,
        images,
        labels=options,
        image_col=data_cfg.image_col,
        id_col=data_cfg.id_col,
        window=_window(config),
        on_error="mask",
        allow_outside_images=allow_outside_images,
    )
    base = usable_images(
        base, jobs=max(1, data_cfg.loader_workers(cached=False)), progress=progress
    )
    return base, config


def _label_options(config: RunConfig) -> LabelOptions:
    """How the run reads its labels (the ``labels`` section)."""
    lab = config.labels
    return LabelOptions(
        schema=lab.schema,
        columns=None if lab.columns is None else tuple(lab.columns),
        label_col=lab.label_col,
        unknown_values=tuple(lab.unknown_values),
        separator=lab.separator,
        policy=lab.uncertain_policy,  # type: ignore[arg-type]
        unmentioned=lab.unmentioned,  # type: ignore[arg-type]
    )


def _train_data(
    base: Any,
    config: RunConfig,
    names: list[str],
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    groups: np.ndarray | None,
    excluded: list[pd.DataFrame],
) -> TrainData:
    """The training and validation views of ``base`` with their targets and the split."""
    targets, mask = base.targets, base.mask > 0
    return TrainData(
        train=ImageView(
            base,
            train_rows,
            FitSquare(config.preprocessing.image_size, config.preprocessing.fit),  # type: ignore[arg-type]
            _train_augment(config),
        ),
        val=ImageView(base, val_rows, eval_transform_for(config)),
        names=names,
        train_targets=targets[train_rows].astype(np.float32),
        train_known=mask[train_rows],
        val_relevance=((targets[val_rows] >= 0.5) & mask[val_rows]).astype(np.float32),
        val_groups=None if groups is None else groups[val_rows],
        split=pd.DataFrame(
            {
                "id": [base.ids[r] for r in np.concatenate([train_rows, val_rows])],
                "split": ["train"] * len(train_rows) + ["val"] * len(val_rows),
                "group": (
                    None
                    if groups is None
                    else np.concatenate([groups[train_rows], groups[val_rows]])
                ),
            }
        ),
        excluded=excluded_frame(pd.concat([e for e in excluded if len(e)] or [excluded[0]])),
    )


def _window(config: RunConfig) -> Any:
    window = config.preprocessing.window
    return window if isinstance(window, str) else (float(window[0]), float(window[1]))


def _train_augment(config: RunConfig) -> BatchAugment:
    """The run's batch augmentation (``augmentation`` section), ending in its normalisation."""
    aug = config.augmentation
    return BatchAugment(
        rotation=float(aug.rotation),
        scale=(float(aug.scale[0]), float(aug.scale[1])),
        translate=float(aug.translate),
        brightness=float(aug.brightness),
        contrast=float(aug.contrast),
        hflip=bool(aug.hflip),
        normalization=normalization_for(config),
    )


def _with_cache_geometry(config: RunConfig, cache: str | os.PathLike[str]) -> RunConfig:
    """Record the fit and window the cached pixels were made with (they are the truth)."""
    info = read_cache_info(cache)
    if int(info["size"]) < config.preprocessing.image_size:
        warnings.warn(
            f"cache {str(cache)!r} stores {info['size']} px images but image_size is "
            f"{config.preprocessing.image_size}: images are upsampled. Prepare the cache at "
            "the training size or larger",
            UserWarning,
            stacklevel=3,
        )
    window = info.get("window", "auto")
    pre = replace(
        config.preprocessing,
        fit=str(info.get("fit", "letterbox")),
        window=window if isinstance(window, str) else [float(v) for v in window],
    )
    return replace(config, preprocessing=pre)


def _completed(config: RunConfig, names: list[str], cached: bool) -> RunConfig:
    saved = config.labels.names
    if saved is not None and list(saved) != names:
        raise InputError(
            f"the labels table gives label columns {names}, but the run was made with "
            f"{list(saved)}; use the same labels (or a new run folder)"
        )
    classifier = loss_spec(config.training.loss).model_classifier
    model = replace(config.model, num_classes=len(names) if classifier else None)
    data = replace(config.data, num_workers=config.data.loader_workers(cached))
    return replace(config, labels=replace(config.labels, names=names), model=model, data=data)


def _unlabelled(base: Dataset, rows: np.ndarray, lab: Any) -> pd.DataFrame:
    what = (
        f"value of {lab.label_col!r} is blank or one of {lab.unknown_values}"
        if lab.label_col
        else "every label is uncertain or blank and masked"
    )
    records = [
        exclusion(
            int(base.rows[r]), base.ids[r], None, "no-known-label", f"no known label ({what})"
        )
        for r in rows
    ]
    return excluded_frame(records)


def _split(
    base: Any, rows: np.ndarray, config: RunConfig, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, pd.DataFrame]:
    """Train/val positions (into the dataset), group per dataset row, rows left out."""
    d, table = config.data, base.table
    groups = None
    if d.group_col is not None:
        if d.group_col not in table.columns:
            raise InputError(
                f"{source} has no group column {d.group_col!r}; found columns {list(table.columns)}"
            )
        groups = table[d.group_col].astype("object").where(table[d.group_col].notna(), None)
        groups = np.asarray([None if g is None else str(g) for g in groups], dtype=object)
    if d.split_col is not None:
        train, val, other = _given_split(base, rows, d.split_col, source)
        return train, val, groups, other
    if d.val_fraction == 0:
        return rows, rows[:0], groups, excluded_frame([])
    sub = table.iloc[rows].reset_index(drop=True)
    if groups is None:
        warnings.warn(
            f"no group column: {source} is split by image, so images of one patient may be on "
            "both sides and validation looks better than it is. Give --group-col (patient id)",
            UserWarning,
            stacklevel=3,
        )
        sub = sub.assign(_row=np.arange(len(sub)))
    stratify = d.stratify_col or config.labels.label_col
    if stratify is not None and stratify not in sub.columns:
        raise InputError(f"{source} has no stratify column {stratify!r}")
    train, val = split_by_group(
        sub, d.group_col or "_row", d.val_fraction, seed=config.training.seed, stratify_col=stratify
    )
    return rows[train], rows[val], groups, excluded_frame([])


def _given_split(
    base: Any, rows: np.ndarray, split_col: str, source: str
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    table = base.table
    if split_col not in table.columns:
        raise InputError(
            f"{source} has no split column {split_col!r}; found columns {list(table.columns)}"
        )
    values = table[split_col].astype("object").tolist()
    side = [
        _SPLIT_NAMES.get(str(values[r]).strip().lower())
        if values[r] is not None and not (isinstance(values[r], float) and np.isnan(values[r]))
        else None
        for r in rows
    ]
    other = [
        exclusion(
            int(base.rows[r]),
            base.ids[r],
            None,
            "other-split",
            f"{split_col} is {values[r]!r}, not train or val",
        )
        for r, s in zip(rows, side, strict=True)
        if s is None
    ]
    train = np.asarray([r for r, s in zip(rows, side, strict=True) if s == "train"], dtype=np.int64)
    val = np.asarray([r for r, s in zip(rows, side, strict=True) if s == "val"], dtype=np.int64)
    if not len(train):
        raise InputError(f"{source}: no row has {split_col} = train; expected train / val values")
    return train, val, excluded_frame(other)


def _warn_small(count: int, config: RunConfig, source: str) -> None:
    """Fewer training images than one batch: every batch repeats images."""
    size = config.training.batch_size
    if count < size:
        warnings.warn(
            f"{source}: {count} training image(s), fewer than the batch size {size}: every "
            "batch repeats images. Lower --batch-size (a multiple of m), or add images",
            UserWarning,
            stacklevel=3,
        )


def _check_labels(
    targets: np.ndarray, known: np.ndarray, names: list[str], config: RunConfig, source: str
) -> None:
    """Refuse labels that cannot teach: one label set only, or no positive pair."""
    positive = (targets >= 0.5) & known
    sets = {tuple(np.flatnonzero(p)) for p in positive}
    if len(sets) < 2:
        (only,) = sets
        what = ", ".join(names[i] for i in only) or "no positive label"
        raise InputError(
            f"{source}: all {len(targets)} training images have the same labels ({what}); "
            "retrieval and classification need at least two different label sets. Check the "
            "label columns and the uncertain policy"
        )
    if not loss_spec(config.training.loss).pairs:
        return
    groups, _ = label_groups(targets.astype(np.float64), known)
    if max(len(g) for g in groups) < 2:
        raise InputError(
            f"{source}: no two training images share a label, so a metric loss has no "
            f"positive pair to learn from ({len(names)} labels over {len(targets)} images). "
            "Merge rare labels, add images, or use --loss ce"
        )
