"""The report-level aggregation rule is defined once and used by the labeller and by validate."""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxrlabel import Labeler
from cxrlabel.aggregate import (
    PRECEDENCE,
    STATUS_OF_VALUE,
    STATUSES,
    VALUE,
    Precedence,
    aggregate,
    combine_columns,
)
from cxrlabel.validation.alignment import combine_values

TEXTS = [
    "Possible pneumonia. Right lower lobe pneumonia. No pleural effusion.",
    "No pneumothorax. Small pneumothorax cannot be excluded.",
    "Cardiomegaly is unlikely. The heart is enlarged. No edema; possible mild edema.",
    "INDICATION: Rule out pneumonia.\nFINDINGS: No focal consolidation or effusion.",
]


def test_status_and_value_maps_are_inverse() -> None:
    assert set(VALUE) == set(STATUSES) == set(PRECEDENCE)
    assert {STATUS_OF_VALUE[v]: v for v in VALUE.values()} == VALUE


@pytest.mark.parametrize("order", list(permutations(STATUSES)))
def test_labeller_rows_follow_aggregate(order: tuple[str, ...]) -> None:
    lab = Labeler(precedence=order)
    rows = lab.label(TEXTS)
    for text, (_, row) in zip(TEXTS, rows.iterrows(), strict=True):
        statuses: dict[str, list[str]] = {}
        for m in lab.mentions(text):
            if not m["excluded"]:
                statuses.setdefault(m["observation"], []).append(m["assertion"])
        for name in lab.observations:
            expected = aggregate(statuses.get(name, []), order)
            got = row[name]
            assert (math.isnan(expected) and math.isnan(got)) or got == expected, (text, name)


_cell = st.sampled_from([1.0, 0.0, -1.0, math.nan])


@given(st.lists(st.lists(_cell, min_size=3, max_size=3), min_size=1, max_size=12))
def test_label_map_merge_is_the_same_rule(rows: list[list[float]]) -> None:
    block = np.array(rows)
    merged = combine_values(block)
    for order in (PRECEDENCE, ("uncertain", "negative", "positive")):
        by_rule = combine_columns(block, order)
        for i, row in enumerate(rows):
            expected = aggregate([STATUS_OF_VALUE[v] for v in row if not math.isnan(v)], order)
            assert (math.isnan(expected) and math.isnan(by_rule[i])) or by_rule[i] == expected
    np.testing.assert_array_equal(merged, combine_columns(block))


def test_per_key_keeps_the_winner_per_observation() -> None:
    pairs = [(0, "negative"), (0, "uncertain"), (2, "negative"), (0, "negative")]
    assert Precedence().per_key(pairs) == {0: -1.0, 2: 0.0}
    assert Precedence(("negative", "uncertain", "positive")).per_key(pairs) == {0: 0.0, 2: 0.0}


def test_bad_precedence_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="precedence must order"):
        Precedence(("positive", "negative"))
