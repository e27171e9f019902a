"""Line up a labels table with a curated (gold) table before scoring.

Reads both tables (path or DataFrame), checks the id columns, maps label names between
schemas (a :class:`~cxrlabel.lexicon.LabelMap`, many-to-one allowed), chooses the
observations to score and checks every value. Problems raise with the file, the row id,
what was expected, what was found and the fix; ids present on one side only are returned
(and reported), never dropped silently.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxrlabel.aggregate import combine_columns
from cxrlabel.columns import find_id_column, read_header
from cxrlabel.errors import CxrError, GoldError, InputError
from cxrlabel.lexicon import LabelMap, available_schemas, load_label_map, load_schema
from cxrlabel.tables import TableMessages, read_table_file

__all__ = [
    "Aligned",
    "align_tables",
    "read_table",
    "table_header",
    "resolve_id_columns",
    "combine_values",
]

_MESSAGES = TableMessages(
    missing="{path}: {role} file not found",
    unsupported="{path}: unsupported {role} file type '{suffix}'; expected .csv, .tsv or .parquet",
    empty_file="{path}: the {role} file is empty; expected a header row with '{id_col}' and one "
    "column per observation",
    unreadable="{path}: cannot read the {role} table ({detail})",
)
_PRED_META = ("status",)


@dataclass
class Aligned:
    """Both sides on common ids and observation names, as float arrays (1 / 0 / -1 / NaN)."""

    ids: list[str]
    names: list[str]
    pred: np.ndarray
    gold: np.ndarray
    origins: dict[str, tuple[str, ...]]  # scored name -> prediction columns it came from
    schema: str
    missing: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Side:
    """One table's ids and label columns after reading."""

    role: str  # "predictions" or "gold"
    where: str  # file path or "predictions table"
    error: type[CxrError]
    ids: pd.Series
    labels: pd.DataFrame
    meta: pd.DataFrame


def read_table(src: str | Path | pd.DataFrame, role: str, id_col: str) -> tuple[pd.DataFrame, str]:
    """Read a CSV / TSV / Parquet table (or copy a DataFrame); returns it and a display name."""
    error = GoldError if role == "gold" else InputError
    if isinstance(src, pd.DataFrame):
        frame, where = src.copy(), f"{role} table"
    else:
        where = str(src)
        frame = read_table_file(
            src,
            text_columns=[id_col],
            text_dtype=str,
            error=error,
            messages=_MESSAGES,
            role=role,
            id_col=id_col,
        )
    if frame.empty:
        raise error(f"{where}: the {role} table has no rows (found columns {list(frame.columns)})")
    return frame, where


def _check_id_column(
    columns: Sequence[Any], col: str, where: str, role: str, error: type[CxrError]
) -> None:
    flag = "--id-col" if role == "predictions" else "--gold-id-col"
    if col not in columns:
        close = difflib.get_close_matches(col, [str(c) for c in columns], n=3, cutoff=0.3)
        hint = f" (closest: {close})" if close else ""
        raise error(
            f"{where}: no id column '{col}' in the {role} table{hint}; columns are "
            f"{list(columns)[:12]}; name the id column with {flag}"
        )


def table_header(src: str | Path | pd.DataFrame) -> list[str] | None:
    """Column names from the header alone; None when unreadable (the full read says why)."""
    if isinstance(src, pd.DataFrame):
        return [str(c) for c in src.columns]
    try:
        return read_header(src) or None
    except CxrError:
        return None


def resolve_id_columns(
    pred: str | Path | pd.DataFrame,
    gold: str | Path | pd.DataFrame,
    id_col: str | None = None,
    gold_id_col: str | None = None,
    gold_prefix: str | None = None,
) -> tuple[str, str]:
    """The id columns of both tables, checked on their headers before anything is read.

    Not given: the predictions' id column is the first of
    :data:`~cxrlabel.columns.ID_CANDIDATES` present (as ``cxr label`` does), the gold's is
    the same name when the gold has it, else found the same way.
    """
    pred_cols, gold_cols = table_header(pred), table_header(gold)
    if id_col is None:
        id_col = find_id_column(pred_cols or []) or "id"
    if gold_id_col is None:
        in_gold = gold_cols is None or id_col in gold_cols
        gold_id_col = id_col if in_gold else (find_id_column(gold_cols or []) or id_col)
    for cols, col, src, role, error in (
        (pred_cols, id_col, pred, "predictions", InputError),
        (gold_cols, gold_id_col, gold, "gold", GoldError),
    ):
        if cols is not None:
            where = f"{role} table" if isinstance(src, pd.DataFrame) else str(src)
            _check_id_column(cols, col, where, role, error)
    if gold_prefix and gold_cols is not None:
        _check_prefix(gold_cols, gold_prefix, str(gold), GoldError)
    return id_col, gold_id_col


def _check_prefix(
    columns: Sequence[Any], prefix: str, where: str, error: type[CxrError]
) -> list[Any]:
    cols = [c for c in columns if str(c).startswith(prefix)]
    if not cols:
        raise error(
            f"{where}: no column starts with the prefix '{prefix}'; columns are {list(columns)[:12]}"
        )
    return cols


def _ids(frame: pd.DataFrame, col: str, where: str, role: str, error: type[CxrError]) -> pd.Series:
    _check_id_column(list(frame.columns), col, where, role, error)
    ids = frame[col]
    if pd.api.types.is_float_dtype(ids) and ids.dropna().map(float.is_integer).all():
        ids = ids.astype("Int64")
    ids = ids.astype("string").str.strip()
    blank = ids.isna() | (ids == "")
    if blank.any():
        rows = (np.flatnonzero(blank.to_numpy()) + 1).tolist()[:10]
        raise error(
            f"{where}: empty id in {role} data row(s) {rows}; every row needs an id in '{col}'"
        )
    dup = ids[ids.duplicated()].unique().tolist()
    if dup:
        raise error(
            f"{where}: duplicate id(s) {dup[:10]} in the {role} table ('{col}'); each report "
            "must appear once (deduplicate, or pick the right id column)"
        )
    return ids.reset_index(drop=True)


def _side(frame: pd.DataFrame, where: str, role: str, id_col: str, prefix: str | None) -> _Side:
    error = GoldError if role == "gold" else InputError
    ids = _ids(frame, id_col, where, role, error)
    frame = frame.reset_index(drop=True)
    if prefix:
        cols = _check_prefix([c for c in frame.columns if c != id_col], prefix, where, error)
        labels = frame[cols].rename(columns=lambda c: str(c)[len(prefix) :])
    else:
        skip = {id_col, *(_PRED_META if role == "predictions" else ())}
        labels = frame[[c for c in frame.columns if c not in skip]]
        labels = labels.rename(columns=str)
    if labels.shape[1] == 0:
        raise error(f"{where}: the {role} table has an id column but no label columns")
    meta = (
        frame[[c for c in _PRED_META if c in frame.columns]] if role == "predictions" else frame[[]]
    )
    return _Side(role, where, error, ids, labels, meta)


def combine_values(block: np.ndarray) -> np.ndarray:
    """Merge several label columns into one, row by row: 1 beats -1 beats 0 beats blank.

    Used when a label map sends several names to one (Mass, Nodule → Lung Lesion); the
    rule is the labeller's report-level one (:func:`cxrlabel.aggregate.combine_columns`).

    Examples
    --------
    >>> combine_values(np.array([[0, np.nan], [-1, 0], [np.nan, np.nan], [1, -1]])).tolist()
    [0.0, -1.0, nan, 1.0]
    """
    return combine_columns(block)


def _numeric(side: _Side, names: Sequence[str]) -> pd.DataFrame:
    """Label columns as floats; a non-numeric cell raises naming the column, id and value."""
    out = {}
    for name in names:
        col = side.labels[name]
        if pd.api.types.is_bool_dtype(col):
            col = col.astype(float)
        values = pd.to_numeric(col, errors="coerce")
        bad = values.isna() & col.notna() & (col.astype("string").str.strip() != "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise side.error(
                f"{side.where}: non-numeric {side.role} value {col.iloc[i]!r} in column '{name}' "
                f"(id {side.ids.iloc[i]}, {int(bad.sum())} such cell(s)); expected 1, 0, -1 or blank"
            )
        out[name] = values.astype(float)
    return pd.DataFrame(out)


def _map_labels(
    side: _Side, lmap: LabelMap, rule: tuple[set[float], str]
) -> tuple[pd.DataFrame, dict[str, tuple[str, ...]], list[str]]:
    unknown = [c for c in side.labels.columns if c not in lmap.mapping]
    if unknown:
        hints = {
            u: difflib.get_close_matches(u, list(lmap.mapping), n=2, cutoff=0.4) for u in unknown
        }
        raise side.error(
            f"{side.where}: {side.role} column(s) {unknown} are not source names of the label map "
            f"{lmap.path or lmap.source + '_to_' + lmap.target} (closest: {hints}); add them to the "
            "map (null to drop them) or remove the columns"
        )
    values = _numeric(side, list(side.labels.columns))
    _check_values(side, values.to_numpy(float), list(values.columns), side.ids.tolist(), *rule)
    targets: dict[str, list[str]] = {}
    for src in side.labels.columns:
        for tgt in lmap.targets_of(src):
            targets.setdefault(tgt, []).append(src)
    mapped = pd.DataFrame(
        {t: combine_values(values[srcs].to_numpy()) for t, srcs in targets.items()},
        index=values.index,
    )
    dropped = [c for c in side.labels.columns if not lmap.targets_of(c)]
    return mapped, {t: tuple(s) for t, s in targets.items()}, dropped


def _which_side(pred: _Side, gold: _Side, lmap: LabelMap) -> str:
    """The side whose columns are the map's source names (ties go to gold)."""

    def share(side: _Side) -> float:
        cols = list(side.labels.columns)
        return sum(c in lmap.mapping for c in cols) / len(cols)

    p, g = share(pred), share(gold)
    if p == 0 and g == 0:
        raise InputError(
            f"label map {lmap.path}: none of its source names ({sorted(lmap.mapping)[:6]}...) is a "
            "column of either table; pick the map whose source is one side's schema"
        )
    return "pred" if p > g else "gold"


def _infer_schema(names: Sequence[str]) -> str:
    """The one packaged schema holding every name, else ``custom``."""
    fits = []
    for candidate in available_schemas():
        try:
            if set(names) <= set(load_schema(candidate).names):
                fits.append(candidate)
        except CxrError:
            continue
    return fits[0] if len(fits) == 1 else "custom"


def _choose(
    pred_names: list[str], gold_names: list[str], observations: Sequence[str] | None, where: str
) -> list[str]:
    if observations is not None:
        chosen = [str(o) for o in observations]
        for label, names in (("predictions", pred_names), ("gold", gold_names)):
            absent = [o for o in chosen if o not in names]
            if absent:
                close = {a: difflib.get_close_matches(a, names, n=2, cutoff=0.4) for a in absent}
                raise InputError(
                    f"observation(s) {absent} are not {label} columns (closest: {close}); "
                    f"{label} columns are {names}"
                )
        if not chosen:
            raise InputError("observations is empty; name at least one observation to score")
        return chosen
    absent = [g for g in gold_names if g not in pred_names]
    if absent:
        close = {a: difflib.get_close_matches(a, pred_names, n=2, cutoff=0.4) for a in absent}
        raise GoldError(
            f"{where}: gold label(s) {absent} are not columns of the predictions (closest: {close}); "
            "pass a label map (--map) to translate names, or choose the observations to score "
            "(--observations)"
        )
    return list(gold_names)


def _check_values(
    side: _Side,
    values: np.ndarray,
    names: Sequence[str],
    ids: Sequence[str],
    allowed: set[float],
    fix: str,
) -> None:
    for j, name in enumerate(names):
        col = values[:, j]
        bad = ~np.isnan(col) & ~np.isin(col, list(allowed))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise side.error(
                f"{side.where}: {side.role} value {col[i]:g} in column '{name}' (id {ids[i]}, "
                f"{int(bad.sum())} such cell(s)); expected one of {sorted(allowed)} or blank; {fix}"
            )


def _apply_map(
    p: _Side,
    g: _Side,
    label_map: str | Path | LabelMap | None,
    rules: dict[str, tuple[set[float], str]],
) -> tuple[dict[str, pd.DataFrame], dict[str, tuple[str, ...]], str | None, dict[str, Any]]:
    """Apply a label map to the side holding its source names (values checked first)."""
    info: dict[str, Any] = {"label_map": None, "map_applied_to": None, "dropped_by_map": []}
    if label_map is None:
        return {}, {}, None, info
    lmap = label_map if isinstance(label_map, LabelMap) else load_label_map(label_map)
    side = _which_side(p, g, lmap)
    target = p if side == "pred" else g
    mapped, sources, dropped = _map_labels(target, lmap, rules[side])
    target.labels = mapped
    info.update(
        label_map=lmap.path or f"{lmap.source}_to_{lmap.target}",
        map_applied_to=side,
        dropped_by_map=dropped,
    )
    return {side: mapped}, (sources if side == "pred" else {}), lmap.target, info


def _join(
    p: _Side, g: _Side, gold_values: np.ndarray, gold_semantics: str
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Common ids in prediction order, gold rows without labels, ids on one side only."""
    gold_ids = set(g.ids)
    pred_ids = p.ids.tolist()
    unlabelled: list[str] = []
    if gold_semantics == "positive-only":
        unlabelled = g.ids[np.isnan(gold_values).all(axis=1)].tolist()
    skip = set(unlabelled)
    common = [i for i in pred_ids if i in gold_ids and i not in skip]
    pred_set = set(pred_ids)
    missing_in_gold = [i for i in pred_ids if i not in gold_ids]
    missing_in_pred = [i for i in g.ids if i not in pred_set]
    if not common:
        raise GoldError(
            f"no id in common between the predictions ({len(pred_ids)} ids, e.g. {pred_ids[:3]}) "
            f"and the gold table {g.where} ({len(g.ids)} ids, e.g. {g.ids.tolist()[:3]}"
            + (f"; {len(unlabelled)} gold rows have no label at all" if unlabelled else "")
            + "); check --id-col / --gold-id-col"
        )
    return common, unlabelled, missing_in_gold, missing_in_pred


def align_tables(
    pred: str | Path | pd.DataFrame,
    gold: str | Path | pd.DataFrame,
    *,
    id_col: str = "id",
    gold_id_col: str = "id",
    label_map: str | Path | LabelMap | None = None,
    gold_semantics: str = "positive-only",
    gold_prefix: str | None = None,
    observations: Sequence[str] | None = None,
) -> Aligned:
    """Read, check, map and align both tables on their common ids (in prediction order)."""
    p = _side(*read_table(pred, "predictions", id_col), "predictions", id_col, None)
    g = _side(*read_table(gold, "gold", gold_id_col), "gold", gold_id_col, gold_prefix)
    rules = {
        "pred": (
            {1.0, 0.0, -1.0},
            "the labels table uses 1 positive, 0 negative, -1 uncertain, blank not mentioned",
        ),
        "gold": (
            {1.0, 0.0},
            "positive-only gold is 1 = present, 0 or blank = not coded; for "
            "1/0/-1/blank gold use --gold-semantics full",
        )
        if gold_semantics == "positive-only"
        else ({1.0, 0.0, -1.0}, "full gold is 1 / 0 / -1 / blank"),
    }
    numeric, origins, schema, info = _apply_map(p, g, label_map, rules)
    names = _choose(list(p.labels.columns), list(g.labels.columns), observations, g.where)
    for name in names:
        origins.setdefault(name, (name,))
    pred_values, gold_values = (
        (numeric[key] if key in numeric else _numeric(side, names))[names].to_numpy(float)
        for key, side in (("pred", p), ("gold", g))
    )
    _check_values(p, pred_values, names, p.ids.tolist(), *rules["pred"])
    _check_values(g, gold_values, names, g.ids.tolist(), *rules["gold"])

    common, unlabelled, missing_in_gold, missing_in_pred = _join(p, g, gold_values, gold_semantics)
    pred_ids = p.ids.tolist()
    gold_index = {v: i for i, v in enumerate(g.ids)}
    pred_set = set(pred_ids)
    pred_index = {v: k for k, v in enumerate(pred_ids)}
    pred_rows = [pred_index[i] for i in common]
    gold_aligned = gold_values[[gold_index[i] for i in common]]
    if gold_semantics == "positive-only":
        info["gold_blanks_as_not_coded"] = int(np.isnan(gold_aligned).sum())
        gold_aligned = np.nan_to_num(gold_aligned, nan=0.0)
    if "status" in p.meta.columns:
        status = p.meta["status"].iloc[pred_rows].astype("string").fillna("missing")
        kind = status.str.split(":").str[0].str.strip()
        info["pred_status"] = {str(k): int(v) for k, v in kind.value_counts().items()}
    info["not_in_gold"] = [c for c in p.labels.columns if c not in names]
    info["ids"] = {
        "pred": len(pred_ids),
        "gold": len(g.ids),
        "scored": len(common),
        "missing_in_gold": missing_in_gold,
        "missing_in_pred": missing_in_pred,
        "gold_without_labels": unlabelled,
    }
    missing = pd.DataFrame(
        [(i, "gold") for i in missing_in_gold]
        + [(i, "predictions") for i in missing_in_pred]
        + [(i, "gold labels (row has none)") for i in unlabelled if i in pred_set],
        columns=["id", "missing_from"],
    )
    return Aligned(
        ids=common,
        names=names,
        pred=pred_values[pred_rows],
        gold=gold_aligned,
        origins={n: origins[n] for n in names},
        schema=schema or _infer_schema(names),
        missing=missing,
        info=info,
    )
