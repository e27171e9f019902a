"""Labelling speed, end to end (read → label → write), against a plain negspacy pipeline.

Reads the IU dev reports (findings + impression) from ../shared/data/cxr_dev, repeats them to
N reports (default 100,000), writes them to a temporary CSV, then in one run:

* cxrkit ``label_file`` with --jobs 1 and --jobs 2 (reports/s, end to end);
* the peer: spaCy blank("en") + sentencizer + EntityRuler (the same mention phrases) +
  negspacy's ``negex`` with its default ``en_clinical`` termset, reading the same CSV and
  writing a report-level table (run on a slice and reported as reports/s);
* peak memory (RSS of the whole process tree) of ``cxr label --jobs 2`` on 1,000,000 reports
  (``--million``; on by default, ``--no-million`` skips it).

Usage: python benchmarks/label_speed.py [--n 100000] [--peer-n 20000] [--no-million]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CXR_DEV", ROOT.parent / "shared" / "data" / "cxr_dev"))


def _reports(n: int) -> pd.DataFrame:
    df = pd.read_csv(DATA / "iu_reports.csv", usecols=["uid", "findings", "impression"])
    reps = -(-n // len(df))
    big = pd.concat([df] * reps, ignore_index=True).iloc[:n].copy()
    big["id"] = [f"r{i}" for i in range(len(big))]
    return big[["id", "findings", "impression"]]


def _cxrkit(csv: Path, out: Path, jobs: int) -> float:
    from cxrlabel.labelfile import label_file

    t = time.perf_counter()
    summary = label_file(csv, out, text_cols=["findings", "impression"], id_col="id", jobs=jobs, progress=False)
    dt = time.perf_counter() - t
    return summary.rows / dt


def _negspacy_pipeline():
    import negspacy.negation  # noqa: F401  (registers "negex")
    import spacy
    from negspacy.termsets import termset

    from cxrlabel.lexicon import load_schema

    schema = load_schema("chexpert")
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    patterns = []
    for obs in schema.observations:
        for phrase in obs.mentions:
            if "..." not in phrase:
                patterns.append({"label": obs.name.upper().replace(" ", "_"), "pattern": phrase})
    ruler.add_patterns(patterns)
    nlp.add_pipe("negex", config={"neg_termset": termset("en_clinical").get_patterns()})
    return nlp, [o.name.upper().replace(" ", "_") for o in schema.observations]


def _peer(csv: Path, out: Path, n: int, n_process: int = 1) -> float:
    nlp, labels = _negspacy_pipeline()
    t = time.perf_counter()
    df = pd.read_csv(csv, nrows=n, dtype=str, keep_default_na=False)
    texts = (df["findings"] + "\n\n" + df["impression"]).tolist()
    rows = []
    for doc in nlp.pipe(texts, batch_size=256, n_process=n_process):
        row = dict.fromkeys(labels, "")
        for ent in doc.ents:
            value = "0" if ent._.negex else "1"
            if row[ent.label_] != "1":
                row[ent.label_] = value
        rows.append(row)
    pd.DataFrame(rows).assign(id=df["id"]).to_csv(out, index=False)
    return n / (time.perf_counter() - t)


def _peak_memory(cmd: list[str]) -> tuple[float, float, float]:
    """Run ``cmd``; return (seconds, peak PSS and peak RSS of its process tree in MB).

    PSS (proportional set size) splits pages shared between the parent and its forked
    workers among them, so the sum is the memory the run really holds; summed RSS counts
    shared pages once per process and overstates it.
    """
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = peak_rss = 0.0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak, peak_rss
        p = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                infos = [q.memory_full_info() for q in [p, *p.children(recursive=True)]]
                peak = max(peak, sum(i.pss for i in infos) / 2**20)
                peak_rss = max(peak_rss, sum(i.rss for i in infos) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.2)

    t = time.perf_counter()
    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    _, err = proc.communicate()
    done.set()
    thread.join()
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err.decode()[-2000:]}")
    return time.perf_counter() - t, peak, peak_rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="reports for the speed runs")
    ap.add_argument("--peer-n", type=int, default=20_000, help="reports for the negspacy peer")
    ap.add_argument("--million", action=argparse.BooleanOptionalAction, default=True, help="also measure peak memory on 1,000,000 reports")
    args = ap.parse_args()
    if not (DATA / "iu_reports.csv").is_file():
        print(f"skipped: real data not found at {DATA} (set CXR_DEV)")
        return
    print(f"command: python benchmarks/label_speed.py --n {args.n} --peer-n {args.peer_n}" + ("" if args.million else " --no-million"))
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv = tmp / "reports.csv"
        _reports(args.n).to_csv(csv, index=False)
        mean_chars = pd.read_csv(csv, nrows=5000, dtype=str, keep_default_na=False).eval("findings.str.len() + impression.str.len()").mean()
        print(f"input: {args.n:,} IU dev reports (findings + impression, repeated), mean {mean_chars:.0f} characters")
        r1 = _cxrkit(csv, tmp / "l1.csv", 1)
        r2 = _cxrkit(csv, tmp / "l2.csv", 2)
        peer = _peer(csv, tmp / "peer.csv", min(args.peer_n, args.n))
        peer2 = _peer(csv, tmp / "peer2.csv", min(2 * args.peer_n, args.n), n_process=2)
        same = pd.read_csv(tmp / "l1.csv").equals(pd.read_csv(tmp / "l2.csv"))
        print()
        print("| pipeline | reports/s (read → label → write) |")
        print("|---|---:|")
        print(f"| cxrkit `cxr label --jobs 1` | {r1:,.0f} |")
        print(f"| cxrkit `cxr label --jobs 2` | {r2:,.0f} |")
        print(f"| negspacy (blank en + sentencizer + EntityRuler + negex en_clinical), 1 process | {peer:,.0f} |")
        print(f"| same negspacy pipeline, `nlp.pipe(n_process=2)` | {peer2:,.0f} |")
        print()
        print(f"jobs 2 / jobs 1: {r2 / r1:.2f}x  (jobs 1 and 2 outputs identical: {same})")
        print(f"cxrkit jobs 1 / negspacy 1 process: {r1 / peer:.2f}x;  cxrkit jobs 2 / negspacy 1 process: {r2 / peer:.2f}x;  "
              f"cxrkit jobs 2 / negspacy 2 processes: {r2 / peer2:.2f}x")
        print(f"target >= 10,000 reports/s: {'met' if max(r1, r2) >= 10_000 else 'NOT met'} ({max(r1, r2):,.0f})")
        if args.million:
            big = tmp / "million.csv"
            _reports(1_000_000).to_csv(big, index=False)
            cmd = [sys.executable, "-m", "cxrlabel.cli", "label", str(big), "-o", str(tmp / "m.csv"),
                   "--text-col", "findings", "--text-col", "impression", "--id-col", "id", "--jobs", "2", "--quiet"]
            secs, peak, peak_rss = _peak_memory(cmd)
            print(f"1,000,000 reports, cxr label --jobs 2: {secs:.0f} s ({1e6 / secs:,.0f} reports/s incl. start-up), "
                  f"peak memory of the process tree {peak:,.0f} MB PSS (target < 1024 MB: {'met' if peak < 1024 else 'NOT met'}; "
                  f"summed RSS, which counts pages shared by the forked workers once per process: {peak_rss:,.0f} MB)")


if __name__ == "__main__":
    main()
