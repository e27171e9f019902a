"""Bootstrap resampling weights and percentile intervals: one helper for both packages.

A bootstrap draw resamples *units* with replacement: reports (``cxr validate``) or patients
(``cxr predict-outcome``); a row then counts as many times as its unit was drawn, which is a
row weight. ``weights @ per_row_statistics`` gives every draw at once, so an interval over
1,000 draws is one matrix product. Seeded locally (no global state): the same seed gives the
same draws, hence the same intervals.

Examples
--------
>>> w = bootstrap_weights(4, 3, seed=0)       # 3 draws of 4 rows
>>> w.shape, w.sum(axis=1).tolist()
((3, 4), [4.0, 4.0, 4.0])
>>> w = bootstrap_weights(np.array(["p1", "p1", "p2"]), 4, seed=0)  # by patient
>>> bool((w[:, 0] == w[:, 1]).all())
True
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["bootstrap_weights", "percentile_interval", "percentile_ci"]


def bootstrap_weights(units: int | np.ndarray, n_draws: int, seed: int = 0) -> np.ndarray:
    """Row weights of ``n_draws`` bootstrap draws, float64 ``(n_draws, N)``.

    ``units`` is the number of rows N (each row is its own unit) or one unit label per row
    (a cluster bootstrap: rows of a unit are drawn together). With distinct labels in sorted
    order both give the same weights.
    """
    if isinstance(units, numbers.Integral):
        n_units, inverse = int(units), None
    else:
        _, inverse = np.unique(np.asarray(units), return_inverse=True)
        inverse = inverse.reshape(-1)
        n_units = int(inverse.max()) + 1 if len(inverse) else 0
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_units, size=(n_draws, n_units))
    flat = (draws + np.arange(n_draws)[:, None] * n_units).ravel()
    counts = np.bincount(flat, minlength=n_draws * n_units).reshape(n_draws, n_units)
    counts = counts.astype(np.float64)
    return counts if inverse is None else counts[:, inverse]


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring draws where the statistic is undefined (NaN).

    All-NaN columns give NaN bounds.

    Examples
    --------
    >>> lo, hi = percentile_interval(np.array([[0.5, np.nan], [0.7, np.nan]]), level=0.5)
    >>> lo.round(3).tolist(), hi.round(3).tolist()
    ([0.55, nan], [0.65, nan])
    """
    samples = np.asarray(samples, dtype=np.float64)
    alpha = (1.0 - level) / 2.0
    lo = np.full(samples.shape[1:], np.nan)
    hi = np.full(samples.shape[1:], np.nan)
    defined = ~np.isnan(samples).all(axis=0)
    if defined.any():
        cols = samples[:, defined]
        lo[defined] = np.nanquantile(cols, alpha, axis=0)
        hi[defined] = np.nanquantile(cols, 1.0 - alpha, axis=0)
    return lo, hi


def percentile_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, int]:
    """(low, high, number of defined draws) of the finite ``values``; NaN when none.

    Examples
    --------
    >>> low, high, n = percentile_ci(np.array([0.5, 0.6, np.nan, 0.7]), level=0.5)
    >>> round(low, 3), round(high, 3), n
    (0.55, 0.65, 3)
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return float("nan"), float("nan"), 0
    low, high = percentile_interval(finite[:, None], level)
    return float(low[0]), float(high[0]), len(finite)
