"""Labelling accuracy (issue 3): cxrlabel against MTI and negspacy on real reports, one run.

Two checks, each against its peers in the same run:

1. **IU / Open-i dev reports** (``iu_reports.csv``, rows with gold): ``findings`` +
   ``impression`` labelled with the ChestX-ray14 schema, scored positive-only against the
   ``gold_*`` columns (derived from the MeSH terms human coders assigned) over the 13
   findings that have positives (Hernia has none). Per-finding P/R/F1 and macro/micro F1
   with 95% bootstrap intervals, with uncertain (-1) counted as positive and as negative.
   Peers: NLM's indexer MTI (``mesh_automatic``, through ``cxrlabel.openi.mti_predictions``)
   and a plain negspacy pipeline with the same mention phrases (spaCy blank("en") +
   EntityRuler + sentencizer + ``negex`` with its default ``en_clinical`` termset; an entity
   counts as positive unless ``ent._.negex``).
2. **NegEx test sentences** (``negex_sentences.tsv``): ``Labeler.assertion(sentence,
   condition)`` against the human Affirmed/Negated status, uncertain counted as Affirmed
   (NegEx's collection has no uncertain class) and, for reference, as Negated. Peer:
   negspacy ``negex`` (``en_clinical``) on the same condition span.

Targets: IU macro-F1 ≥ 0.90 and micro-F1 ≥ 0.93; negation accuracy ≥ negspacy's.

Usage (from the repo root): python benchmarks/label_accuracy.py [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cxrlabel.io import join_text_columns

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CXR_DEV", ROOT.parent / "shared" / "data" / "cxr_dev"))
SCHEMA = "chestxray14"
TARGET_MACRO, TARGET_MICRO = 0.90, 0.93


def iu_reports(data: Path) -> tuple[pd.DataFrame, list[str]]:
    """Dev reports with gold, and their text as "FINDINGS: ...\\n\\nIMPRESSION: ..."."""
    df = pd.read_csv(data / "iu_reports.csv")
    df = df[df["has_gold"].astype(str).str.lower() == "true"].reset_index(drop=True)
    texts = [
        join_text_columns([f, i], ["findings", "impression"]) or ""
        for f, i in zip(df["findings"], df["impression"], strict=True)
    ]
    return df, texts


def scored_findings(df: pd.DataFrame, names: list[str]) -> list[str]:
    """Findings with at least one gold positive (the others have undefined F1)."""
    return [n for n in names if f"gold_{n}" in df and (df[f"gold_{n}"] == 1).any()]


def cxrlabel_table(df: pd.DataFrame, texts: list[str]) -> tuple[pd.DataFrame, float]:
    """cxrlabel's labels table for the reports and its speed (reports/s)."""
    from cxrlabel import Labeler

    labeler = Labeler(SCHEMA)
    labeler.label_array(texts[:50])  # warm-up
    t = time.perf_counter()
    array, status = labeler.label_array(texts)
    speed = len(texts) / (time.perf_counter() - t)
    table = pd.DataFrame(array.astype(np.float64), columns=labeler.names)
    table.insert(0, "uid", df["uid"].to_numpy())
    table["status"] = status
    return table, speed


def negspacy_ner_pipeline():
    """spaCy blank("en") + EntityRuler (the schema's mention phrases) + sentencizer + negex."""
    import negspacy.negation  # noqa: F401  (registers the "negex" factory)
    import spacy
    from negspacy.termsets import termset

    from cxrlabel.lexicon import load_schema
    from cxrlabel.mentions import phrase_variants

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    patterns = [
        {"label": obs.name, "pattern": " ".join(variant)}
        for obs in load_schema(SCHEMA).observations
        for phrase in obs.mentions
        if "..." not in phrase  # gapped phrases have no PhraseMatcher equivalent
        for variant in phrase_variants(phrase)
    ]
    ruler.add_patterns(patterns)
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("negex", config={"neg_termset": termset("en_clinical").get_patterns()})
    return nlp


def negspacy_table(
    df: pd.DataFrame, texts: list[str], names: list[str]
) -> tuple[pd.DataFrame, float]:
    """Report-level labels from the negspacy pipeline: 1 if any entity is not negated, else 0."""
    nlp = negspacy_ner_pipeline()
    rows = []
    t = time.perf_counter()
    for doc in nlp.pipe(texts, batch_size=256):
        row = dict.fromkeys(names, np.nan)
        for ent in doc.ents:  # any affirmed mention makes the finding positive
            value = 0.0 if ent._.negex else 1.0
            if np.isnan(row[ent.label_]) or value > row[ent.label_]:
                row[ent.label_] = value
        rows.append(row)
    speed = len(texts) / (time.perf_counter() - t)
    table = pd.DataFrame(rows, columns=names)
    table.insert(0, "uid", df["uid"].to_numpy())
    table["status"] = ["ok" if t else "empty" for t in texts]
    return table, speed


def score(
    pred: pd.DataFrame, df: pd.DataFrame, findings: list[str], uncertain_as: str, bootstrap: int
):
    """``cxrlabel.validation.labels`` on the positive-only gold: (per-finding table, summary)."""
    from cxrlabel.validation.labels import validate

    gold = df[["uid", *[f"gold_{n}" for n in findings]]]
    result = validate(
        pred,
        gold,
        id_col="uid",
        gold_id_col="uid",
        gold_prefix="gold_",
        schema=SCHEMA,
        uncertain_as=uncertain_as,
        bootstrap=bootstrap,
        observations=findings,
    )
    return result.table.set_index("observation"), result.summary


def print_iu(df: pd.DataFrame, texts: list[str], bootstrap: int) -> dict[str, float]:
    from cxrlabel.lexicon import load_schema
    from cxrlabel.openi import mti_predictions

    names = [o.name for o in load_schema(SCHEMA).observations]
    findings = scored_findings(df, names)
    print(
        f"\n## IU dev reports: {len(df)} with gold; {len(findings)} findings with positives "
        f"(left out, no gold positive: {sorted(set(names) - set(findings))})"
    )
    ours, our_speed = cxrlabel_table(df, texts)
    peer, peer_speed = negspacy_table(df, texts, names)
    mti = mti_predictions(df, SCHEMA)
    runs = {"cxrlabel": ours, "negspacy": peer, "MTI": mti}
    results = {
        (name, policy): score(table, df, findings, policy, bootstrap)
        for name, table in runs.items()
        for policy in ("positive", "negative")
    }
    print(
        f"cxrlabel labelled {len(texts)} reports at {our_speed:,.0f} reports/s "
        f"(negspacy pipeline: {peer_speed:,.0f} reports/s; one process)"
    )
    for policy in ("positive", "negative"):
        table = results[("cxrlabel", policy)][0]
        print(f"\n### cxrlabel per finding, uncertain counted as {policy}")
        print("| finding | support | TP | FP | FN | P | R | F1 [95% CI] | MTI F1 | negspacy F1 |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name in findings:
            r = table.loc[name]
            mti_f1 = results[("MTI", policy)][0].loc[name, "f1"]
            neg_f1 = results[("negspacy", policy)][0].loc[name, "f1"]
            print(
                f"| {name} | {int(r.support)} | {int(r.tp)} | {int(r.fp)} | {int(r.fn)} | "
                f"{r.precision:.3f} | {r.recall:.3f} | {r.f1:.3f} [{r.f1_ci_low:.3f}, "
                f"{r.f1_ci_high:.3f}] | {mti_f1:.3f} | {neg_f1:.3f} |"
            )
    print("\n### Summary (macro / micro F1 over the scored findings, 95% bootstrap CI)")
    print("| labeller | uncertain as | macro-F1 | micro-F1 |")
    print("|---|---|---|---|")
    figures: dict[str, float] = {}
    for (name, policy), (_, s) in results.items():
        lo, hi = s["macro_f1_ci"]
        mlo, mhi = s["micro_f1_ci"]
        print(
            f"| {name} | {policy} | {s['macro_f1']:.3f} [{lo:.3f}, {hi:.3f}] | "
            f"{s['micro_f1']:.3f} [{mlo:.3f}, {mhi:.3f}] |"
        )
        figures[f"{name}/{policy}/macro"] = s["macro_f1"]
        figures[f"{name}/{policy}/micro"] = s["micro_f1"]
    for policy in ("positive", "negative"):
        for peer_name in ("MTI", "negspacy"):
            for avg in ("macro", "micro"):
                a = figures[f"cxrlabel/{policy}/{avg}"]
                b = figures[f"{peer_name}/{policy}/{avg}"]
                print(
                    f"margin vs {peer_name} ({avg}, uncertain as {policy}): {a - b:+.3f} "
                    f"(ratio {a / b:.2f}x)"
                )
    return figures


def print_negation(data: Path) -> dict[str, float]:
    import negspacy.negation  # noqa: F401
    import spacy
    from negspacy.termsets import termset
    from spacy.tokens import Span

    from cxrlabel import Labeler
    from cxrlabel.labeler import _locate  # the same condition span for both labellers
    from cxrlabel.validation.assertions import score_assertions

    table = pd.read_csv(data / "negex_sentences.tsv", sep="\t")
    status_col = next(c for c in table.columns if c.lower().startswith("negation_status"))
    table = table.rename(columns={"Condition": "target", status_col: "status"})
    print(
        f"\n## NegEx test sentences: {len(table)} (columns used: Condition, sentence, "
        f"{status_col!r}); gold {table['status'].str.strip().value_counts().to_dict()}"
    )

    labeler = Labeler()
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    negex = nlp.add_pipe("negex", config={"neg_termset": termset("en_clinical").get_patterns()})

    def negspacy_status(sentence: str, target: str) -> str:
        doc = nlp.get_pipe("sentencizer")(nlp.make_doc(sentence))
        start, end = _locate(nlp, doc, target)
        doc.ents = [Span(doc, start, end, label="CONDITION")]
        return "negative" if negex(doc).ents[0]._.negex else "positive"

    statuses: dict[tuple[str, str], str] = {}

    def ours(uncertain: str):
        def fn(sentence: str, target: str) -> str:
            key = (sentence, target)
            if key not in statuses:
                statuses[key] = labeler.assertion(sentence, target)
            return uncertain if statuses[key] == "uncertain" else statuses[key]

        return fn

    runs = {
        "cxrlabel (uncertain as Affirmed)": ours("positive"),
        "cxrlabel (uncertain as Negated)": ours("negative"),
        "negspacy en_clinical": negspacy_status,
    }
    print("| labeller | accuracy | scored | target not found | time |")
    print("|---|---|---|---|---|")
    figures = {}
    for name, fn in runs.items():
        t = time.perf_counter()
        s = score_assertions(table, fn).summary
        figures[name] = s["accuracy"]
        print(
            f"| {name} | {s['accuracy']:.4f} | {s['n_scored']} | {s['n_not_scored']} | "
            f"{time.perf_counter() - t:.1f} s |"
        )
    n_unc = sum(v == "uncertain" for v in statuses.values())
    print(f"cxrlabel said uncertain on {n_unc} of {len(statuses)} distinct (sentence, condition)")
    a, b = figures["cxrlabel (uncertain as Affirmed)"], figures["negspacy en_clinical"]
    print(
        f"margin vs negspacy: {a - b:+.4f} (ratio {a / b:.3f}x; errors "
        f"{round((1 - a) * len(table))} vs {round((1 - b) * len(table))})"
    )
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates for CIs")
    args = ap.parse_args()
    if not (DATA / "iu_reports.csv").is_file():
        print(f"skipped: real data not found at {DATA} (set CXR_DEV to point at cxr_dev)")
        return
    print(f"command: python benchmarks/label_accuracy.py --bootstrap {args.bootstrap}")
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; data: {DATA}")
    df, texts = iu_reports(DATA)
    iu = print_iu(df, texts, args.bootstrap)
    neg = print_negation(DATA)
    print("\n## Targets (issue 3)")
    for policy in ("positive", "negative"):
        macro, micro = iu[f"cxrlabel/{policy}/macro"], iu[f"cxrlabel/{policy}/micro"]
        ok = macro >= TARGET_MACRO and micro >= TARGET_MICRO
        print(
            f"IU, uncertain as {policy}: macro {macro:.3f} (≥ {TARGET_MACRO}), micro "
            f"{micro:.3f} (≥ {TARGET_MICRO}): {'MET' if ok else 'NOT MET'}"
        )
    a, b = neg["cxrlabel (uncertain as Affirmed)"], neg["negspacy en_clinical"]
    print(f"Negation accuracy {a:.4f} ≥ negspacy {b:.4f}: {'MET' if a >= b else 'NOT MET'}")


if __name__ == "__main__":
    main()
