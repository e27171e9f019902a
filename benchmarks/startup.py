"""Start-up of ``cxr``: wall time of short commands, each in a fresh process.

Times (median of ``--runs`` rounds after a warm-up round; each round runs every case once):

* ``cxr --help``;
* ``cxr label`` on 10 reports, in this environment (the image extra installed: torch is
  importable) and in a light-install emulation (a process where torch, torchvision, faiss,
  scipy, scikit-learn, matplotlib and pyarrow cannot be imported);
* the same with ``CXR_FAST_START=0`` (thinc imports torch, spaCy imports its CLI): the
  start-up before this work, for the ratio;
* an argument error (a misspelt ``--text-col``), which must come before spaCy is imported;
* the peer: what a negspacy user waits for before the first report (``import spacy``,
  ``spacy.blank("en")``, sentencizer and ``negex``), in the same environment.

Each line gives the median wall time and the median CPU time (user + system) of the
process: on a loaded machine the wall time grows with the load, the CPU time much less.

The real light install is timed by ``benchmarks/light_install.py``.

Usage: python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPORTS = [
    "No pneumothorax.",
    "Mild cardiomegaly. Cannot exclude pneumonia.",
    "Small left pleural effusion.",
    "Heart size normal. Lungs clear.",
    "Possible atelectasis at the left base.",
    "No acute cardiopulmonary process.",
    "Pacemaker in place. Mild edema.",
    "Fracture of the right fifth rib.",
    "Interval resolution of consolidation.",
    "Enlarged cardiac silhouette.",
]
OPTIONAL = ("torch", "torchvision", "faiss", "scipy", "sklearn", "matplotlib", "pyarrow")
LIGHT = (
    "import importlib.abc, sys\n"
    "class Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path, target=None):\n"
    f"        if name.split('.')[0] in {OPTIONAL!r}:\n"
    "            raise ModuleNotFoundError(name, name=name)\n"
    "sys.meta_path.insert(0, Block())\n"
    "from cxrlabel.cli import main\n"
    "sys.exit(main())\n"  # as the ``cxr`` console script calls it
)
PEER = (
    "import sys, spacy, negspacy.negation\n"
    "nlp = spacy.blank('en'); nlp.add_pipe('sentencizer'); nlp.add_pipe('negex')\n"
    "nlp('No pneumothorax.')\n"
)


def _run(
    command: list[str], cwd: Path, env: dict[str, str] | None, expect: int
) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != expect:
        raise SystemExit(f"{command} exited {done.returncode}: {done.stderr[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def _interleaved(
    cases: dict[str, tuple], cwd: Path, runs: int
) -> dict[str, list[tuple[float, float]]]:
    """Each round runs every case once (a warm-up round first), so a change of machine load
    during the benchmark hits every case alike."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for round_ in range(runs + 1):
        for name, (command, env, expect) in cases.items():
            measured = _run(command, cwd, env, expect)
            if round_:
                times[name].append(measured)
    return times


def _line(name: str, measured: list[tuple[float, float]]) -> float:
    wall = [w for w, _ in measured]
    cpu = statistics.median(c for _, c in measured)
    median = statistics.median(wall)
    print(
        f"  {name:<56} {median:5.2f} s wall (min {min(wall):.2f}, max {max(wall):.2f}), "
        f"{cpu:.2f} s CPU"
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cxr = str(Path(sys.executable).with_name("cxr"))
    work = Path(tempfile.mkdtemp(prefix="cxr-startup-"))
    rows = ["id,text", *(f'r{i},"{t}"' for i, t in enumerate(REPORTS))]
    (work / "r.csv").write_text("\n".join(rows) + "\n")
    label = ["label", "r.csv", "-o", "o.csv", "-q"]
    slow = {**os.environ, "CXR_FAST_START": "0"}
    print(f"command: python benchmarks/startup.py --runs {args.runs}")
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    light = [sys.executable, "-c", LIGHT, *label]
    cases = {
        "cxr --help": ([cxr, "--help"], None, 0),
        "cxr label, 10 reports (image extra installed)": ([cxr, *label], None, 0),
        "cxr label, 10 reports (light install emulated)": (light, None, 0),
        "cxr label, 10 reports, CXR_FAST_START=0 (image extra)": ([cxr, *label], slow, 0),
        "cxr label, 10 reports, CXR_FAST_START=0 (light emulated)": (light, slow, 0),
        "cxr label ... --text-col txt (argument error)": (
            [cxr, *label, "--text-col", "txt"],
            None,
            1,
        ),
        "peer: spaCy blank + sentencizer + negex, one report": (
            [sys.executable, "-c", PEER],
            None,
            0,
        ),
    }
    times = _interleaved(cases, work, args.runs)
    medians = [_line(name, t) for name, t in times.items()]
    label_fast, light_fast, label_slow, light_slow, peer = (medians[i] for i in (1, 2, 3, 4, 6))
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"fast start vs CXR_FAST_START=0: {label_slow / label_fast:.1f}x (image extra), "
        f"{light_slow / light_fast:.1f}x (light)"
    )
    print(f"negspacy peer / cxr label: {peer / label_fast:.2f}x (image extra)")


if __name__ == "__main__":
    main()
