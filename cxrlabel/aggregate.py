"""Report-level aggregation: many mention statuses → one value per observation.

CheXpert's rule: any positive mention → 1, else any uncertain → -1, else any negative → 0,
no mention → blank (NaN). The precedence is configurable (e.g. a conservative user may let
uncertain win over positive).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["PRECEDENCE", "VALUE", "aggregate", "ranks"]

PRECEDENCE: tuple[str, str, str] = ("positive", "uncertain", "negative")
VALUE = {"positive": 1.0, "uncertain": -1.0, "negative": 0.0}


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
    if not statuses:
        return math.nan
    present = set(statuses)
    for status in precedence:
        if status in present:
            return VALUE[status]
    raise ValueError(f"unknown mention status in {sorted(present)}; expected {list(VALUE)}")


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
