"""cxrlabel.stats: the one bootstrap helper of cxr validate and cxr predict-outcome."""

from __future__ import annotations

import numpy as np
import pytest

from cxrlabel import stats
from cxrlabel.validation import metrics


def test_rows_and_distinct_units_give_the_same_draws() -> None:
    by_row = stats.bootstrap_weights(6, 40, seed=5)
    by_unit = stats.bootstrap_weights(np.array(list("abcdef")), 40, seed=5)
    np.testing.assert_array_equal(by_row, by_unit)
    grouped = stats.bootstrap_weights(np.array(["p2", "p1", "p2"]), 40, seed=5)
    np.testing.assert_array_equal(grouped[:, 0], grouped[:, 2])
    assert (grouped.sum(axis=0) > 0).all()


def test_interval_of_one_column_is_the_ci() -> None:
    values = np.r_[np.linspace(0.0, 1.0, 41), np.nan]
    low, high, n = stats.percentile_ci(values)
    lo, hi = stats.percentile_interval(values[:, None])
    assert (low, high, n) == (lo[0], hi[0], 41)


def test_both_packages_use_it() -> None:
    assert metrics.bootstrap_weights is stats.bootstrap_weights
    assert metrics.percentile_interval is stats.percentile_interval
    bootstrap = pytest.importorskip("cxrembed.outcome.bootstrap")
    assert bootstrap.bootstrap_weights is stats.bootstrap_weights
    assert bootstrap.percentile_ci is stats.percentile_ci
