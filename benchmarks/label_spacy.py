"""The ``cxr_labeler`` spaCy component against ``Labeler.label`` on the same reports.

Reads the IU dev reports (findings + impression) from ../shared/data/cxr_dev, repeats them
to N reports (default 20,000) and times, in this process after a warm-up, the best of three
runs of:

* ``Labeler().label(texts)`` (a DataFrame of labels);
* ``nlp.pipe(texts)`` with ``nlp = spacy.blank("en")`` + ``nlp.add_pipe("cxr_labeler")``
  (labels and ``doc.spans["cxr_mentions"]`` with their extensions; the evidence records of
  ``doc._.cxr_mentions`` are made only when read),
  streamed: each Doc's labels are kept and the Doc dropped, as a labelling job does;
* the same, keeping every Doc (``list(nlp.pipe(texts))``), for reference.

Prints CPU and wall seconds, reports/s and the ratio pipe / label (target <= 1.5), and
checks that both give the same labels.

Usage: python benchmarks/label_spacy.py [--n 20000]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import common
import pandas as pd

DATA = common.CXR_DEV


def _texts(n: int) -> list[str]:
    from cxrlabel.io import join_text_columns

    df = pd.read_csv(DATA / "iu_reports.csv", usecols=["findings", "impression"], dtype=str)
    texts = [
        join_text_columns(p, ["findings", "impression"]) or "" for p in df.itertuples(index=False)
    ]
    return (texts * (n // len(texts) + 1))[:n]


def _best(fn, repeats: int = 3) -> tuple[float, float, object]:
    runs = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        runs.append((time.process_time() - cpu, time.perf_counter() - wall, out))
    return min(runs, key=lambda r: r[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="reports")
    args = ap.parse_args()
    if common.skipped(DATA / "iu_reports.csv"):
        return
    import spacy

    import cxrlabel.component  # noqa: F401  (registers the factory)
    from cxrlabel import Labeler

    print(f"command: python benchmarks/label_spacy.py --n {args.n}")
    print(
        f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; spaCy {spacy.__version__}; "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    texts = _texts(args.n)
    lab = Labeler()
    nlp = spacy.blank("en")
    nlp.add_pipe("cxr_labeler")
    lab.label(texts[:2000])
    list(nlp.pipe(texts[:2000]))

    def stream() -> tuple[list[dict[str, float]], int]:
        labels, spans = [], 0
        for doc in nlp.pipe(texts):
            labels.append(doc._.cxr_labels)
            spans += len(doc.spans.get("cxr_mentions", ()))
        return labels, spans

    cpu_l, wall_l, frame = _best(lambda: lab.label(texts))
    cpu_p, wall_p, (labels, spans) = _best(stream)
    cpu_k, wall_k, _ = _best(lambda: list(nlp.pipe(texts)))
    same = all(
        {k: v for k, v in row.items() if not math.isnan(v)} == got
        for row, got in zip(frame.to_dict("records"), labels, strict=True)
    )
    print(
        f"input: {args.n:,} IU dev reports (findings + impression, repeated); {spans:,} mention spans"
    )
    print()
    print("| call | CPU s | wall s | reports/s (CPU) |")
    print("|---|---:|---:|---:|")
    print(f"| `Labeler().label(texts)` | {cpu_l:.2f} | {wall_l:.2f} | {args.n / cpu_l:,.0f} |")
    print(
        f"| `nlp.pipe(texts)` streamed, blank en + cxr_labeler | {cpu_p:.2f} | {wall_p:.2f} | {args.n / cpu_p:,.0f} |"
    )
    print(
        f"| `list(nlp.pipe(texts))` (every Doc kept) | {cpu_k:.2f} | {wall_k:.2f} | {args.n / cpu_k:,.0f} |"
    )
    print()
    ratio = cpu_p / cpu_l
    print(
        f"nlp.pipe / Labeler.label: {ratio:.2f}x CPU, {wall_p / wall_l:.2f}x wall "
        f"(target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'}); same labels: {same}; "
        f"load average at end {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
