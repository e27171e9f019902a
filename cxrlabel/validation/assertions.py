"""Assertion-level scoring: is a target phrase in a sentence positive, negated or uncertain?

Scores the assertion step alone on a table of (sentence, target phrase, status), e.g. the
NegEx test sentences, through any callable ``fn(sentence, target) -> status`` such as
:meth:`cxrlabel.labeler.Labeler.assertion`. Reports accuracy, per-status precision /
recall / F1 and the confusion matrix. A row whose target is not in its sentence (the
callable raises a :class:`~cxrlabel.errors.CxrError`) or whose cells are blank is counted
and listed, not scored, and does not stop the run.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cxrlabel.aggregate import NEGATIVE, POSITIVE, UNCERTAIN
from cxrlabel.atomic import atomic_path, write_files
from cxrlabel.errors import CxrError, GoldError, InputError
from cxrlabel.validation import metrics as M
from cxrlabel.validation.alignment import read_table, table_header

__all__ = [
    "STATUSES",
    "AssertionResult",
    "normalise_status",
    "score_assertions",
    "validate_assertions",
]

STATUSES = (POSITIVE, NEGATIVE, UNCERTAIN)  # the order of the confusion matrix
_ALIASES = {
    "positive": "positive",
    "affirmed": "positive",
    "present": "positive",
    "pos": "positive",
    "1": "positive",
    "1.0": "positive",
    "negative": "negative",
    "negated": "negative",
    "absent": "negative",
    "neg": "negative",
    "0": "negative",
    "0.0": "negative",
    "uncertain": "uncertain",
    "possible": "uncertain",
    "probable": "uncertain",
    "hypothetical": "uncertain",
    "-1": "uncertain",
    "-1.0": "uncertain",
}


def normalise_status(value: Any) -> str | None:
    """Map a status spelling (``Affirmed``, ``negated``, ``-1``...) to a status, or None.

    Examples
    --------
    >>> normalise_status("Affirmed"), normalise_status(" Negated "), normalise_status("maybe")
    ('positive', 'negative', None)
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return _ALIASES.get(str(value).strip().lower())


@dataclass
class AssertionResult:
    """Scores of an assertion run.

    ``predictions`` has one row per input row (``row``, ``sentence``, ``target``, ``gold``,
    ``predicted``, ``correct``, ``note``); ``per_status`` one row per status; ``confusion``
    counts gold (rows) × predicted (columns); ``summary`` holds accuracy and counts.
    """

    predictions: pd.DataFrame
    per_status: pd.DataFrame
    confusion: pd.DataFrame
    summary: dict[str, Any]

    @property
    def not_found(self) -> pd.DataFrame:
        """Rows that could not be scored (target not in the sentence, blank cells)."""
        return self.predictions[self.predictions["predicted"].isna()]

    def to_markdown(self) -> str:
        s = self.summary
        acc = "—" if s["accuracy"] is None else f"{s['accuracy']:.3f}"
        lines = [
            "# Assertion validation",
            "",
            f"- Rows: {s['n_rows']}; scored: {s['n_scored']}; not scored (target not found or "
            f"blank): {s['n_not_scored']}",
            f"- Accuracy: {acc}",
            "",
            "| status | support | predicted | precision | recall | F1 |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.per_status.itertuples():
            cells = [_fmt(r.precision), _fmt(r.recall), _fmt(r.f1)]
            lines.append(
                f"| {r.status} | {r.support} | {r.predicted} | " + " | ".join(cells) + " |"
            )
        lines += [
            "",
            "Confusion (rows gold, columns predicted):",
            "",
            "| gold \\ predicted | " + " | ".join(STATUSES) + " |",
            "|---|" + "---|" * len(STATUSES),
        ]
        for status, row in self.confusion.iterrows():
            lines.append(f"| {status} | " + " | ".join(str(int(v)) for v in row) + " |")
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``assertion_metrics.md/.json`` and ``assertion_predictions.csv`` atomically."""
        payload = {
            "summary": self.summary,
            "per_status": [
                {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                for row in self.per_status.to_dict(orient="records")
            ],
            "confusion": {
                g: {p: int(v) for p, v in row.items()} for g, row in self.confusion.iterrows()
            },
        }
        paths = write_files(
            out_dir,
            {
                "md": ("assertion_metrics.md", self.to_markdown()),
                "json": (
                    "assertion_metrics.json",
                    json.dumps(payload, indent=2, allow_nan=False) + "\n",
                ),
            },
        )
        paths["csv"] = Path(out_dir) / "assertion_predictions.csv"
        with atomic_path(paths["csv"]) as tmp:
            self.predictions.to_csv(tmp, index=False)
        return paths


def _fmt(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3f}"


def _check_column(columns: Sequence[Any], name: str, what: str, where: str) -> None:
    if name not in columns:
        close = difflib.get_close_matches(name, [str(c) for c in columns], n=2, cutoff=0.3)
        raise InputError(
            f"{where}: no {what} column '{name}' (closest: {close}); columns are "
            f"{list(columns)}; name it with --{what}-col"
        )


def _column(frame: pd.DataFrame, name: str, what: str, where: str) -> pd.Series:
    _check_column(list(frame.columns), name, what, where)
    return frame[name]


def score_assertions(
    table: str | Path | pd.DataFrame,
    assert_fn: Callable[[str, str], str],
    *,
    sentence_col: str = "sentence",
    target_col: str = "target",
    status_col: str = "status",
    progress: bool = False,
) -> AssertionResult:
    """Score ``assert_fn(sentence, target)`` against the table's gold status per row.

    Gold statuses may be spelled ``positive/negative/uncertain``, ``Affirmed/Negated/
    Possible`` or ``1/0/-1``; any other value raises :class:`GoldError` naming the row.

    Examples
    --------
    >>> rows = pd.DataFrame({"sentence": ["No effusion.", "Effusion.", "Clear."],
    ...                      "target": ["effusion", "effusion", "edema"],
    ...                      "status": ["negated", "affirmed", "negated"]})
    >>> naive = lambda s, t: "negative" if s.lower().startswith("no ") else "positive"
    >>> def fn(s, t):
    ...     if t not in s.lower():
    ...         raise InputError("not found")
    ...     return naive(s, t)
    >>> res = score_assertions(rows, fn)
    >>> res.summary["accuracy"], res.summary["n_not_scored"]
    (1.0, 1)
    """
    frame, where = read_table(table, "gold", sentence_col)
    sentences = _column(frame, sentence_col, "sentence", where)
    targets = _column(frame, target_col, "target", where)
    gold = _gold_statuses(_column(frame, status_col, "status", where), status_col, where)
    predicted, notes = _predict(sentences.tolist(), targets.tolist(), assert_fn, progress)
    preds = pd.DataFrame(
        {
            "row": np.arange(1, len(frame) + 1),
            "sentence": sentences.to_numpy(),
            "target": targets.to_numpy(),
            "gold": gold,
            "predicted": predicted,
        }
    )
    preds["correct"] = pd.array(
        [g == p if p is not None else None for g, p in zip(gold, predicted, strict=True)],
        dtype="boolean",
    )
    preds["note"] = notes
    return AssertionResult(preds, *_scores(preds))


def _gold_statuses(raw_status: pd.Series, status_col: str, where: str) -> list[str]:
    gold = [normalise_status(v) for v in raw_status]
    bad = [i for i, g in enumerate(gold) if g is None]
    if bad:
        i = bad[0]
        raise GoldError(
            f"{where}: unknown status {raw_status.iloc[i]!r} in column '{status_col}' (data row "
            f"{i + 1}, {len(bad)} such row(s)); expected one of {list(STATUSES)} or "
            "Affirmed / Negated / Possible or 1 / 0 / -1"
        )
    return [g for g in gold if g is not None]


def _predict(
    sentences: list[Any],
    targets: list[Any],
    assert_fn: Callable[[str, str], str],
    progress: bool,
) -> tuple[list[str | None], list[str]]:
    """The function's status per row (None: not scored) and a note saying why not."""
    predicted: list[str | None] = []
    notes: list[str] = []
    pairs = zip(sentences, targets, strict=True)
    for sentence, target in tqdm(
        pairs, total=len(sentences), desc="assertions", disable=not progress
    ):
        if not _text(sentence) or not _text(target):
            predicted.append(None)
            notes.append("blank sentence or target")
            continue
        try:
            status = assert_fn(sentence, target)
        except CxrError as exc:
            predicted.append(None)
            notes.append(f"not scored: {exc}")
            continue
        if status not in STATUSES:
            raise InputError(
                f"the assertion function returned {status!r}; expected one of {list(STATUSES)}"
            )
        predicted.append(status)
        notes.append("")
    return predicted, notes


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _scores(preds: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Per-status scores, the confusion matrix and the summary of the scored rows."""
    scored = preds["predicted"].notna().to_numpy()
    code = {s: i for i, s in enumerate(STATUSES)}
    cm = np.zeros((3, 3), dtype=np.int64)
    for g, p in zip(preds["gold"][scored], preds["predicted"][scored], strict=True):
        cm[code[g], code[p]] += 1
    scores = M.per_class_scores(cm)
    per_status = pd.DataFrame(
        {
            "status": list(STATUSES),
            "support": cm.sum(axis=1),
            "predicted": cm.sum(axis=0),
            "precision": scores["precision"],
            "recall": scores["recall"],
            "f1": scores["f1"],
        }
    )
    n_scored = int(scored.sum())
    summary = {
        "n_rows": len(preds),
        "n_scored": n_scored,
        "n_not_scored": len(preds) - n_scored,
        "accuracy": float(np.trace(cm) / n_scored) if n_scored else None,
        "kappa": _none_if_nan(float(M.kappa_confusion(cm))),
        "macro_f1": _none_if_nan(float(M.macro_average(scores["f1"], scores["support"]))),
    }
    confusion = pd.DataFrame(cm, index=list(STATUSES), columns=list(STATUSES))
    return per_status, confusion, summary


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def validate_assertions(
    table: str | Path | pd.DataFrame,
    out_dir: str | Path | None = None,
    *,
    schema: str = "chexpert",
    lexicon_dir: str | Path | None = None,
    sentence_col: str = "sentence",
    target_col: str = "target",
    status_col: str = "status",
    progress: bool = False,
) -> AssertionResult:
    """Score the labeller's assertion step (:meth:`Labeler.assertion`) on a sentence table."""
    from cxrlabel.labeler import Labeler

    columns = table_header(table)  # a wrong column is reported before spaCy loads
    if columns:
        for name, what in (
            (sentence_col, "sentence"),
            (target_col, "target"),
            (status_col, "status"),
        ):
            _check_column(columns, name, what, str(table))
    labeler = Labeler(schema, lexicon_dir)
    result = score_assertions(
        table,
        labeler.assertion,
        sentence_col=sentence_col,
        target_col=target_col,
        status_col=status_col,
        progress=progress,
    )
    if out_dir is not None:
        result.write(out_dir)
    return result
