"""Coding of an outcome table's columns: a yes/no target and clinical feature columns.

Target values are read case-insensitively: ``Y``, ``yes``, ``true``, ``1`` are 1 and ``N``,
``no``, ``false``, ``0`` are 0; blank cells and the values in ``missing_values`` (e.g. the
COVID collection's ``Not visible``) are missing. Anything else is an error that lists the
values, so a typo never becomes a silent 0.

A feature column becomes one or more float columns with NaN for missing values:

- numbers stay numbers (text that parses as numbers too);
- yes/no columns become 1 / 0;
- other text with at most :data:`MAX_LEVELS` distinct values is one-hot coded, one column
  per value named ``column=value`` (all NaN on a missing row);
- anything else (free text, ids) is refused.

Imputation happens later, inside the cross-validation pipeline, so no test row informs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxrembed.errors import OutcomeInputError

__all__ = ["YES", "NO", "MAX_LEVELS", "CodedFeatures", "encode_target", "encode_features"]

YES: frozenset[str] = frozenset({"y", "yes", "true", "1", "1.0"})
NO: frozenset[str] = frozenset({"n", "no", "false", "0", "0.0"})
#: Most distinct values a text feature may have to be one-hot coded.
MAX_LEVELS = 20


@dataclass(frozen=True)
class CodedFeatures:
    """Feature columns coded as floats.

    Attributes
    ----------
    values : numpy.ndarray
        float64 N x F, NaN = missing.
    names : list of str
        The F coded column names (``age``, ``sex=F``...).
    kinds : dict
        Source column -> ``numeric``, ``yes/no`` or ``categorical (k values)``.
    """

    values: np.ndarray
    names: list[str]
    kinds: dict[str, str]


def encode_target(
    column: pd.Series, *, source: str = "table", missing_values: Sequence[str] = ()
) -> np.ndarray:
    """Code a yes/no target as float 1 / 0, NaN where missing.

    Examples
    --------
    >>> encode_target(pd.Series(["Y", "no", None, "Not visible", "TRUE"], name="intubated"),
    ...               missing_values=["not visible"]).tolist()
    [1.0, 0.0, nan, nan, 1.0]
    """
    text = _text(column, missing_values)
    coded = text.map(lambda v: 1.0 if v in YES else 0.0 if v in NO else np.nan)
    bad = text.notna() & coded.isna()
    if bad.any():
        values = pd.Series(column[bad.to_numpy()]).astype(str).value_counts()
        shown = ", ".join(f"{v!r} ({n} rows)" for v, n in values.head(5).items())
        raise OutcomeInputError(
            f"{source}: target column {column.name!r} holds values that are neither yes nor no: "
            f"{shown}, first at row {int(np.flatnonzero(bad.to_numpy())[0])}; expected "
            "Y/N, yes/no, true/false or 1/0. Fix: recode them, or declare them missing "
            "(--missing-values / missing_values=)"
        )
    return coded.to_numpy(dtype=np.float64)


def encode_features(
    table: pd.DataFrame,
    features: Sequence[str],
    *,
    source: str = "table",
    missing_values: Sequence[str] = (),
) -> CodedFeatures:
    """Code ``features`` of ``table`` as a float matrix (see the module docstring).

    Examples
    --------
    >>> t = pd.DataFrame({"age": [60, None, 41], "sex": ["M", "F", None], "o2": ["Y", "N", "Y"]})
    >>> coded = encode_features(t, ["age", "sex", "o2"])
    >>> coded.names, coded.values[2].tolist()
    (['age', 'sex=F', 'sex=M', 'o2'], [41.0, nan, nan, 1.0])
    """
    absent = [f for f in features if f not in table.columns]
    if absent:
        raise OutcomeInputError(
            f"{source} has no feature columns {absent}; found columns {list(table.columns)}. "
            "Fix: check the names (they are case-sensitive)"
        )
    if len(set(features)) != len(features):
        raise OutcomeInputError(f"feature columns are repeated: {list(features)}")
    blocks: list[np.ndarray] = []
    names: list[str] = []
    kinds: dict[str, str] = {}
    for feature in features:
        block, block_names, kind = _encode_column(table[feature], source, missing_values)
        if np.isnan(block).all():
            raise OutcomeInputError(
                f"{source}: feature column {feature!r} has no value in the {len(table)} rows "
                "used; it cannot inform the model. Fix: drop it from the features"
            )
        blocks.append(block)
        names += block_names
        kinds[feature] = kind
    return CodedFeatures(np.concatenate(blocks, axis=1), names, kinds)


def _encode_column(
    column: pd.Series, source: str, missing_values: Sequence[str]
) -> tuple[np.ndarray, list[str], str]:
    name = str(column.name)
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
        return column.astype("float64").to_numpy().reshape(-1, 1), [name], "numeric"
    text = _text(column, missing_values)
    present = text.dropna()
    if present.isin(YES | NO).all():
        coded = text.map(lambda v: 1.0 if v in YES else 0.0 if v in NO else np.nan)
        return coded.to_numpy(dtype=np.float64).reshape(-1, 1), [name], "yes/no"
    raw = _raw_text(column, missing_values)
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers[raw.notna()].notna().all():
        return numbers.to_numpy(dtype=np.float64).reshape(-1, 1), [name], "numeric"
    levels = sorted(raw.dropna().unique().tolist())
    if len(levels) > MAX_LEVELS:
        raise OutcomeInputError(
            f"{source}: feature column {name!r} holds {len(levels)} distinct text values (e.g. "
            f"{levels[0]!r}); expected numbers, yes/no, or a category with at most "
            f"{MAX_LEVELS} values. Fix: leave free text and ids out of the features"
        )
    block = np.stack([(raw == level).astype("float64").to_numpy() for level in levels], axis=1)
    block[raw.isna().to_numpy()] = np.nan
    return block, [f"{name}={level}" for level in levels], f"categorical ({len(levels)} values)"


def _raw_text(column: pd.Series, missing_values: Sequence[str]) -> pd.Series:
    """Stripped text; blank cells and ``missing_values`` (case-insensitive) become NA."""
    missing = {str(v).strip().casefold() for v in missing_values}
    values = [
        None
        if pd.isna(v) or not str(v).strip() or str(v).strip().casefold() in missing
        else str(v).strip()
        for v in column.tolist()
    ]
    return pd.Series(values, index=column.index, dtype=object)


def _text(column: pd.Series, missing_values: Sequence[str]) -> pd.Series:
    """Case-folded stripped text, NA where missing."""
    raw = _raw_text(column, missing_values)
    return raw.map(lambda v: v.casefold() if isinstance(v, str) else v)
