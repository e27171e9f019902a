"""The result of :func:`cxrembed.outcome.predict.predict_outcome` and its Markdown, CSV and JSON outputs."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cxrlabel.atomic import write_files
from cxrlabel.validation.report import to_jsonable  # JSON-ready copy (NaN -> null)

__all__ = ["OutcomeResult", "OUTCOME_DEFINITIONS"]

#: How the reported numbers are defined; written with the results.
OUTCOME_DEFINITIONS: tuple[str, ...] = (
    "All feature sets and models are scored on the same rows: rows with a target (and an "
    "embedding, when embeddings are given).",
    "image-only: the embedding (standardised for logistic regression; PCA inside each fold "
    "when asked). tabular-only: the clinical columns (logistic regression: training-fold "
    "median imputation + missing-indicator columns, standardised; gradient boosting: missing "
    "values handled natively). combined: both side by side.",
    "logistic: L2 logistic regression (C = 1), balanced class weights. gradient_boosting: "
    "scikit-learn HistGradientBoostingClassifier, default settings, balanced class weights.",
    "AUROC: of the out-of-fold scores pooled over the folds (each row scored by the model "
    "that did not see its patient). fold AUROC: mean and SD over folds whose test part holds "
    "both classes.",
    "95% CI: percentile bootstrap of the pooled out-of-fold scores, resampling patients "
    "(rows without a patient column); the models are not refitted, so the CI reflects the "
    "sampling of the evaluated rows, not training variability. The same draws serve every "
    "model, so the differences are paired.",
)


@dataclass(frozen=True)
class OutcomeResult:
    """AUROCs of image-only, tabular-only and combined models, side by side.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (feature set, model): ``features``, ``model``, ``n``, ``positives``,
        ``units`` (patients, or rows), ``auroc``, ``ci_low``, ``ci_high``,
        ``fold_auroc_mean``, ``fold_auroc_sd``, ``folds``.
    comparisons : pandas.DataFrame
        Paired differences: ``model``, ``comparison`` (``combined - tabular-only``...),
        ``delta_auroc``, ``ci_low``, ``ci_high``.
    info : dict
        The setting: target, counts, features, cross-validation, bootstrap.
    notes : list of str
        Fewer folds than asked, fitting warnings, coding of the columns...
    excluded : pandas.DataFrame
        ``id``, ``row``, ``reason``: table rows left out (no embedding, no target).
    predictions : pandas.DataFrame
        ``id``, ``row``, ``target``, [``group``], ``fold`` and one out-of-fold score column
        per ``features/model``.
    missing_ids : pandas.DataFrame
        The id join's report (:attr:`cxrembed.embeddings.join.IdJoin.missing`): table rows without an
        embedding and embeddings without a table row.
    """

    table: pd.DataFrame
    comparisons: pd.DataFrame
    info: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    excluded: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["id", "row", "reason"])
    )
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing_ids: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["id", "row", "side", "reason"])
    )

    def to_frame(self) -> pd.DataFrame:
        """The side-by-side table (a copy)."""
        return self.table.copy()

    def summary_table(self) -> str:
        """The side-by-side table as Markdown: features, model, n, positives, AUROC [95% CI]."""
        lines = [
            "| features | model | n | positives | AUROC [95% CI] | fold AUROC (mean ± SD) |",
            "|---|---|---:|---:|---|---|",
        ]
        for r in self.table.itertuples(index=False):
            lines.append(
                f"| {r.features} | {r.model} | {r.n} | {r.positives} | "
                f"{_auroc(r.auroc, r.ci_low, r.ci_high)} | "
                f"{_num(r.fold_auroc_mean)} ± {_num(r.fold_auroc_sd)} |"
            )
        return "\n".join(lines)

    def comparisons_table(self) -> str:
        """The paired differences as Markdown: model, comparison, ΔAUROC [95% CI]."""
        lines = ["| model | comparison | ΔAUROC [95% CI] |", "|---|---|---|"]
        lines += [
            f"| {r.model} | {r.comparison} | {_auroc(r.delta_auroc, r.ci_low, r.ci_high)} |"
            for r in self.comparisons.itertuples(index=False)
        ]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """The report: setting, results, paired differences, definitions, notes."""
        lines = [
            f"# Outcome prediction: {self.info.get('target')}",
            "",
            "| setting | value |",
            "|---|---|",
        ]
        lines += [f"| {k} | {_cell(v)} |" for k, v in self.info.items()]
        lines += ["", "## AUROC", "", self.summary_table()]
        if len(self.comparisons):
            lines += ["", "## Paired differences (bootstrap)", "", self.comparisons_table()]
        lines += ["", "## Definitions", ""] + [f"- {d}" for d in OUTCOME_DEFINITIONS]
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        """Everything but the predictions as JSON (NaN written as null = undefined)."""
        payload = {
            "info": self.info,
            "results": self.table.to_dict("records"),
            "comparisons": self.comparisons.to_dict("records"),
            "notes": self.notes,
            "definitions": list(OUTCOME_DEFINITIONS),
            "excluded_count": len(self.excluded),
        }
        return json.dumps(to_jsonable(payload), indent=2)

    def write(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``outcome.md``, ``outcome.csv``, ``outcome.json``, ``predictions.csv`` and,
        when not empty, ``excluded.csv`` and ``missing_ids.csv`` (each atomically); return
        their paths."""
        extra = {"excluded": self.excluded, "missing_ids": self.missing_ids}
        return write_files(
            out_dir,
            {
                "markdown": ("outcome.md", self.to_markdown()),
                "csv": ("outcome.csv", self.table),
                "json": ("outcome.json", self.to_json()),
                "predictions": ("predictions.csv", self.predictions),
                **{key: (f"{key}.csv", frame) for key, frame in extra.items() if len(frame)},
            },
        )


def _num(value: Any) -> str:
    return "undefined" if value is None or math.isnan(float(value)) else f"{float(value):.3f}"


def _auroc(value: float, low: float, high: float) -> str:
    if math.isnan(float(low)):
        return _num(value)
    return f"{_num(value)} [{_num(low)}, {_num(high)}]"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return str(value).replace("|", "\\|")
