"""Patient-level train/validation split: no patient on both sides, stratified where possible.

Several images of one patient (follow-ups, PA + lateral) are near duplicates: if they land
on both sides, validation retrieval finds the same patient and looks far better than it
is. :func:`split_by_group` assigns whole groups (patients) to one side.

Stratification: each group gets one stratum, the most frequent value of ``stratify_col``
among its rows (ties: the smallest value in sort order). Within each stratum, groups are
visited in a seeded random order and added to validation while that brings the stratum's
validation row count closer to ``val_fraction`` of its rows; the shortfall (or excess) of
each stratum is carried to the next (error diffusion), so rare strata still land in
validation now and then and the overall fraction stays close to ``val_fraction``.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from cxrlabel.errors import InputError

__all__ = ["GroupSplit", "split_by_group"]


class GroupSplit(NamedTuple):
    """Row positions (0-based, increasing) of each side."""

    train: np.ndarray
    val: np.ndarray


def split_by_group(
    table: pd.DataFrame,
    group_col: str,
    val_fraction: float = 0.2,
    seed: int = 0,
    stratify_col: str | None = None,
) -> GroupSplit:
    """Split the rows of ``table`` by ``group_col`` (e.g. patient id) into train and val.

    Parameters
    ----------
    table : pandas.DataFrame
    group_col : str
        Rows sharing a value stay on one side. A blank value makes the row its own group
        (with a warning: such rows could belong to any patient).
    val_fraction : float
        Target share of rows in validation, in (0, 1).
    seed : int
        Same seed, same table -> same split.
    stratify_col : str, optional
        A label column to balance between the sides (see the module docstring).

    Returns
    -------
    GroupSplit
        ``(train, val)`` arrays of row positions; together they cover every row once.

    Examples
    --------
    >>> t = pd.DataFrame({"patient": [1, 1, 2, 3, 3, 4, 5, 5, 6, 7]})
    >>> train, val = split_by_group(t, "patient", val_fraction=0.3, seed=1)
    >>> sorted(set(t.patient[train]) & set(t.patient[val]))
    []
    >>> len(train) + len(val)
    10
    """
    for col in (group_col, stratify_col):
        if col is not None and col not in table.columns:
            raise InputError(f"no column {col!r} to split by; found columns {list(table.columns)}")
    if not 0.0 < float(val_fraction) < 1.0:
        raise InputError(f"val_fraction must be between 0 and 1 (exclusive); got {val_fraction}")
    groups = _group_keys(table[group_col])
    codes, uniques = pd.factorize(pd.Series(groups), sort=True)
    if len(uniques) < 2:
        raise InputError(
            f"column {group_col!r} has {len(uniques)} distinct group(s); a split needs at least 2"
        )
    sizes = np.bincount(codes, minlength=len(uniques))
    strata = _group_strata(table, codes, len(uniques), stratify_col)
    rng = np.random.default_rng(seed)
    in_val = np.zeros(len(uniques), dtype=bool)
    carry = 0.0
    order = sorted(set(strata), key=lambda s: (-int(sizes[strata == s].sum()), s))
    for stratum in order:
        members = rng.permutation(np.flatnonzero(strata == stratum))
        target = val_fraction * float(sizes[members].sum()) + carry
        taken = 0
        for g in members:
            if abs(taken + sizes[g] - target) <= abs(taken - target):
                in_val[g] = True
                taken += int(sizes[g])
        carry = target - taken
    _keep_both_sides(in_val, sizes, rng)
    val_rows = in_val[codes]
    return GroupSplit(np.flatnonzero(~val_rows), np.flatnonzero(val_rows))


def _group_keys(column: pd.Series) -> list[str]:
    blank = column.isna().to_numpy()
    if blank.any():
        warnings.warn(
            f"{int(blank.sum())} rows have a blank {column.name!r}; each is its own group, "
            "so images of one patient may end up on both sides",
            stacklevel=3,
        )
    values = column.astype("object").tolist()
    return [
        f"\0row{i}" if b else f"v{v}" for i, (v, b) in enumerate(zip(values, blank, strict=True))
    ]


def _group_strata(
    table: pd.DataFrame, codes: np.ndarray, n_groups: int, stratify_col: str | None
) -> np.ndarray:
    if stratify_col is None:
        return np.zeros(n_groups, dtype=np.int64)
    labels = table[stratify_col].astype("object").where(table[stratify_col].notna(), "<blank>")
    label_codes, _ = pd.factorize(labels.astype(str), sort=True)
    counts = np.zeros((n_groups, int(label_codes.max()) + 1), dtype=np.int64)
    np.add.at(counts, (codes, label_codes), 1)
    return counts.argmax(axis=1)  # argmax takes the first (smallest) label on ties


def _keep_both_sides(in_val: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> None:
    """Tiny tables can leave one side empty: move the smallest group across."""
    for side in (True, False):
        if not (in_val == side).any():
            pool = np.flatnonzero(in_val != side)
            smallest = pool[sizes[pool] == sizes[pool].min()]
            in_val[rng.choice(smallest)] = side
