"""The result of an embedding evaluation and its Markdown, CSV, JSON and PNG outputs."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxrembed.data.exclusions import EXCLUDED_COLUMNS, EXCLUDED_FILE, write_excluded
from cxrembed.evaluation.metrics.diagnosis import DiagnosisReport
from cxrlabel.atomic import write_files
from cxrlabel.figures import FigureStyle
from cxrlabel.validation.report import to_jsonable

__all__ = ["EvaluationResult", "DEFINITIONS", "EXCLUDED_COLUMNS", "display_name"]


#: How every reported number is defined; written with the results.
DEFINITIONS: tuple[str, ...] = (
    "Similarity: cosine; exact search. Ties in similarity are broken by row order.",
    "Gallery of a query: the gallery rows minus the query itself (leave-one-out) and, when "
    "asked, minus the rows of the same patient.",
    "Relevant: same class (single-label); at least one shared finding (multi-label), a row "
    "without findings being relevant only to other rows without findings.",
    "Lone queries (no relevant row in their gallery) are left out of the retrieval metrics, "
    "as in pytorch-metric-learning; diagnosis and clustering use every query.",
    "P@1, R-precision, MAP@R: pytorch-metric-learning's AccuracyCalculator definitions "
    "(R = relevant rows in the query's gallery).",
    "P@k = relevant among the k nearest / k; HitRate@k = 1 if any of the k nearest is "
    "relevant; mAP@k = sum over relevant ranks i <= k of precision@i, / min(k, R).",
    "Jaccard@k: mean |A & B| / |A | B| between the label sets of the query and each of its k "
    "nearest (no finding = its own label); nDCG@k: gain = number of shared findings, "
    "discount log2(rank + 1), normalised by the best ranking of the gallery.",
    "NMI / AMI: seeded k-means on the normalised embeddings with as many clusters as classes "
    "(multi-label: distinct finding sets) against those classes.",
    "Diagnosis by retrieval: score of a finding = share of the k nearest with it; AUROC and "
    "average precision (AP) of that score against the query's label (curves in roc and pr "
    "figures); F1 of the vote (multi-label: score > 0.5; "
    "single-label: most frequent class, ties to the nearest). Undefined values are not "
    "averaged.",
)

_PATTERNS = (
    (r"precision_at_1$", "P@1"),
    (r"r_precision$", "R-precision"),
    (r"mean_average_precision_at_r$", "MAP@R"),
    (r"precision_at_(\d+)$", r"P@\1"),
    (r"hit_rate_at_(\d+)$", r"HitRate@\1"),
    (r"map_at_(\d+)$", r"mAP@\1"),
    (r"jaccard_at_(\d+)$", r"Jaccard@\1"),
    (r"ndcg_at_(\d+)$", r"nDCG@\1"),
    (r"diagnosis_macro_auroc$", "diagnosis macro AUROC"),
    (r"diagnosis_macro_f1$", "diagnosis macro F1"),
    (r"diagnosis_accuracy$", "diagnosis accuracy"),
)


def display_name(key: str) -> str:
    """Short display name of a metric key (``map_at_5`` -> ``mAP@5``)."""
    for pattern, repl in _PATTERNS:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    return key


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics of one evaluation, with the setting needed to read them.

    Attributes
    ----------
    metrics : dict
        Metric key -> value (NaN = undefined), in report order.
    diagnosis : DiagnosisReport
        Per-finding diagnosis-by-retrieval scores.
    info : dict
        The setting: counts, query / gallery mode, label mode, ks, policies, config hash.
    notes : list of str
        Why values are undefined, what was excluded, warnings.
    excluded : pandas.DataFrame
        :data:`EXCLUDED_COLUMNS`: embeddings or table rows left out, one row each.
    embedding_map : EmbeddingMap, optional
        2-D map coordinates, drawn by :meth:`write`.
    map_labels : list of str, optional
        Colour label of each evaluated row for the map.
    """

    metrics: dict[str, float]
    diagnosis: DiagnosisReport
    info: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EXCLUDED_COLUMNS))
    embedding_map: Any = None
    map_labels: list[str] | None = None

    def to_frame(self) -> pd.DataFrame:
        """Long table: ``section``, ``metric``, ``finding`` (blank for overall), ``value``."""
        rows = [("retrieval", key, "", value) for key, value in self.metrics.items()]
        for record in self.diagnosis.per_finding.to_dict("records"):
            for metric in ("support", "auroc", "ap", "f1", "precision", "recall"):
                rows.append(("diagnosis", metric, record["finding"], record[metric]))
        return pd.DataFrame(rows, columns=["section", "metric", "finding", "value"])

    def to_json(self) -> str:
        """Everything as JSON (NaN written as null = undefined)."""
        payload = {
            "info": self.info,
            "metrics": self.metrics,
            "diagnosis": {
                "summary": self.diagnosis.summary,
                "per_finding": self.diagnosis.per_finding.to_dict("records"),
            },
            "notes": self.notes,
            "definitions": list(DEFINITIONS),
            "excluded_count": len(self.excluded),
        }
        return json.dumps(to_jsonable(payload), indent=2)

    def to_markdown(self) -> str:
        """The report as Markdown tables: setting, metrics, diagnosis, definitions, notes."""
        lines = ["# Embedding evaluation", "", "| setting | value |", "|---|---|"]
        lines += [f"| {key} | {_cell(value)} |" for key, value in self.info.items()]
        lines += ["", "## Retrieval and clustering", "", "| metric | value |", "|---|---:|"]
        lines += [
            f"| {display_name(key)} | {_cell(value)} |" for key, value in self.metrics.items()
        ]
        summary = self.diagnosis.summary
        lines += [
            "",
            f"## Diagnosis by retrieval (k = {summary.get('k')}, "
            f"{summary.get('mode')}, {summary.get('n_queries')} queries)",
            "",
        ]
        table = self.diagnosis.per_finding
        lines += [
            "| " + " | ".join(table.columns) + " |",
            "|---|" + "---:|" * (len(table.columns) - 2) + "---|",
        ]
        for record in table.itertuples(index=False):
            lines.append("| " + " | ".join(_cell(v) for v in record) + " |")
        lines += [
            "",
            f"Macro AUROC {_cell(summary.get('macro_auroc'))} and macro AP "
            f"{_cell(summary.get('macro_ap'))} over "
            f"{summary.get('n_auroc_defined')} findings with an AUROC; macro F1 "
            f"{_cell(summary.get('macro_f1'))} over {summary.get('n_f1_defined')}.",
        ]
        if "accuracy" in summary:
            lines.append(f"Accuracy of the vote: {_cell(summary['accuracy'])}.")
        lines += ["", "## Definitions", ""] + [f"- {d}" for d in DEFINITIONS]
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def write(
        self, out_dir: str | os.PathLike[str], figures: FigureStyle | None = None
    ) -> dict[str, Path]:
        """Write ``metrics.md``, ``metrics.csv``, ``metrics.json``, the ROC and precision-recall
        curves of diagnosis by retrieval (``roc.png``, ``pr.png``: one curve per finding with
        an AUROC) and, when present, ``embedding_map.png`` and ``excluded.csv`` (each
        atomically); return their paths (keys ``markdown``, ``csv``, ``json``, ``roc``,
        ``pr``, ``map``, ``excluded``). ``figures`` sets the figures' format and dpi."""
        figures = figures or FigureStyle()
        out = Path(out_dir)
        paths = write_files(
            out,
            {
                "markdown": ("metrics.md", self.to_markdown()),
                "csv": ("metrics.csv", self.to_frame()),
                "json": ("metrics.json", self.to_json()),
            },
        )
        if len(self.excluded):
            paths["excluded"] = out / EXCLUDED_FILE
            write_excluded(out, self.excluded)
        if self.embedding_map is not None and self.map_labels is not None:
            from cxrembed.evaluation.embedding_map import plot_embedding_map

            paths["map"] = plot_embedding_map(
                self.embedding_map,
                self.map_labels,
                figures.path(out, "embedding_map"),
                style=figures,
            )
        if self.diagnosis.scores is not None:
            from cxrembed.evaluation.curves import plot_diagnosis_curves

            paths.update(plot_diagnosis_curves(self.diagnosis, out, figures))
        return paths


def _cell(value: Any) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "undefined"
        return f"{value:.4f}" if abs(value) <= 1 or not float(value).is_integer() else f"{value:g}"
    if isinstance(value, str):
        return value.replace("|", "\\|") if value else ""
    return str(value)
