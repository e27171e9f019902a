"""Labelling speed, end to end (start-up → read → label → write), against a plain negspacy pipeline.

Reads the IU dev reports (findings + impression) from ../shared/data/cxr_dev, repeats them to
N reports (default 200,000), writes them to a temporary CSV, then in one run times whole
processes, each started fresh (interpreter start-up, imports and pipeline building included):

* ``cxr label --jobs 1`` and ``cxr label --jobs 2`` (and ``cxr label --jobs 1 --evidence``,
  which also writes every mention with its offsets, with ``--evidence``);
* the peer: a process running spaCy blank("en") + sentencizer + EntityRuler (the same mention
  phrases) + negspacy's ``negex`` with its default ``en_clinical`` termset on the same CSV
  (all N reports by default, ``--peer-n``), writing a report-level table;
* the same peer with spaCy's ``nlp.pipe(n_process=2)`` on a slice (``--peer2-n``, 0 skips);
* peak memory (PSS of the process tree) of ``cxr label --jobs 2`` on 1,000,000 reports
  (``--million``, on by default; ``--no-million`` skips it).

Wall-clock reports/s depend on what else runs on the machine, so every line also gives the
CPU time of the whole process tree (user + system, workers included) and the 1-minute load
average when the run started; CPU-time ratios against the peer hardly move with load.

Usage: python benchmarks/label_speed.py [--n 200000] [--peer-n N] [--peer2-n 20000] [--no-million]
                                       [--evidence]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import common
import pandas as pd

DATA = common.CXR_DEV


@dataclass
class Run:
    """One timed process: wall seconds, CPU seconds of its tree, load average at the start."""

    label: str
    reports: int
    wall: float
    cpu: float
    load: float

    @property
    def rate(self) -> float:
        return self.reports / self.wall

    @property
    def cpu_rate(self) -> float:
        """Reports per CPU-second (all processes of the run together)."""
        return self.reports / self.cpu


def _reports(n: int) -> pd.DataFrame:
    df = pd.read_csv(DATA / "iu_reports.csv", usecols=["uid", "findings", "impression"])
    reps = -(-n // len(df))
    big = pd.concat([df] * reps, ignore_index=True).iloc[:n].copy()
    big["id"] = [f"r{i}" for i in range(len(big))]
    return big[["id", "findings", "impression"]]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(label: str, reports: int, cmd: list[str]) -> Run:
    """Run ``cmd`` to completion; its CPU time is that of every descendant it waited for."""
    load = os.getloadavg()[0]
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.decode()[-2000:]}"
        )
    return Run(label, reports, wall, cpu, load)


def _cxr_label(csv: Path, out: Path, jobs: int, evidence: Path | None = None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cxrlabel.cli",
        "label",
        str(csv),
        "-o",
        str(out),
        "--text-col",
        "findings",
        "--text-col",
        "impression",
        "--id-col",
        "id",
        "--jobs",
        str(jobs),
        "--quiet",
        *(["--evidence", str(evidence)] if evidence else []),
    ]


# --------------------------------------------------------------------------- the negspacy peer


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


def _peer_main(csv: Path, out: Path, n: int, n_process: int) -> None:
    """The peer as its own process: build the pipeline, read, label, write a table."""
    nlp, labels = _negspacy_pipeline()
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


def _peer(csv: Path, out: Path, n: int, n_process: int = 1) -> list[str]:
    return [sys.executable, __file__, "--peer", str(csv), str(out), str(n), str(n_process)]


# --------------------------------------------------------------------------- memory


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
        raise SystemExit(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err.decode()[-2000:]}"
        )
    return time.perf_counter() - t, peak, peak_rss


# --------------------------------------------------------------------------- report


def _table(runs: list[Run]) -> None:
    print(
        "| pipeline (whole process, start-up included) | reports | wall s | reports/s | CPU s | reports per CPU-s | load at start |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(
            f"| {r.label} | {r.reports:,} | {r.wall:.1f} | {r.rate:,.0f} | {r.cpu:.1f} | {r.cpu_rate:,.0f} | {r.load:.2f} |"
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        csv, out, n, n_process = sys.argv[2:6]
        _peer_main(Path(csv), Path(out), int(n), int(n_process))
        return
    args = _parse_args()
    if common.skipped(DATA / "iu_reports.csv"):
        return
    peer_n = min(args.peer_n or args.n, args.n)
    peer2_n = min(args.peer2_n, args.n)
    _print_setup(args, peer_n, peer2_n)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv = _write_input(args.n, tmp / "reports.csv")
        runs, ev = _speed_runs(csv, tmp, args.n, peer_n, peer2_n, evidence=args.evidence)
        _report(runs, ev, tmp)
        if args.million:
            _million_memory(tmp)


def _parse_args() -> argparse.Namespace:
    """The command line of the module docstring's usage line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="reports for the speed runs")
    ap.add_argument(
        "--peer-n", type=int, default=None, help="reports for the negspacy peer (default: N)"
    )
    ap.add_argument(
        "--peer2-n",
        type=int,
        default=20_000,
        help="reports for negspacy with n_process=2 (0 skips)",
    )
    ap.add_argument(
        "--million",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure peak memory on 1,000,000 reports",
    )
    ap.add_argument(
        "--evidence",
        action="store_true",
        help="also time `cxr label --jobs 1 --evidence` (every mention written)",
    )
    return ap.parse_args()


def _print_setup(args: argparse.Namespace, peer_n: int, peer2_n: int) -> None:
    """The command with the sizes actually used, and the machine, so a figure can be redone."""
    print(
        f"command: python benchmarks/label_speed.py --n {args.n} --peer-n {peer_n} --peer2-n {peer2_n}"
        + ("" if args.million else " --no-million")
        + (" --evidence" if args.evidence else "")
    )
    print(
        f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; load average at start {os.getloadavg()[0]:.2f}"
    )


def _write_input(n: int, csv: Path) -> Path:
    """Write the ``n`` repeated reports every timed process reads, and say how long they are."""
    _reports(n).to_csv(csv, index=False)
    sample = pd.read_csv(csv, nrows=5000, dtype=str, keep_default_na=False)
    mean_chars = (sample["findings"].str.len() + sample["impression"].str.len()).mean()
    print(
        f"input: {n:,} IU dev reports (findings + impression, repeated), mean {mean_chars:.0f} characters"
    )
    return csv


def _speed_runs(
    csv: Path, tmp: Path, n: int, peer_n: int, peer2_n: int, *, evidence: bool
) -> tuple[list[Run], Run | None]:
    """The timed processes, in this order: cxr label jobs 1 and 2, the peer, then the
    optional ``--evidence`` run and 2-process peer; returns the runs (jobs 1, jobs 2, peer
    and the 2-process peer if run) and the evidence run (``None`` without ``--evidence``)."""
    runs = [
        _timed("cxrkit `cxr label --jobs 1`", n, _cxr_label(csv, tmp / "l1.csv", 1)),
        _timed("cxrkit `cxr label --jobs 2`", n, _cxr_label(csv, tmp / "l2.csv", 2)),
        _timed(
            "negspacy (blank en + sentencizer + EntityRuler + negex en_clinical), 1 process",
            peer_n,
            _peer(csv, tmp / "p1.csv", peer_n),
        ),
    ]
    ev = None
    if evidence:
        ev = _timed(
            "cxrkit `cxr label --jobs 1 --evidence`",
            n,
            _cxr_label(csv, tmp / "le.csv", 1, tmp / "ev.jsonl"),
        )
    if peer2_n:
        runs.append(
            _timed(
                "same negspacy pipeline, `nlp.pipe(n_process=2)`",
                peer2_n,
                _peer(csv, tmp / "p2.csv", peer2_n, 2),
            )
        )
    return runs, ev


def _report(runs: list[Run], ev: Run | None, tmp: Path) -> None:
    """The table of runs and the ratios against the peer and the targets."""
    r1, r2, peer = runs[:3]
    same = pd.read_csv(tmp / "l1.csv").equals(pd.read_csv(tmp / "l2.csv"))
    print()
    _table(runs + ([ev] if ev is not None else []))
    print()
    if ev is not None:
        records = sum(1 for _ in open(tmp / "ev.jsonl", encoding="utf-8"))
        print(
            f"--evidence / without (jobs 1): {ev.rate / r1.rate:.2f}x wall, {ev.cpu_rate / r1.cpu_rate:.2f}x per CPU-s ({records:,} evidence records)"
        )
    print(
        f"jobs 2 / jobs 1: {r2.rate / r1.rate:.2f}x wall  (jobs 1 and 2 outputs identical: {same})"
    )
    print(
        f"wall, cxrkit / negspacy 1 process: jobs 1 {r1.rate / peer.rate:.2f}x, jobs 2 {r2.rate / peer.rate:.2f}x (target >= 2.5x: {'met' if r2.rate / peer.rate >= 2.5 else 'NOT met'})"
    )
    print(
        f"CPU time per report, negspacy / cxrkit: jobs 1 {r1.cpu_rate / peer.cpu_rate:.2f}x, jobs 2 {r2.cpu_rate / peer.cpu_rate:.2f}x (robust to load)"
    )
    if len(runs) > 3:
        print(f"wall, cxrkit jobs 2 / negspacy n_process=2: {r2.rate / runs[3].rate:.2f}x")
    print(
        f"target >= 10,000 reports/s with --jobs 2 (idle machine): {'met' if r2.rate >= 10_000 else 'NOT met'} ({r2.rate:,.0f}; load {r2.load:.2f})"
    )


def _million_memory(tmp: Path) -> None:
    """Peak memory of ``cxr label --jobs 2`` on 1,000,000 reports (``--million``)."""
    big = tmp / "million.csv"
    _reports(1_000_000).to_csv(big, index=False)
    secs, peak, peak_rss = _peak_memory(_cxr_label(big, tmp / "m.csv", 2))
    print(
        f"1,000,000 reports, cxr label --jobs 2: {secs:.0f} s ({1e6 / secs:,.0f} reports/s incl. start-up), "
        f"peak memory of the process tree {peak:,.0f} MB PSS (target < 1024 MB: {'met' if peak < 1024 else 'NOT met'}; "
        f"summed RSS, which counts pages shared by the forked workers once per process: {peak_rss:,.0f} MB)"
    )


if __name__ == "__main__":
    main()
