"""The label convention and the uncertain-label policy, defined once for all of cxrembed.

Raw label values follow the labels-table contract (``cxr label`` output, CheXpert's files):
``1`` positive, ``0`` negative, ``-1`` uncertain, blank/NaN not mentioned. Training and
evaluation turn them into a ``target`` (float) and a ``mask`` (1 = the target counts, 0 =
ignore it) with :func:`encode_labels`, following the policies of the CheXpert paper
(Irvin et al., 2019):

========== =========================== ==============================================
policy     uncertain (-1) becomes       note
========== =========================== ==============================================
``ignore`` target 0, mask 0             U-Ignore (default)
``zeros``  target 0, mask 1             U-Zeros
``ones``   target 1, mask 1             U-Ones
``soft``   target ``soft_value``, mask 1 label smoothing (e.g. 0.5)
========== =========================== ==============================================

Not mentioned (NaN) is negative by default (target 0, mask 1: "not mentioned" in a report
means absent, CheXpert's convention); ``unmentioned="ignore"`` masks it out instead, which
is right when NaN means "unknown" (torchxrayvision datasets, categorical labels).

:func:`label_matrix` builds the raw N x C matrix from a table: from a schema's observation
columns, an explicit list of columns, or one categorical column (one-hot over its values).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from cxrembed.data.exclusions import Exclusion, exclusion
from cxrlabel import vocab
from cxrlabel.aggregate import VALUE
from cxrlabel.errors import InputError

__all__ = [
    "UncertainPolicy",
    "Unmentioned",
    "UNCERTAIN_POLICIES",
    "LabelMatrix",
    "LabelOptions",
    "encode_labels",
    "label_matrix",
    "status_exclusions",
    "STATUS_VALUE",
    "POSITIVE",
    "NEGATIVE",
    "UNCERTAIN",
]

UncertainPolicy = Literal["ignore", "zeros", "ones", "soft"]
Unmentioned = Literal["zeros", "ignore"]
UNCERTAIN_POLICIES: tuple[str, ...] = vocab.UNCERTAIN_POLICIES.values
_UNMENTIONED: tuple[str, ...] = ("zeros", "ignore")
#: Label value of each mention status (cxrlabel's map, the one definition cxrembed uses).
STATUS_VALUE: dict[str, float] = dict(VALUE)
POSITIVE, NEGATIVE, UNCERTAIN = (STATUS_VALUE[s] for s in ("positive", "negative", "uncertain"))


@dataclass(frozen=True)
class LabelMatrix:
    """Raw labels aligned with a table's rows.

    Attributes
    ----------
    values : numpy.ndarray
        float32 N x C with 1, 0, -1 or NaN.
    names : list of str
        The C label names, in column order.
    categorical : bool
        True when built from one categorical column; NaN then means "unknown value".
    """

    values: np.ndarray
    names: list[str]
    categorical: bool = False


def encode_labels(
    values: np.ndarray | Sequence[Sequence[float]],
    policy: UncertainPolicy = "ignore",
    soft_value: float = 0.5,
    unmentioned: Unmentioned = "zeros",
) -> tuple[np.ndarray, np.ndarray]:
    """Turn raw labels (1 / 0 / -1 / NaN) into training targets and a mask of known labels.

    Parameters
    ----------
    values : array-like, shape (N, C) or (C,)
        Raw labels: 1 positive, 0 negative, -1 uncertain, NaN not mentioned.
    policy : {"ignore", "zeros", "ones", "soft"}
        What an uncertain label becomes (see the module docstring).
    soft_value : float
        Target of an uncertain label under ``policy="soft"``, in [0, 1].
    unmentioned : {"zeros", "ignore"}
        NaN becomes a known negative (``"zeros"``) or is masked out (``"ignore"``).

    Returns
    -------
    targets, mask : numpy.ndarray
        float32 arrays shaped like ``values``; masked entries have target 0.

    Examples
    --------
    >>> t, m = encode_labels([[1, 0, -1, float("nan")]], policy="soft", soft_value=0.3)
    >>> t.tolist(), m.tolist()
    ([[1.0, 0.0, 0.30000001192092896, 0.0]], [[1.0, 1.0, 1.0, 1.0]])
    >>> encode_labels([[1, 0, -1, float("nan")]], unmentioned="ignore")[1].tolist()
    [[1.0, 1.0, 0.0, 0.0]]
    """
    policy = vocab.UNCERTAIN_POLICIES.check(policy, "uncertain-label policy")  # type: ignore[assignment]
    if unmentioned not in _UNMENTIONED:
        raise InputError(f"unmentioned must be 'zeros' or 'ignore'; got {unmentioned!r}")
    if not 0.0 <= float(soft_value) <= 1.0:
        raise InputError(f"soft_value must be in [0, 1]; got {soft_value!r}")
    raw = np.asarray(values, dtype=np.float32)
    if raw.ndim not in (1, 2):
        raise InputError(f"labels must be 1-D or 2-D (N x C); got shape {raw.shape}")
    _check_codes(raw)
    missing = np.isnan(raw)
    uncertain = raw == UNCERTAIN
    targets = np.where(missing | uncertain, 0.0, raw).astype(np.float32)
    mask = np.ones_like(raw, dtype=np.float32)
    if unmentioned == "ignore":
        mask[missing] = 0.0
    if policy == "ignore":
        mask[uncertain] = 0.0
    elif policy == "ones":
        targets[uncertain] = POSITIVE
    elif policy == "soft":
        targets[uncertain] = np.float32(soft_value)
    return targets, mask


def _check_codes(raw: np.ndarray) -> None:
    bad = ~(np.isnan(raw) | np.isin(raw, list(STATUS_VALUE.values())))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"labels must be 1, 0, -1 or NaN; found {float(raw[where])} at position {where} "
            f"({int(bad.sum())} bad values in all)"
        )


def label_matrix(
    table: pd.DataFrame,
    *,
    schema: str | None = None,
    columns: Sequence[str] | None = None,
    label_col: str | None = None,
    unknown_values: Sequence[str] = ("todo",),
    separator: str | None = None,
    source: str = "labels table",
) -> LabelMatrix:
    """Build the raw label matrix of ``table`` from exactly one of three sources.

    Parameters
    ----------
    table : pandas.DataFrame
    schema : str, optional
        A label schema name or file (``"chexpert"``, ``"chestxray14"``): its observation
        names are the columns, as written by ``cxr label``.
    columns : sequence of str, optional
        Explicit label columns holding 1 / 0 / -1 / blank.
    label_col : str, optional
        One categorical column (e.g. COVID ``finding``): one-hot over its distinct values,
        sorted. Values in ``unknown_values`` (case-insensitive) and blanks are unknown:
        the whole row is NaN, so it is masked out with ``unmentioned="ignore"``.
    unknown_values : sequence of str
        Categorical values meaning "label not known".
    separator : str, optional
        Split categorical values on this string into several labels (multi-hot), e.g.
        ``","`` turns ``"COVID-19, ARDS"`` into both labels.
    source : str
        Name of the table in error messages (its file path).

    Returns
    -------
    LabelMatrix

    Examples
    --------
    >>> t = pd.DataFrame({"finding": ["COVID-19", "todo", "SARS"]})
    >>> m = label_matrix(t, label_col="finding")
    >>> m.names, m.values.tolist()
    (['COVID-19', 'SARS'], [[1.0, 0.0], [nan, nan], [0.0, 1.0]])
    """
    given = [
        name
        for name, v in (("schema", schema), ("columns", columns), ("label_col", label_col))
        if v is not None
    ]
    if len(given) != 1:
        raise InputError(
            f"choose the labels of {source} with exactly one of schema=, columns= or "
            f"label_col=; got {', '.join(given) or 'none'}"
        )
    if label_col is not None:
        return _categorical(table, label_col, unknown_values, separator, source)
    if schema is not None:
        from cxrlabel.lexicon import load_schema

        names = list(load_schema(schema).names)
        hint = f"label the reports with `cxr label --schema {schema}`, or choose columns explicitly"
    else:
        names = list(columns or [])
        hint = "check the column names (they are case-sensitive)"
        if not names:
            raise InputError(f"columns= is empty: name at least one label column of {source}")
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise InputError(
            f"{source} lacks label columns {missing}; found columns {list(table.columns)}. "
            f"Fix: {hint}"
        )
    values = np.stack([_observation_column(table[n], n, source) for n in names], axis=1)
    return LabelMatrix(values.reshape(len(table), len(names)), names, categorical=False)


def _observation_column(column: pd.Series, name: str, source: str) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column.dtype):
        numbers = column.astype("float64")
        blank = numbers.isna()
    else:  # text cells: blank strings are "not mentioned", anything else must be a code
        text = column.astype("object")
        blank = text.isna() | text.map(lambda v: isinstance(v, str) and not v.strip())
        numbers = pd.to_numeric(text.where(~blank, np.nan), errors="coerce")
    bad = (~blank & (numbers.isna() | ~numbers.isin((1, 0, -1)))).to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(
            f"{source}: column {name!r} row {int(rows[0])} holds {column.tolist()[rows[0]]!r}; "
            f"expected 1, 0, -1 or blank ({len(rows)} such rows). Fix the table or choose "
            "the right label columns"
        )
    return numbers.to_numpy(dtype=np.float32, na_value=np.nan)


def _categorical(
    table: pd.DataFrame,
    label_col: str,
    unknown_values: Sequence[str],
    separator: str | None,
    source: str,
) -> LabelMatrix:
    if label_col not in table.columns:
        raise InputError(
            f"{source} has no label column {label_col!r}; found columns {list(table.columns)}"
        )
    unknown = {str(v).strip().casefold() for v in unknown_values}
    row_labels: list[list[str] | None] = []
    for value in table[label_col].tolist():
        text = "" if pd.isna(value) else str(value).strip()
        parts = [text] if separator is None else [p.strip() for p in text.split(separator)]
        parts = [p for p in parts if p and p.casefold() not in unknown]
        row_labels.append(parts or None)
    names = sorted({p for parts in row_labels if parts for p in parts})
    if not names:
        raise InputError(
            f"{source}: column {label_col!r} has no known values (all blank or in "
            f"{sorted(unknown)}); nothing to learn from"
        )
    index = {n: i for i, n in enumerate(names)}
    values = np.zeros((len(table), len(names)), dtype=np.float32)
    for row, parts in enumerate(row_labels):
        if parts is None:
            values[row] = np.nan
        else:
            values[row, [index[p] for p in parts]] = 1.0
    return LabelMatrix(values, names, categorical=True)


@dataclass(frozen=True)
class LabelOptions:
    """Which labels to read from a table and how to encode them, in one value.

    Exactly one of ``schema``, ``columns`` or ``label_col`` chooses the labels (see
    :func:`label_matrix`); ``policy``, ``soft_value`` and ``unmentioned`` go to
    :func:`encode_labels` (``unmentioned=None``: ``"zeros"`` for observation columns,
    ``"ignore"`` for a categorical column). Rows whose ``status_col`` (the ``cxr label``
    status) is not ``ok`` are excluded; ``status_col=None`` turns that off.

    Examples
    --------
    >>> LabelOptions(label_col="finding").unmentioned_for(categorical=True)
    'ignore'
    """

    schema: str | None = None
    columns: tuple[str, ...] | None = None
    label_col: str | None = None
    unknown_values: tuple[str, ...] = ("todo",)
    separator: str | None = None
    policy: UncertainPolicy = "ignore"
    soft_value: float = 0.5
    unmentioned: Unmentioned | None = None
    status_col: str | None = "status"

    def matrix(self, table: pd.DataFrame, source: str = "labels table") -> LabelMatrix:
        """The raw label matrix of ``table`` (validates the choice and the values)."""
        return label_matrix(
            table,
            schema=self.schema,
            columns=None if self.columns is None else list(self.columns),
            label_col=self.label_col,
            unknown_values=self.unknown_values,
            separator=self.separator,
            source=source,
        )

    def unmentioned_for(self, *, categorical: bool) -> Unmentioned:
        """The NaN handling to use for a matrix built from these options."""
        if self.unmentioned is not None:
            return self.unmentioned
        return "ignore" if categorical else "zeros"


def status_exclusions(
    table: pd.DataFrame, ids: Sequence[str | None], status_col: str | None = "status"
) -> list[Exclusion]:
    """Excluded-row records for rows whose labeller status is not ``ok``.

    ``cxr label`` writes ``empty`` (no text) or ``error: ...`` rows with blank labels,
    which would otherwise read as "nothing mentioned" (all negative). Does nothing when the
    table has no ``status_col`` column.
    """
    if not status_col or status_col not in table.columns:
        return []
    records = []
    for row, value in enumerate(table[status_col].tolist()):
        status = "" if pd.isna(value) else str(value).strip()
        if status.lower() != "ok":
            records.append(
                exclusion(
                    row,
                    ids[row],
                    None,
                    "label-status",
                    f"labeller status is {status or 'blank'!r}, not 'ok'",
                )
            )
    return records
