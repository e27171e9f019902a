"""Rendering of validation results: the Markdown report and JSON-safe values.

Kept apart from the scoring in :mod:`cxrlabel.validation.labels`; undefined values print as "—" in
Markdown and become ``null`` in JSON.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["render_markdown", "to_jsonable"]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return str(value)


def _with_ci(value: float, lo: float, hi: float) -> str:
    if math.isnan(value):
        return "—"
    if math.isnan(lo) or math.isnan(hi):
        return _fmt(value)
    return f"{value:.3f} [{lo:.2f}, {hi:.2f}]"


def render_markdown(summary: dict[str, Any], table: pd.DataFrame) -> str:
    """The readable report: summary lines, then one table row per observation."""
    header, body = _table(summary["metric"], table)
    lines = [
        *_summary_lines(summary),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(str(c) for c in row) + " |" for row in body),
        "",
        "— = undefined. Disagreements with their evidence: errors.csv.",
    ]
    return "\n".join(lines) + "\n"


def _summary_lines(s: dict[str, Any]) -> list[str]:
    ids, metric = s["ids"], s["metric"]
    lines = [
        f"# Validation: {s['semantics']} gold, schema {s['schema']}",
        "",
        f"- Reports scored: {s['n_scored']} (predictions: {ids['pred']}, "
        f"gold: {ids['gold']}; only in predictions: {len(ids['missing_in_gold'])}, "
        f"only in gold: {len(ids['missing_in_pred'])}; gold rows without any label, "
        f"not scored: {len(ids['gold_without_labels'])})",
        f"- Uncertain (-1) counted as: {s['uncertain_as']}",
        f"- Macro {metric}: {_with_ci(s['macro_f1'], *s['macro_f1_ci'])} over "
        f"{len(s['macro_over'])} observations with gold positives; micro: "
        f"{_with_ci(s['micro_f1'], *s['micro_f1_ci'])}"
        + (f" (95% bootstrap interval, {s['bootstrap']} resamples)" if s["bootstrap"] else ""),
        "- Positive vs not-positive F1 by uncertain choice: "
        + "; ".join(
            f"as {k}: macro {_fmt(v['macro_f1'])}, micro {_fmt(v['micro_f1'])}"
            for k, v in s["by_uncertain_as"].items()
        ),
    ]
    if s.get("uncertain_fit"):
        lines.append(f"- Which fits this gold: {s['uncertain_fit']['reason']}")
    if s["undefined"]:
        lines.append(
            "- Undefined (no gold positives, left out of the macro average): "
            f"{', '.join(s['undefined'])}"
        )
    for key, label in (
        ("not_in_gold", "Predicted but not in gold (not scored)"),
        ("dropped_by_map", "Mapped to nothing by the label map (not scored)"),
    ):
        if s.get(key):
            lines.append(f"- {label}: {', '.join(s[key])}")
    if s.get("pred_status"):
        lines.append(f"- Prediction status of scored rows: {s['pred_status']}")
    return lines


def _table(metric: str, table: pd.DataFrame) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the per-observation table (positive-only or full gold)."""
    if metric == "f1":
        header = [
            "observation",
            "support",
            "TP",
            "FP",
            "FN",
            "precision",
            "recall",
            "F1 [95% CI]",
            "kappa",
        ]
        body = [
            [
                r.observation,
                r.support,
                r.tp,
                r.fp,
                r.fn,
                _fmt(r.precision),
                _fmt(r.recall),
                _with_ci(r.f1, r.f1_ci_low, r.f1_ci_high),
                _fmt(r.kappa),
            ]
            for r in table.itertuples()
        ]
    else:
        header = [
            "observation",
            "support",
            "F1 pos",
            "F1 neg",
            "F1 unc",
            "F1 blank",
            "weighted F1 [95% CI]",
            "kappa",
        ]
        body = [
            [
                r.observation,
                r.support,
                _fmt(r.f1_positive),
                _fmt(r.f1_negative),
                _fmt(r.f1_uncertain),
                _fmt(r.f1_blank),
                _with_ci(r.weighted_f1, r.weighted_f1_ci_low, r.weighted_f1_ci_high),
                _fmt(r.kappa),
            ]
            for r in table.itertuples()
        ]
    return header, body


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types, with NaN as None (JSON null); also serves cxrembed's reports."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):  # numpy scalars (int, float, bool, str...) to Python
        obj = obj.item()
    if isinstance(obj, float | np.floating):  # np.floating: a longdouble stays numpy
        return None if math.isnan(obj) else float(obj)
    return obj
