"""Patient-level split: no group on both sides, every row once, deterministic, stratified."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxrembed.data.split import split_by_group
from cxrlabel.errors import InputError


def _check_partition(table, group_col, train, val):
    assert np.intersect1d(train, val).size == 0
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(table)))
    assert not set(table[group_col].iloc[train]) & set(table[group_col].iloc[val])
    assert len(train) and len(val)


@settings(max_examples=60, deadline=None)
@given(
    groups=st.lists(st.integers(0, 30), min_size=2, max_size=80).filter(lambda g: len(set(g)) > 1),
    labels=st.lists(st.sampled_from("abc"), min_size=80, max_size=80),
    fraction=st.floats(0.05, 0.95),
    seed=st.integers(0, 1000),
    stratify=st.booleans(),
)
def test_partition_property(groups, labels, fraction, seed, stratify):
    table = pd.DataFrame({"patient": groups, "finding": labels[: len(groups)]})
    train, val = split_by_group(table, "patient", fraction, seed, "finding" if stratify else None)
    _check_partition(table, "patient", train, val)


def test_deterministic_given_the_seed():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"patient": rng.integers(0, 100, 400)})
    first = split_by_group(table, "patient", seed=3)
    again = split_by_group(table, "patient", seed=3)
    other = split_by_group(table, "patient", seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first.val, other.val)


def test_fraction_is_close_to_the_target():
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"patient": rng.integers(0, 300, 1000)})
    for fraction in (0.1, 0.2, 0.5):
        _, val = split_by_group(table, "patient", fraction, seed=0)
        assert abs(len(val) / len(table) - fraction) < 0.02


def test_stratified_split_keeps_label_shares():
    rng = np.random.default_rng(2)
    patients = np.arange(400)
    label = np.where(rng.random(400) < 0.1, "rare", "common")  # one label per patient
    per_row = rng.integers(1, 4, 400)
    table = pd.DataFrame(
        {"patient": np.repeat(patients, per_row), "finding": np.repeat(label, per_row)}
    )
    train, val = split_by_group(table, "patient", 0.2, seed=0, stratify_col="finding")
    _check_partition(table, "patient", train, val)
    for value in ("rare", "common"):
        rows = table["finding"] == value
        share = rows.iloc[val].sum() / rows.sum()
        assert abs(share - 0.2) < 0.05, (value, share)


def test_blank_groups_warn_and_stay_single():
    table = pd.DataFrame({"patient": [1, 1, None, None, 2, 3]})
    with pytest.warns(UserWarning, match="2 rows have a blank 'patient'"):
        train, val = split_by_group(table, "patient", 0.3)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(6))


def test_errors():
    table = pd.DataFrame({"patient": [1, 1, 1]})
    with pytest.raises(InputError, match="at least 2"):
        split_by_group(table, "patient")
    with pytest.raises(InputError, match="val_fraction"):
        split_by_group(pd.DataFrame({"patient": [1, 2]}), "patient", 1.0)
    with pytest.raises(InputError, match="no column 'pid'"):
        split_by_group(table, "pid")


def test_real_covid_split_by_patient(cxr_dev):
    table = pd.read_csv(cxr_dev / "covid_metadata.csv")
    train, val = split_by_group(table, "patientid", 0.2, seed=0, stratify_col="finding")
    _check_partition(table, "patientid", train, val)
    assert 0.15 < len(val) / len(table) < 0.25
    covid = table["finding"] == "COVID-19"
    assert 0.1 < covid.iloc[val].sum() / covid.sum() < 0.3
