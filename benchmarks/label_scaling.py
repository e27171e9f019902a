"""Labelling time against text length: linear, with and without evidence.

Three kinds of long input, each labelled as one report by one ``Labeler`` (labels only, as
``cxr label`` does, or labels and evidence records encoded as JSON lines, as ``cxr label
--evidence`` does), at sizes up to 1 MB:

* a long report: ordinary sentences (written for this benchmark) repeated;
* one long sentence: the same clauses joined without a sentence end;
* one run of ``§`` without whitespace (spaCy's affix splitting is quadratic in such a run).

For each size the wall and CPU seconds are printed (the best of three runs below 256 KB) with
the CPU time per KB; linear growth means a flat per-KB column. The last line compares the per-KB CPU time at the
largest size with the 64 KB one for each kind (1.0 = perfectly linear; the issue's quadratic
cases grew about 4x per doubling).

Usage: python benchmarks/label_scaling.py [--max-kb 1024] [--sentence-max-kb 1024]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

SENTENCES = [
    "The heart size is normal.",
    "There is no focal consolidation, pleural effusion or pneumothorax.",
    "Mild atelectasis at the left base, possibly with a small effusion.",
    "Stable appearance of the right internal jugular catheter.",
    "No acute osseous abnormality.",
    "Cannot exclude early pneumonia in the right lower lobe.",
]
CLAUSES = [s.rstrip(".") + " and" for s in SENTENCES]


def _make(kind: str, chars: int) -> str:
    if kind == "run of §":
        return "§" * chars
    parts = SENTENCES if kind == "long report" else CLAUSES
    block = " ".join(parts) + " "
    text = block * (chars // len(block) + 1)
    return text[:chars]


def _label(lab, text: str, evidence: bool) -> tuple[float, float, int]:
    """(wall s, CPU s, evidence bytes) of labelling ``text`` as one report."""
    from cxrlabel.io import evidence_lines

    wall, cpu = time.perf_counter(), time.process_time()
    size = 0
    if evidence:
        _, _, records = lab.label_evidence([text], ["r"])
        size = sum(len(line) + 1 for line in evidence_lines(records))
    else:
        lab.label_array([text])
    return time.perf_counter() - wall, time.process_time() - cpu, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-kb", type=int, default=1024, help="largest report, KB")
    ap.add_argument(
        "--sentence-max-kb", type=int, default=1024, help="largest single sentence / run, KB"
    )
    args = ap.parse_args()
    print(
        f"command: python benchmarks/label_scaling.py --max-kb {args.max_kb} --sentence-max-kb {args.sentence_max_kb}"
    )
    print(
        f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; load average at start {os.getloadavg()[0]:.2f}"
    )
    print()
    from cxrlabel import Labeler

    lab = Labeler()
    _label(lab, _make("long report", 4000), True)  # warm-up
    per_kb: dict[tuple[str, bool], dict[int, float]] = {}
    print("| input | evidence | KB | wall s | CPU s | CPU ms per KB | evidence MB | load |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for kind, top in (
        ("long report", args.max_kb),
        ("one sentence", args.sentence_max_kb),
        ("run of §", args.sentence_max_kb),
    ):
        sizes = [kb for kb in (1, 4, 16, 64, 256, 1024, 4096) if kb <= top]
        for evidence in (False, True):
            if kind == "run of §" and evidence:
                continue  # no mentions: evidence is empty
            for kb in sizes:
                text = _make(kind, kb * 1024)
                runs = [_label(lab, text, evidence) for _ in range(3 if kb < 256 else 1)]
                wall, cpu, size = min(runs, key=lambda r: r[1])
                per_kb.setdefault((kind, evidence), {})[kb] = 1000 * cpu / kb
                print(
                    f"| {kind} | {'yes' if evidence else 'no'} | {kb:,} | {wall:.3f} | {cpu:.3f} | "
                    f"{1000 * cpu / kb:.2f} | {size / 1e6:.1f} | {os.getloadavg()[0]:.2f} |",
                    flush=True,
                )
    print()
    ratios = []
    for (kind, evidence), by_size in per_kb.items():
        big = max(by_size)
        if big > 64:
            ratios.append(
                f"{kind}{' + evidence' if evidence else ''} {by_size[big] / by_size[64]:.2f} ({big:,} KB)"
            )
    print("CPU per KB at the largest size / at 64 KB (1.0 = linear): " + "; ".join(ratios))


if __name__ == "__main__":
    main()
