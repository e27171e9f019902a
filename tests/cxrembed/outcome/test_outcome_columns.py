"""Tests of the target and feature coding of outcome tables (cxrembed.outcome.columns)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxrembed.errors import OutcomeInputError
from cxrembed.outcome.columns import MAX_LEVELS, encode_features, encode_target


def test_target_vocabulary_case_and_blanks():
    column = pd.Series(
        ["Y", "n", "Yes", "NO", "True", "false", "1", "0", " ", None, "y "], name="t"
    )
    got = encode_target(column)
    np.testing.assert_array_equal(got, [1, 0, 1, 0, 1, 0, 1, 0, np.nan, np.nan, 1])


def test_numeric_and_bool_targets():
    np.testing.assert_array_equal(
        encode_target(pd.Series([1.0, 0.0, np.nan], name="t")), [1, 0, np.nan]
    )
    np.testing.assert_array_equal(encode_target(pd.Series([True, False], name="t")), [1, 0])


def test_unknown_target_values_are_an_error_unless_declared_missing():
    column = pd.Series(["Y", "Not visible", "N", "Not visible", "maybe"], name="intubated")
    with pytest.raises(
        OutcomeInputError,
        match=r"'Not visible' \(2 rows\), 'maybe' \(1 rows\), "
        r"first at row 1.*--missing-values",
    ):
        encode_target(column, source="t.csv")
    with pytest.raises(OutcomeInputError, match="'maybe'"):
        encode_target(column, missing_values=["not visible"])
    got = encode_target(column, missing_values=["NOT VISIBLE", "maybe"])
    np.testing.assert_array_equal(got, [1, np.nan, 0, np.nan, np.nan])
    with pytest.raises(OutcomeInputError, match="'2.0'"):
        encode_target(pd.Series([0.0, 1.0, 2.0], name="score"))


def test_features_numeric_yes_no_text_numbers_and_categories():
    table = pd.DataFrame(
        {
            "age": [50, np.nan, 70],
            "o2": ["Y", None, "n"],
            "temp": ["38.5", "", "39"],  # numbers stored as text
            "view": ["PA", "AP", None],
        }
    )
    coded = encode_features(table, ["age", "o2", "temp", "view"])
    assert coded.names == ["age", "o2", "temp", "view=AP", "view=PA"]
    assert coded.kinds == {
        "age": "numeric",
        "o2": "yes/no",
        "temp": "numeric",
        "view": "categorical (2 values)",
    }
    expected = [[50, 1, 38.5, 0, 1], [np.nan, np.nan, np.nan, 1, 0], [70, 0, 39, np.nan, np.nan]]
    np.testing.assert_array_equal(coded.values, expected)


def test_feature_errors():
    table = pd.DataFrame(
        {"age": [1, 2], "note": [f"text {i}" for i in range(2)], "empty": [None, None]}
    )
    with pytest.raises(OutcomeInputError, match=r"no feature columns \['Age'\]"):
        encode_features(table, ["Age"])
    with pytest.raises(OutcomeInputError, match="'empty' has no value"):
        encode_features(table, ["age", "empty"])
    with pytest.raises(OutcomeInputError, match="repeated"):
        encode_features(table, ["age", "age"])
    many = pd.DataFrame({"free": [f"note {i}" for i in range(MAX_LEVELS + 1)]})
    with pytest.raises(OutcomeInputError, match=f"{MAX_LEVELS + 1} distinct text values"):
        encode_features(many, ["free"])


def test_missing_values_apply_to_features():
    table = pd.DataFrame({"sat": ["95", "unknown", "88"]})
    # without declaring "unknown" missing, the column reads as a category of three values
    assert encode_features(table, ["sat"]).kinds == {"sat": "categorical (3 values)"}
    coded = encode_features(table, ["sat"], missing_values=["Unknown"])
    assert coded.kinds == {"sat": "numeric"}
    np.testing.assert_array_equal(coded.values[:, 0], [95, np.nan, 88])
