"""The label convention: encode_labels (CheXpert uncertain policies) against a plain loop,
and the label matrix from a schema, explicit columns or one categorical column."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxrembed.data.labels import (
    UNCERTAIN_POLICIES,
    LabelOptions,
    encode_labels,
    label_matrix,
    status_exclusions,
)
from cxrlabel.chexpert_format import OBSERVATIONS
from cxrlabel.errors import InputError

#: The 14 CheXpert observations in the labeller's order: the "chexpert" schema's columns.
CHEXPERT = list(OBSERVATIONS)


def _reference(value: float, policy: str, soft: float, unmentioned: str) -> tuple[float, float]:
    """The policy table of the module docstring, one value at a time."""
    if math.isnan(value):
        return 0.0, 0.0 if unmentioned == "ignore" else 1.0
    if value == -1:
        return {"ignore": (0.0, 0.0), "zeros": (0.0, 1.0), "ones": (1.0, 1.0), "soft": (soft, 1.0)}[
            policy
        ]
    return value, 1.0


@settings(max_examples=60, deadline=None)
@given(
    codes=st.lists(
        st.lists(st.sampled_from([1.0, 0.0, -1.0, math.nan]), min_size=3, max_size=3),
        min_size=1,
        max_size=6,
    ),
    policy=st.sampled_from(UNCERTAIN_POLICIES),
    soft=st.floats(0.0, 1.0),
    unmentioned=st.sampled_from(["zeros", "ignore"]),
)
def test_encode_labels_matches_the_reference_loop(codes, policy, soft, unmentioned):
    targets, mask = encode_labels(np.array(codes), policy, soft, unmentioned)
    assert targets.dtype == mask.dtype == np.float32
    for i, row in enumerate(codes):
        for j, value in enumerate(row):
            t, m = _reference(value, policy, soft, unmentioned)
            assert targets[i, j] == pytest.approx(t, abs=1e-6) and mask[i, j] == m


def test_encode_labels_by_hand():
    raw = [[1, 0, -1, np.nan]]
    assert encode_labels(raw, "ignore")[1].tolist() == [[1, 1, 0, 1]]
    assert encode_labels(raw, "zeros")[0].tolist() == [[1, 0, 0, 0]]
    assert encode_labels(raw, "ones")[0].tolist() == [[1, 0, 1, 0]]
    targets, mask = encode_labels(raw, "soft", soft_value=0.25, unmentioned="ignore")
    assert targets.tolist() == [[1, 0, 0.25, 0]] and mask.tolist() == [[1, 1, 1, 0]]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"values": [[2.0]]}, "1, 0, -1 or NaN"),
        ({"values": [[1.0]], "policy": "U-Ones"}, "policy"),
        ({"values": [[1.0]], "soft_value": 1.5}, "soft_value"),
        ({"values": [[1.0]], "unmentioned": "ones"}, "unmentioned"),
        ({"values": np.zeros((1, 1, 1))}, "2-D"),
    ],
)
def test_encode_labels_rejects_bad_input(kwargs, match):
    with pytest.raises(InputError, match=match):
        encode_labels(**kwargs)


def test_schema_columns_read_as_written_by_cxr_label():
    table = pd.DataFrame({name: ["", "1", "-1.0"] for name in CHEXPERT})
    table["Edema"] = [0, np.nan, 1]
    matrix = label_matrix(table, schema="chexpert")
    assert matrix.names == CHEXPERT and not matrix.categorical
    assert np.isnan(matrix.values[0, 0]) and matrix.values[1, 0] == 1 and matrix.values[2, 0] == -1
    assert matrix.values[:, CHEXPERT.index("Edema")].tolist()[::2] == [0, 1]


def test_missing_schema_columns_are_named():
    with pytest.raises(InputError, match=r"lacks label columns .*'Fracture'.*cxr label"):
        label_matrix(
            pd.DataFrame({n: [1] for n in CHEXPERT[:-2]}), schema="chexpert", source="labels.csv"
        )


def test_bad_label_value_names_column_and_row():
    table = pd.DataFrame({"Edema": [1, 0], "Mass": ["1", "yes"]})
    with pytest.raises(InputError, match=r"t\.csv: column 'Mass' row 1 holds 'yes'"):
        label_matrix(table, columns=["Edema", "Mass"], source="t.csv")
    with pytest.raises(InputError, match="row 0 holds 3"):
        label_matrix(pd.DataFrame({"Edema": [3]}), columns=["Edema"])


def test_exactly_one_label_source():
    table = pd.DataFrame({"a": [1]})
    with pytest.raises(InputError, match="exactly one"):
        label_matrix(table)
    with pytest.raises(InputError, match="exactly one"):
        label_matrix(table, columns=["a"], label_col="a")


def test_categorical_column_one_hot_with_unknown_rows():
    table = pd.DataFrame({"finding": ["COVID-19", "TODO", None, "SARS", "COVID-19, ARDS"]})
    matrix = label_matrix(table, label_col="finding")
    assert matrix.categorical
    assert matrix.names == ["COVID-19", "COVID-19, ARDS", "SARS"]
    assert matrix.values[0].tolist() == [1, 0, 0]
    assert np.isnan(matrix.values[1]).all() and np.isnan(matrix.values[2]).all()
    split = label_matrix(table, label_col="finding", separator=",")
    assert split.names == ["ARDS", "COVID-19", "SARS"]
    assert split.values[4].tolist() == [1, 1, 0]


def test_categorical_unknown_rows_are_masked_by_default():
    options = LabelOptions(label_col="finding")
    matrix = options.matrix(pd.DataFrame({"finding": ["a", "todo"]}))
    _, mask = encode_labels(
        matrix.values, options.policy, unmentioned=options.unmentioned_for(categorical=True)
    )
    assert mask.tolist() == [[1.0], [0.0]]
    assert LabelOptions(schema="chexpert").unmentioned_for(categorical=False) == "zeros"


def test_categorical_errors():
    with pytest.raises(InputError, match="no label column 'finding'"):
        label_matrix(pd.DataFrame({"x": [1]}), label_col="finding")
    with pytest.raises(InputError, match="no known values"):
        label_matrix(pd.DataFrame({"finding": ["todo", None]}), label_col="finding")


def test_status_exclusions():
    table = pd.DataFrame({"status": ["ok", "empty", "error: bad encoding", None, " OK "]})
    records = status_exclusions(table, ["a", "b", "c", "d", "e"])
    assert [(r["row"], r["id"], r["kind"]) for r in records] == [
        (1, "b", "label-status"),
        (2, "c", "label-status"),
        (3, "d", "label-status"),
    ]
    assert "'empty'" in records[0]["reason"]
    assert status_exclusions(table, ["a"] * 5, status_col=None) == []
    assert status_exclusions(pd.DataFrame({"x": [1]}), ["a"]) == []
