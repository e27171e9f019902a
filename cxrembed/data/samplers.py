"""Batches for metric learning on multi-label exams: every batch holds positive pairs.

A random batch of chest radiographs may have no two exams with a finding in common, and a
pair loss learns nothing from it. :class:`MultiLabelBatchSampler` builds each batch by
drawing ``batch_size // m`` labels, then ``m`` exams carrying each label, like PML's
``MPerClassSampler`` but for label *sets*:

* an exam's labels are its positive (``1``) known positions; uncertain (``-1``), missing
  (``NaN``) and masked positions are ignored;
* exams with no positive label but at least one known label are "no finding", a label of
  its own; exams with no known label at all cannot be placed and are never drawn (a
  ``UserWarning`` gives their count);
* labels are drawn uniformly, so rare findings are seen as often as common ones; within a
  batch, labels are distinct while there are enough of them, and an exam is not repeated
  while its label has unused exams (with replacement only when a label is scarce);
* the batches depend only on ``(seed, epoch)``; ``state_dict`` / ``load_state_dict``
  resume mid-epoch with exactly the batches an uninterrupted run would have produced;
* with ``num_replicas = R`` every rank walks the same epoch and keeps batches
  ``rank, rank + R, ...``, so ranks get disjoint shares of the epoch's batches and the
  same number of them (as ``DistributedSampler`` does, call ``set_epoch`` each epoch).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from cxrembed.errors import SamplerInputError
from cxrlabel.vocab import Interval

__all__ = ["MultiLabelBatchSampler", "label_groups"]

# Groups up to this many times the batch size are filtered exactly for unused exams;
# larger ones use rejection sampling, which almost never rejects.
_EXACT_GROUP_FACTOR = 4


def label_groups(
    labels: np.ndarray, known: np.ndarray | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """Row indices carrying each label, plus the rows that fit no label.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(N,)`` integer class ids, or ``(N, C)`` with 1, 0, -1 (uncertain) or NaN.
    known : numpy.ndarray, optional
        ``(N, C)`` bool; False marks a position as unknown.

    Returns
    -------
    groups : list of numpy.ndarray
        For (N, C) input: one array per column that has a positive, then the "no finding"
        rows (if any); for class ids: one array per class, in sorted id order.
    unplaced : numpy.ndarray
        Rows without any known label (never drawn).

    Examples
    --------
    >>> y = np.array([[1, 0], [1, 1], [0, 0], [np.nan, -1]])
    >>> groups, unplaced = label_groups(y)
    >>> [g.tolist() for g in groups], unplaced.tolist()
    ([[0, 1], [1], [2]], [3])
    """
    labels = np.asarray(labels)
    if labels.ndim == 1:
        _, inverse = np.unique(labels, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.flatnonzero(np.diff(inverse[order])) + 1
        return list(np.split(order, bounds)), np.array([], dtype=np.int64)
    values = labels.astype(np.float64)
    is_known = ~np.isnan(values) & (values != -1)
    if known is not None:
        is_known &= known
    positive = is_known & (values == 1)
    groups = [np.flatnonzero(col) for col in positive.T]
    groups = [g for g in groups if len(g)]
    no_positive = ~positive.any(axis=1)
    no_finding = np.flatnonzero(no_positive & is_known.any(axis=1))
    if len(no_finding):
        groups.append(no_finding)
    return groups, np.flatnonzero(no_positive & ~is_known.any(axis=1))


class MultiLabelBatchSampler:
    """Yield batches (lists of row indices) of ``m`` exams for each of several labels.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(N, C)`` labels (1 / 0 / -1 / NaN) or ``(N,)`` integer class ids.
    m : int
        Exams per drawn label.
    batch_size : int
        A multiple of ``m``; ``batch_size // m`` labels are drawn per batch.
    batches_per_epoch : int, optional
        Batches of one epoch over all ranks; default ``ceil(N / batch_size)``.
    seed : int
        Non-negative; with the epoch it fixes every batch.
    num_replicas, rank : int
        Distributed sharding: this process keeps every ``num_replicas``-th batch.
    known : numpy.ndarray, optional
        ``(N, C)`` bool mask; False marks a label position as unknown.

    Notes
    -----
    ``epoch`` and ``batches_done`` are the sampler's position. A full pass moves on to the
    next epoch by itself; ``set_epoch(e)`` jumps to epoch ``e`` (and keeps the position if
    ``e`` is the epoch being resumed, so a trainer can call it right after
    ``load_state_dict``).

    Examples
    --------
    >>> y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [0, 0], [0, 0], [0, 0]])
    >>> sampler = MultiLabelBatchSampler(y, m=2, batch_size=4, seed=1)
    >>> len(sampler), len(next(iter(sampler)))
    (2, 4)
    """

    def __init__(
        self,
        labels: np.ndarray,
        m: int = 4,
        batch_size: int = 32,
        batches_per_epoch: int | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        known: np.ndarray | None = None,
    ) -> None:
        self.labels = labels
        self.m = m
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.known = known
        # Position in the stream of batches (what state_dict saves), not derived data.
        self.epoch = 0
        self.batches_done = 0
        # Checked here, not at the first epoch, so a bad setting fails before training.
        self._check()

    def _check(self) -> None:
        owner = type(self).__name__
        for name in ("m", "batch_size", "num_replicas"):
            _check_int(getattr(self, name), name, owner, low=1)
        _check_int(self.seed, "seed", owner, low=0)
        _check_int(self.rank, "rank", owner, low=0)
        if self.batches_per_epoch is not None:
            _check_int(self.batches_per_epoch, "batches_per_epoch", owner, low=1)
        if self.rank >= self.num_replicas:
            raise SamplerInputError(
                f"rank must be < num_replicas; got rank={self.rank}, "
                f"num_replicas={self.num_replicas}."
            )
        if self.batch_size % self.m:
            raise SamplerInputError(
                f"batch_size must be a multiple of m (m exams per drawn label); got "
                f"batch_size={self.batch_size}, m={self.m}. Try batch_size="
                f"{self.batch_size - self.batch_size % self.m or self.m}."
            )
        _check_labels(self.labels, self.known)
        groups, unplaced = label_groups(self.labels, self.known)
        if not groups:
            raise SamplerInputError(
                "no row has a known label (all positions are -1, NaN or masked): there is "
                "nothing to draw batches from. Check the labels table and the uncertain policy."
            )
        if len(unplaced):
            warnings.warn(
                f"{len(unplaced)} of {len(self.labels)} rows have no known label and will "
                f"never be drawn (first rows: {unplaced[:10].tolist()}).",
                UserWarning,
                stacklevel=3,
            )

    def __len__(self) -> int:
        """Batches this rank yields per epoch."""
        return math.ceil(self._global_batches() / self.num_replicas)

    def _global_batches(self) -> int:
        if self.batches_per_epoch is not None:
            return self.batches_per_epoch
        return math.ceil(len(self.labels) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Move to ``epoch`` (from its start, unless it is the epoch being resumed)."""
        _check_int(epoch, "epoch", "set_epoch", low=0)
        if epoch != self.epoch:
            self.epoch = epoch
            self.batches_done = 0

    def state_dict(self) -> dict[str, Any]:
        """Where the sampler is: epoch and batches already yielded by this rank.

        A ``DataLoader`` pulls batches ahead of the training step (prefetching), so a
        trainer that checkpoints mid-epoch should store its own count of finished steps
        as ``batches_done``.
        """
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "num_replicas": self.num_replicas,
            "batch_size": self.batch_size,
            "m": self.m,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next batches are those an uninterrupted run would yield next."""
        for key in ("seed", "num_replicas", "batch_size", "m"):
            if key in state and state[key] != getattr(self, key):
                raise SamplerInputError(
                    f"cannot resume: the saved sampler state has {key}={state[key]!r} but this "
                    f"sampler has {key}={getattr(self, key)!r}, so the batches would differ. "
                    "Build the sampler with the saved settings, or restart the epoch."
                )
        epoch, done = state.get("epoch"), state.get("batches_done")
        _check_int(epoch, "epoch", "the sampler state", low=0)
        _check_int(done, "batches_done", "the sampler state", low=0)
        if done > len(self):
            raise SamplerInputError(
                f"the sampler state says {done} batches were done, but an epoch has only "
                f"{len(self)} on this rank. Was it saved with other data or settings?"
            )
        self.epoch, self.batches_done = epoch, done

    def __iter__(self) -> Iterator[list[int]]:
        groups, _ = label_groups(self.labels, self.known)
        per_rank = len(self)
        start = self.batches_done
        batches = _batch_stream(groups, self.m, self.batch_size, self.seed, self.epoch)
        for index in range(per_rank * self.num_replicas):
            batch = next(batches)
            local, owner = divmod(index, self.num_replicas)
            if owner != self.rank or local < start:
                continue
            self.batches_done = local + 1
            yield batch
        self.epoch += 1
        self.batches_done = 0


def _batch_stream(
    groups: list[np.ndarray], m: int, batch_size: int, seed: int, epoch: int
) -> Iterator[list[int]]:
    """Endless deterministic batches of one epoch."""
    rng = np.random.default_rng([seed, epoch])
    n_labels = batch_size // m
    while True:
        drawn = _draw_labels(rng, len(groups), n_labels)
        chosen: list[int] = []
        for label in drawn:
            chosen.extend(_draw_members(rng, groups[label], m, chosen, batch_size))
        yield chosen


def _draw_labels(rng: np.random.Generator, n_groups: int, n_labels: int) -> np.ndarray:
    """``n_labels`` labels, distinct while there are enough of them."""
    if n_groups >= n_labels:
        return rng.choice(n_groups, size=n_labels, replace=False)
    extra = rng.choice(n_groups, size=n_labels - n_groups, replace=True)
    return np.concatenate([rng.permutation(n_groups), extra])


def _draw_members(
    rng: np.random.Generator, members: np.ndarray, m: int, chosen: list[int], batch_size: int
) -> list[int]:
    """``m`` rows of one label, avoiding rows already in the batch while possible."""
    if len(members) <= _EXACT_GROUP_FACTOR * batch_size:
        unused = members[~np.isin(members, chosen)]
        if len(unused) >= m:
            return rng.choice(unused, size=m, replace=False).tolist()
        # Scarce label: every unused row, then repeats.
        return unused.tolist() + rng.choice(members, size=m - len(unused)).tolist()
    taken = set(chosen)
    picked: list[int] = []
    while len(picked) < m:
        for row in members[rng.integers(0, len(members), size=2 * m)].tolist():
            if row not in taken:
                taken.add(row)
                picked.append(row)
                if len(picked) == m:
                    break
    return picked


def _check_int(value: Any, name: str, owner: str, low: int) -> None:
    if not Interval(int, low, None).contains(value):
        raise SamplerInputError(
            f"The {name!r} parameter of {owner} must be an integer >= {low}; got {value!r}."
        )


def _check_labels(labels: Any, known: Any) -> None:
    """Labels must be (N,) integer ids or (N, C) with 1 / 0 / -1 / NaN; known matches."""
    if not isinstance(labels, np.ndarray):
        raise SamplerInputError(
            f"labels must be a numpy array; got {type(labels).__name__}. Use np.asarray(...)."
        )
    if labels.ndim not in (1, 2) or len(labels) == 0:
        raise SamplerInputError(
            f"labels must have shape (N,) (class ids) or (N, C) with N >= 1; got {labels.shape}."
        )
    if labels.ndim == 1:
        if not np.issubdtype(labels.dtype, np.integer):
            raise SamplerInputError(
                f"1-D labels must be integer class ids; got dtype {labels.dtype}. For one "
                "observation column pass an (N, 1) array."
            )
        if known is not None:
            raise SamplerInputError("known= needs (N, C) labels; 1-D class ids are all known.")
        return
    if not (np.issubdtype(labels.dtype, np.number) or labels.dtype == bool):
        raise SamplerInputError(f"labels must be numeric; got dtype {labels.dtype}.")
    values = labels.astype(np.float64)
    legal = np.isnan(values) | np.isin(values, (-1.0, 0.0, 1.0))
    if not legal.all():
        row, col = (int(i) for i in np.argwhere(~legal)[0])
        raise SamplerInputError(
            f"labels[{row}, {col}] is {labels[row, col]!r}; expected 1 (positive), 0 "
            "(negative), -1 (uncertain) or NaN (not mentioned)."
        )
    if known is not None and (
        not isinstance(known, np.ndarray) or known.shape != labels.shape or known.dtype != bool
    ):
        raise SamplerInputError(
            f"known must be a bool array of shape {labels.shape}; got "
            f"{getattr(known, 'dtype', type(known).__name__)} of shape "
            f"{getattr(known, 'shape', None)}."
        )
