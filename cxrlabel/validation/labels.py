"""Validate a labels table against curated (gold) labels: ``cxr validate``.

Steps: read both tables → check ids (missing on either side are reported, never dropped
silently) → map label names between schemas when asked (``lexicons/maps/``) → check values
→ score (:mod:`cxrlabel.validation.metrics`) → write ``metrics.md``, ``metrics.csv``, ``metrics.json``,
``noise.json``, ``errors.csv`` (every disagreement with the evidence behind it), ``f1.png``
(and ``confusion.csv`` for full gold).

Gold semantics:

* ``positive-only`` (Open-i / IU: 1 = coded present, 0 or blank = not coded): positive vs
  not-positive per observation; uncertain predictions count as ``uncertain_as`` says
  (``positive``, ``negative``, or ``ignore`` = leave those rows out for that observation).
  The summary always gives macro/micro F1 for both the positive and negative choices.
  Gold rows with no label at all are not scored (and are listed).
* ``full`` (1 / 0 / -1 / blank): four classes per observation, per-class F1, CheXbert's
  support-weighted F1 over positive/negative/uncertain, Cohen's kappa and confusion
  matrices. A positive-vs-rest view (``uncertain_as`` applied to both sides) feeds
  ``noise.json`` and the summary's side-by-side figures.

Macro averages run over observations with gold positives; an observation without any is
"undefined" (NaN / null / "—"), never 0 or 1.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxrlabel import vocab
from cxrlabel.atomic import atomic_open, atomic_path
from cxrlabel.figures import FigureStyle
from cxrlabel.lexicon import LabelMap, load_label_map
from cxrlabel.validation import metrics as M
from cxrlabel.validation.alignment import Aligned, align_tables, resolve_id_columns
from cxrlabel.validation.evidence_lookup import EvidenceIndex, check_evidence_path, load_evidence
from cxrlabel.validation.noise import NoiseReport, build_noise, write_noise
from cxrlabel.validation.plots import plot_f1
from cxrlabel.validation.report import render_markdown, to_jsonable

__all__ = ["ValidationResult", "validate", "SEMANTICS", "UNCERTAIN_AS"]

SEMANTICS = vocab.SEMANTICS.values
UNCERTAIN_AS = vocab.UNCERTAIN.values
_VALUE_NAMES = {1.0: "1", 0.0: "0", -1.0: "-1"}


@dataclass
class ValidationResult:
    """Scores of one validation run.

    Attributes
    ----------
    table : DataFrame
        One row per scored observation (counts, precision, recall, F1 with 95% interval,
        kappa; per-class F1 for full gold).
    summary : dict
        Macro/micro averages with intervals, both uncertain choices side by side, ids
        missing on either side, what was not scored and why.
    errors : DataFrame
        Every disagreement: id, observation, predicted, gold, kind and the evidence.
    noise : NoiseReport
        The content of ``noise.json``.
    confusion : DataFrame or None
        Full gold only: long table observation × gold × predicted → count.
    missing : DataFrame
        Ids present on one side only (``id``, ``missing_from``).
    """

    table: pd.DataFrame
    summary: dict[str, Any]
    errors: pd.DataFrame
    noise: NoiseReport
    confusion: pd.DataFrame | None
    missing: pd.DataFrame

    @property
    def metric(self) -> str:
        """Name of the headline per-observation metric column (``f1`` or ``weighted_f1``)."""
        return self.summary["metric"]

    def to_markdown(self) -> str:
        """A readable report: summary lines and the per-observation table."""
        return render_markdown(self.summary, self.table)

    def write(self, out_dir: str | Path, figures: FigureStyle | None = None) -> dict[str, Path]:
        """Write every output into ``out_dir`` (created if needed), each file atomically.

        ``figures`` sets the format and resolution of the F1 figure (default ``f1.png``).
        """
        figures = figures or FigureStyle()
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            name: out / name
            for name in (
                "metrics.md",
                "metrics.csv",
                "metrics.json",
                "noise.json",
                "errors.csv",
                "missing_ids.csv",
            )
        }
        with atomic_open(paths["metrics.md"]) as fh:
            fh.write(self.to_markdown())
        _write_csv(self.table, paths["metrics.csv"])
        payload = {
            "summary": self.summary,
            "observations": self.table.to_dict(orient="records"),
        }
        if self.confusion is not None:
            payload["confusion"] = self.confusion.to_dict(orient="records")
        with atomic_open(paths["metrics.json"]) as fh:
            json.dump(to_jsonable(payload), fh, indent=2, allow_nan=False)
            fh.write("\n")
        write_noise(self.noise, paths["noise.json"])
        _write_csv(self.errors, paths["errors.csv"])
        _write_csv(self.missing, paths["missing_ids.csv"])
        if self.confusion is not None:
            paths["confusion.csv"] = out / "confusion.csv"
            _write_csv(self.confusion, paths["confusion.csv"])
        figure = figures.path(out, "f1")
        if self._plot(figure, figures):
            paths[figure.name] = figure
        return paths

    def _plot(self, path: Path, figures: FigureStyle) -> bool:
        """Write the F1 figure; without matplotlib (the light install) say how to get it."""
        metric = self.metric
        label = "F1" if metric == "f1" else "support-weighted F1"
        table, summary = self.table, self.summary
        n = table["n"].tolist() if "n" in table.columns else [summary["n_scored"]] * len(table)
        try:
            plot_f1(
                table["observation"].tolist(),
                table[metric].tolist(),
                table[f"{metric}_ci_low"].tolist(),
                table[f"{metric}_ci_high"].tolist(),
                path,
                support=table["support"].tolist(),
                n=n,
                title=f"{label} per observation",
                subtitle=_f1_subtitle(summary),
                xlabel=label,
                column="F1" if metric == "f1" else "weighted F1",
                style=figures,
            )
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] != "matplotlib":
                raise
            warnings.warn(
                f"{path.name} not written: it needs matplotlib, which is not installed. "
                'Install it with: pip install "cxrkit[plots]"',
                stacklevel=3,
            )
            return False
        return True


def _f1_subtitle(summary: dict[str, Any]) -> str:
    """What the F1 figure shows: gold, reports, how uncertain counted, the intervals.

    Examples
    --------
    >>> _f1_subtitle({"semantics": "positive-only", "n_scored": 1200,
    ...               "uncertain_as": "negative", "bootstrap": 1000})
    'positive-only gold, 1,200 reports; uncertain (-1) counted as negative; 95% CI: 1,000 bootstrap resamples of reports'
    """
    if summary["semantics"] == "full":
        policy = "uncertain (-1) scored as its own class (positive / negative / uncertain / blank)"
    else:
        policy = {
            "positive": "uncertain (-1) counted as positive",
            "negative": "uncertain (-1) counted as negative",
            "ignore": "uncertain (-1) left out (ignore)",
        }[summary["uncertain_as"]]
    boot = summary.get("bootstrap") or 0
    intervals = (
        f"95% CI: {boot:,} bootstrap resamples of reports"
        if boot
        else "no intervals (--bootstrap 0)"
    )
    return f"{summary['semantics']} gold, {summary['n_scored']:,} reports; {policy}; {intervals}"


def validate(
    pred: str | Path | pd.DataFrame,
    gold: str | Path | pd.DataFrame,
    out_dir: str | Path | None = None,
    *,
    id_col: str | None = None,
    gold_id_col: str | None = None,
    label_map: str | Path | LabelMap | None = None,
    gold_semantics: str = "positive-only",
    uncertain_as: str = "positive",
    bootstrap: int = 1000,
    evidence: str | Path | None = None,
    seed: int = 0,
    gold_prefix: str | None = None,
    observations: Sequence[str] | None = None,
    schema: str | None = None,
    figures: FigureStyle | None = None,
) -> ValidationResult:
    """Score predicted labels against curated labels.

    Parameters
    ----------
    pred, gold : path or DataFrame
        The labels table (``cxr label`` output: id, one column per observation, ``status``)
        and the curated table (id plus label columns). CSV, TSV or Parquet by extension.
    out_dir : path, optional
        When given, every output file is written there (see :meth:`ValidationResult.write`).
    id_col, gold_id_col : str, optional
        Id column of the predictions (default: the first of id, uid, report_id, study_id
        present, as ``cxr label`` finds it) and of the gold table (default: the same name if
        the gold has it, else found the same way). Both are checked on the headers first.
    label_map : name, path or LabelMap, optional
        Maps one side's label names onto the other's (e.g. ``chestxray14_to_chexpert``).
        It is applied to the side whose columns are the map's source names.
    gold_semantics : {"positive-only", "full"}
    uncertain_as : {"positive", "negative", "ignore"}
        How -1 counts in the positive-vs-rest scores.
    bootstrap : int
        Resamples of reports for 95% percentile intervals; 0 disables them.
    evidence : path, optional
        Evidence JSONL from ``cxr label --evidence``; fills ``errors.csv``'s matched text,
        rule id and sentence.
    seed : int
        Seed of the bootstrap.
    gold_prefix : str, optional
        Only gold columns starting with this prefix are labels (the prefix is removed),
        e.g. ``"gold_"`` for the IU table.
    observations : list of str, optional
        Score only these observations (after mapping); default: every gold label.
    schema : str, optional
        Name recorded in ``noise.json``; default: the map's target or the packaged schema
        holding every scored name.
    figures : FigureStyle, optional
        Format and resolution of the F1 figure (default ``f1.png`` at 150 dpi).

    Examples
    --------
    >>> import pandas as pd
    >>> pred = pd.DataFrame({"id": [1, 2, 3], "Edema": [1, None, -1]})
    >>> gold = pd.DataFrame({"id": [1, 2, 3], "Edema": [1, 0, 1]})
    >>> res = validate(pred, gold, bootstrap=0)
    >>> float(res.table.loc[0, "f1"]), res.summary["by_uncertain_as"]["negative"]["macro_f1"]
    (1.0, 0.6666666666666666)
    """
    gold_semantics = vocab.SEMANTICS.check(gold_semantics, "gold_semantics")
    uncertain_as = vocab.UNCERTAIN.check(uncertain_as, "uncertain_as")
    vocab.Interval(int, 0, None).check(bootstrap, "bootstrap (0 disables it)")
    id_col, gold_id_col = resolve_id_columns(pred, gold, id_col, gold_id_col, gold_prefix)
    if label_map is not None and not isinstance(label_map, LabelMap):
        label_map = load_label_map(label_map)  # a wrong name is reported before any read
    if evidence is not None:
        check_evidence_path(evidence)
    aligned = align_tables(
        pred,
        gold,
        id_col=id_col,
        gold_id_col=gold_id_col,
        label_map=label_map,
        gold_semantics=gold_semantics,
        gold_prefix=gold_prefix,
        observations=observations,
    )
    evidence_index = load_evidence(evidence) if evidence is not None else None
    scorer = _score_full if gold_semantics == "full" else _score_positive_only
    table, summary, confusion = scorer(aligned, uncertain_as, bootstrap, seed)
    summary = {**_header(aligned, gold_semantics, uncertain_as, bootstrap, seed, schema), **summary}
    counts = {
        row.observation: {"tp": row.tp, "fp": row.fp, "fn": row.fn, "tn": row.tn}
        for row in _binary_table(aligned, uncertain_as).itertuples()
    }
    noise = build_noise(
        counts,
        semantics=gold_semantics,
        uncertain_as=uncertain_as,
        schema=summary["schema"],
        n_reports=len(aligned.ids),
    )
    result = ValidationResult(
        table=table,
        summary=summary,
        errors=_errors(aligned, gold_semantics, uncertain_as, evidence_index),
        noise=noise,
        confusion=confusion,
        missing=aligned.missing,
    )
    if out_dir is not None:
        result.write(out_dir, figures)
    return result


# --------------------------------------------------------------------------- scoring


def _binary_view(
    aligned: Aligned, uncertain_as: str, *, gold_uncertain: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positive-vs-rest arrays (pred, gold, mask) under an uncertain policy.

    ``gold_uncertain``: apply the policy to gold -1 too (full gold).
    """
    pred, gold = aligned.pred, aligned.gold
    mask = np.ones(pred.shape, dtype=bool)
    pred_pos, gold_pos = pred == 1, gold == 1
    if uncertain_as == "positive":
        pred_pos = pred_pos | (pred == -1)
        gold_pos = gold_pos | (gold == -1) if gold_uncertain else gold_pos
    elif uncertain_as == "ignore":
        mask &= pred != -1
        if gold_uncertain:
            mask &= gold != -1
    return pred_pos, gold_pos, mask


def _binary_scores(
    ind: np.ndarray, n_boot: int, seed: int
) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, list[float]]]:
    """Per-observation and pooled scores (with intervals) from row indicators (n, k, 4)."""
    counts = ind.sum(axis=0)
    tp, fp, fn, tn = counts.T
    precision, recall, f1 = M.prf(tp, fp, fn)
    support = tp + fn
    per_obs = {
        "support": support,
        "n": counts.sum(axis=1),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "kappa": M.kappa_binary(tp, fp, fn, tn),
        "f1_ci_low": np.full(len(tp), np.nan),
        "f1_ci_high": np.full(len(tp), np.nan),
    }
    pooled = counts.sum(axis=0)
    overall = {
        "macro_f1": float(M.macro_average(f1, support)),
        "micro_f1": float(M.prf(pooled[0], pooled[1], pooled[2])[2]),
    }
    cis = {"macro_f1_ci": [math.nan, math.nan], "micro_f1_ci": [math.nan, math.nan]}
    if n_boot:
        n, k = ind.shape[:2]
        boot = (M.bootstrap_weights(n, n_boot, seed) @ ind.reshape(n, -1)).reshape(n_boot, k, 4)
        _, _, bf1 = M.prf(boot[..., 0], boot[..., 1], boot[..., 2])
        per_obs["f1_ci_low"], per_obs["f1_ci_high"] = M.percentile_interval(bf1)
        bpool = boot.sum(axis=1)
        samples = np.stack(
            [
                M.macro_average(bf1, boot[..., 0] + boot[..., 2]),
                M.prf(bpool[:, 0], bpool[:, 1], bpool[:, 2])[2],
            ],
            axis=1,
        )
        cis = _pooled_intervals(samples)
    return per_obs, overall, cis


def _pooled_intervals(samples: np.ndarray) -> dict[str, list[float]]:
    """95% intervals of bootstrap samples of (macro, micro), shape (n_boot, 2)."""
    lo, hi = M.percentile_interval(samples)
    return {
        "macro_f1_ci": [float(lo[0]), float(hi[0])],
        "micro_f1_ci": [float(lo[1]), float(hi[1])],
    }


def _binary_table(aligned: Aligned, uncertain_as: str) -> pd.DataFrame:
    """Positive-vs-rest counts per observation (for noise.json), no bootstrap."""
    pred_pos, gold_pos, mask = _binary_view(aligned, uncertain_as, gold_uncertain=True)
    per_obs, _, _ = _binary_scores(M.binary_indicators(pred_pos, gold_pos, mask), 0, 0)
    return pd.DataFrame({"observation": aligned.names, **per_obs})


def _side_by_side(aligned: Aligned, gold_uncertain: bool) -> dict[str, dict[str, float]]:
    out = {}
    for choice in ("positive", "negative"):
        view = _binary_view(aligned, choice, gold_uncertain=gold_uncertain)
        _, overall, _ = _binary_scores(M.binary_indicators(*view), 0, 0)
        out[choice] = overall
    return out


def _undefined_note(support: np.ndarray, predicted: np.ndarray) -> list[str]:
    notes = []
    for s, p in zip(support, predicted, strict=True):
        if s == 0:
            notes.append("undefined: no gold positives (left out of the macro average)")
        elif p == 0:
            notes.append("precision undefined: no predicted positives")
        else:
            notes.append("")
    return notes


def _score_positive_only(
    aligned: Aligned, uncertain_as: str, n_boot: int, seed: int
) -> tuple[pd.DataFrame, dict[str, Any], None]:
    view = _binary_view(aligned, uncertain_as, gold_uncertain=False)
    per_obs, overall, cis = _binary_scores(M.binary_indicators(*view), n_boot, seed)
    table = pd.DataFrame({"observation": aligned.names, **per_obs})
    table["n_pred_uncertain"] = (aligned.pred == -1).sum(axis=0)
    table["note"] = _undefined_note(per_obs["support"], per_obs["tp"] + per_obs["fp"])
    for col in ("support", "n", "tp", "fp", "fn", "tn", "n_pred_uncertain"):
        table[col] = table[col].astype(np.int64)
    summary = {
        "metric": "f1",
        **overall,
        **cis,
        "by_uncertain_as": _side_by_side(aligned, gold_uncertain=False),
        "uncertain_fit": _UNCERTAIN_FIT,
        **_coverage(table),
    }
    return table, summary, None


#: Which uncertain counting fits positive-only gold, and why (shown in metrics.md).
_UNCERTAIN_FIT = {
    "uncertain_as": "negative",
    "reason": "positive-only gold codes what its coders took as present, and a hedged mention "
    "is not that: read the 'uncertain as negative' (not positive) figures. Where the coders "
    "do code borderline or probable findings or both alternatives of 'X versus Y' (as the "
    "Open-i MeSH coders mostly do), label with cxr label --borderline / --probable / "
    "--versus positive rather than counting every uncertain label as positive.",
}


def _score_full(
    aligned: Aligned, uncertain_as: str, n_boot: int, seed: int
) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    pred_codes, gold_codes = M.encode_classes(aligned.pred), M.encode_classes(aligned.gold)
    ind = M.class_indicators(pred_codes, gold_codes)  # (n, k, 4, 4)
    cm = ind.sum(axis=0)
    scores = M.per_class_scores(cm)
    wf1 = M.weighted_f1(cm)
    support = scores["support"][:, 0]
    data: dict[str, Any] = {"observation": aligned.names, "support": support}
    for c, cls in enumerate(M.CLASSES):
        data[f"n_{cls}"] = scores["support"][:, c]
    for c, cls in enumerate(M.CLASSES):
        data[f"f1_{cls}"] = scores["f1"][:, c]
    data.update(
        {
            "weighted_f1": wf1,
            "weighted_f1_ci_low": np.full(len(wf1), np.nan),
            "weighted_f1_ci_high": np.full(len(wf1), np.nan),
            "kappa": M.kappa_confusion(cm),
        }
    )
    binary = _binary_table(aligned, uncertain_as)
    for col in ("precision", "recall", "f1"):
        data[f"pos_{col}"] = binary[col].to_numpy()
    overall = {
        "macro_f1": float(M.macro_average(wf1, support)),
        "micro_f1": float(M.weighted_f1(cm.sum(axis=0))),
    }
    cis = {"macro_f1_ci": [math.nan, math.nan], "micro_f1_ci": [math.nan, math.nan]}
    if n_boot:
        n, k = ind.shape[:2]
        boot = (M.bootstrap_weights(n, n_boot, seed) @ ind.reshape(n, -1)).reshape(n_boot, k, 4, 4)
        bwf1 = M.weighted_f1(boot)
        data["weighted_f1_ci_low"], data["weighted_f1_ci_high"] = M.percentile_interval(bwf1)
        samples = np.stack(
            [M.macro_average(bwf1, boot[:, :, 0, :].sum(axis=-1)), M.weighted_f1(boot.sum(axis=1))],
            axis=1,
        )
        cis = _pooled_intervals(samples)
    table = pd.DataFrame(data)
    table["note"] = [
        "positive F1 undefined: no gold positives (left out of the macro average)" if s == 0 else ""
        for s in support
    ]
    for col in ["support", *(f"n_{c}" for c in M.CLASSES)]:
        table[col] = table[col].astype(np.int64)
    rows = [
        (name, gold_cls, pred_cls, int(cm[j, g, p]))
        for j, name in enumerate(aligned.names)
        for g, gold_cls in enumerate(M.CLASSES)
        for p, pred_cls in enumerate(M.CLASSES)
    ]
    confusion = pd.DataFrame(rows, columns=["observation", "gold", "predicted", "count"])
    summary = {
        "metric": "weighted_f1",
        **overall,
        **cis,
        "weighted_f1_classes": list(M.MENTION_CLASSES),
        "by_uncertain_as": _side_by_side(aligned, gold_uncertain=True),
        **_coverage(table),
    }
    return table, summary, confusion


def _coverage(table: pd.DataFrame) -> dict[str, list[str]]:
    defined = table["support"] > 0
    return {
        "macro_over": table.loc[defined, "observation"].tolist(),
        "undefined": table.loc[~defined, "observation"].tolist(),
    }


def _header(
    aligned: Aligned, semantics: str, uncertain_as: str, n_boot: int, seed: int, schema: str | None
) -> dict[str, Any]:
    return {
        "semantics": semantics,
        "uncertain_as": uncertain_as,
        "schema": schema or aligned.schema,
        "n_scored": len(aligned.ids),
        "observations": list(aligned.names),
        "bootstrap": n_boot,
        "seed": seed,
        **aligned.info,
    }


# --------------------------------------------------------------------------- errors.csv


def _value_name(v: float) -> str:
    return "blank" if math.isnan(v) else _VALUE_NAMES[float(v)]


def _errors(
    aligned: Aligned, semantics: str, uncertain_as: str, evidence: EvidenceIndex | None
) -> pd.DataFrame:
    """Every disagreement, with the mention and rule that produced the predicted value."""
    if semantics == "full":
        wrong = M.encode_classes(aligned.pred) != M.encode_classes(aligned.gold)
    else:
        pred_pos, gold_pos, mask = _binary_view(aligned, uncertain_as, gold_uncertain=False)
        wrong = (pred_pos != gold_pos) & mask
    rows = []
    for i, j in zip(*np.nonzero(wrong), strict=True):
        p, g = float(aligned.pred[i, j]), float(aligned.gold[i, j])
        if semantics == "full":
            kind = f"predicted {M.CLASSES[M.encode_classes(np.array(p))]}, gold {M.CLASSES[M.encode_classes(np.array(g))]}"
        else:
            kind = "false negative" if g == 1 else "false positive"
        report_id, name = aligned.ids[i], aligned.names[j]
        found = (
            evidence.explain(report_id, aligned.origins[name], p)
            if evidence is not None
            else {"note": "no evidence file given"}
        )
        rows.append(
            {
                "id": report_id,
                "observation": name,
                "predicted": _value_name(p),
                "gold": _value_name(g),
                "kind": kind,
                "matched_text": found.get("text", ""),
                "rule_id": found.get("rule_id", ""),
                "rule_source": found.get("rule_source", ""),
                "sentence": found.get("sentence", ""),
                "section": found.get("section", ""),
                "note": found.get("note", ""),
            }
        )
    columns = [
        "id",
        "observation",
        "predicted",
        "gold",
        "kind",
        "matched_text",
        "rule_id",
        "rule_source",
        "sentence",
        "section",
        "note",
    ]
    return pd.DataFrame(rows, columns=columns)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
