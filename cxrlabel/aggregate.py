"""Mention statuses, their label values, and the report-level aggregation rule (defined once).

A mention is ``positive``, ``negative`` or ``uncertain`` (the words of
:data:`cxrlabel.vocab.STATUSES`); a labels table holds 1 / 0 / -1 (blank = not mentioned).
:data:`VALUE` and :data:`STATUS_OF_VALUE` are the only maps between the two; the labeller,
the label-map merge of ``cxr validate``, the evidence lookup and the metrics import them
from here.

CheXpert's rule: any positive mention → 1, else any uncertain → -1, else any negative → 0,
no mention → blank (NaN). The precedence is configurable (e.g. a conservative user may let
uncertain win over positive); :class:`Precedence` applies one order to statuses, to a
report's (observation, status) pairs (the labeller's fast path) and to columns of values
(several label columns merged into one).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence

import numpy as np

from cxrlabel.vocab import STATUSES

__all__ = [
    "POSITIVE",
    "NEGATIVE",
    "UNCERTAIN",
    "STATUSES",
    "PRECEDENCE",
    "VALUE",
    "STATUS_OF_VALUE",
    "Precedence",
    "aggregate",
    "combine_columns",
    "ranks",
]

POSITIVE, UNCERTAIN, NEGATIVE = STATUSES  # the words, from cxrlabel.vocab
PRECEDENCE: tuple[str, ...] = STATUSES  # CheXpert's order: positive, uncertain, negative
VALUE: dict[str, float] = {POSITIVE: 1.0, UNCERTAIN: -1.0, NEGATIVE: 0.0}
STATUS_OF_VALUE: dict[float, str] = {v: s for s, v in VALUE.items()}


def ranks(precedence: Sequence[str] = PRECEDENCE) -> dict[str, int]:
    """Status → rank (0 wins) for the fast path that keeps only the best status per observation.

    Examples
    --------
    >>> ranks()["uncertain"]
    1
    """
    if sorted(precedence) != sorted(VALUE):
        raise ValueError(f"precedence must order {list(VALUE)}, got {list(precedence)}")
    return {status: i for i, status in enumerate(precedence)}


class Precedence:
    """One precedence order of the statuses, applied to statuses, pairs or value columns.

    Examples
    --------
    >>> rule = Precedence()
    >>> rule.per_key([(3, "negative"), (3, "positive"), (5, "uncertain")])
    {3: 1.0, 5: -1.0}
    """

    def __init__(self, order: Sequence[str] = PRECEDENCE) -> None:
        self.rank = ranks(order)
        self.order = tuple(order)
        self._value_of_rank = [VALUE[s] for s in self.order]

    def combine(self, statuses: Iterable[str]) -> float:
        """The value of one observation from its mention statuses (NaN when there are none)."""
        present = set(statuses)
        if not present:
            return math.nan
        for status in self.order:
            if status in present:
                return VALUE[status]
        raise ValueError(f"unknown mention status in {sorted(present)}; expected {list(VALUE)}")

    def per_key(self, pairs: Iterable[tuple[Hashable, str]]) -> dict[Hashable, float]:
        """``(key, status)`` pairs → the winning value per key (keys without pairs left out)."""
        rank = self.rank
        best: dict[Hashable, int] = {}
        for key, status in pairs:
            k = rank[status]
            if k < best.get(key, 3):
                best[key] = k
        values = self._value_of_rank
        return {key: values[k] for key, k in best.items()}

    def combine_columns(self, block: np.ndarray) -> np.ndarray:
        """Merge label columns (1 / 0 / -1 / NaN) into one, row by row; all-blank rows stay blank."""
        block = np.asarray(block, dtype=np.float64)
        out = np.full(block.shape[0], np.nan)
        for status in reversed(self.order):  # the winning status is written last
            value = VALUE[status]
            out[(block == value).any(axis=1)] = value
        return out


_DEFAULT = Precedence()


def aggregate(statuses: Sequence[str], precedence: Sequence[str] = PRECEDENCE) -> float:
    """Combine mention statuses of one observation into 1 / -1 / 0 / NaN.

    Examples
    --------
    >>> aggregate(["negative", "uncertain"])
    -1.0
    >>> aggregate(["negative", "uncertain"], ("negative", "positive", "uncertain"))
    0.0
    >>> aggregate([])
    nan
    """
    rule = _DEFAULT if tuple(precedence) == PRECEDENCE else Precedence(precedence)
    return rule.combine(statuses)


def combine_columns(block: np.ndarray, precedence: Sequence[str] = PRECEDENCE) -> np.ndarray:
    """Merge several label columns into one by the same rule as :func:`aggregate`.

    Examples
    --------
    >>> combine_columns(np.array([[0, np.nan], [-1, 0], [np.nan, np.nan], [1, -1]])).tolist()
    [0.0, -1.0, nan, 1.0]
    """
    rule = _DEFAULT if tuple(precedence) == PRECEDENCE else Precedence(precedence)
    return rule.combine_columns(block)
