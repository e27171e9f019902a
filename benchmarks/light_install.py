"""Size of the light install (``pip install cxrkit``, no extras), measured in a fresh venv.

Creates a new virtual environment, installs this checkout into it (not editable, no extras,
through the ordinary pip client and whatever index pip is configured with), and prints the
size of the environment and of its largest packages, then times ``cxr label`` on 10 reports
there (the light install's start-up; ``benchmarks/startup.py`` times the development
environment, which has the image extra).

Usage: python benchmarks/light_install.py [--venv /tmp/cxrkit-light] [--keep] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from startup import REPORTS  # the same 10 reports as benchmarks/startup.py

ROOT = Path(__file__).resolve().parents[1]


def _du(path: Path) -> int:
    """Bytes on disk under ``path`` (files counted once)."""
    total, seen = 0, set()
    for folder, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def _site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def _time_label(venv: Path, runs: int) -> list[float]:
    work = Path(tempfile.mkdtemp(prefix="cxr-light-"))
    lines = ["id,text", *(f'r{i},"{t}"' for i, t in enumerate(REPORTS))]
    (work / "r.csv").write_text("\n".join(lines) + "\n")
    cxr = venv / "bin" / "cxr"
    times = []
    for _ in range(runs + 1):  # the first run warms the disk cache and writes .pyc files
        t = time.perf_counter()
        subprocess.run(
            [str(cxr), "label", "r.csv", "-o", "o.csv", "-q"],
            cwd=work,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - t)
    shutil.rmtree(work)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "cxrkit-light")
    parser.add_argument("--keep", action="store_true", help="keep the venv afterwards")
    parser.add_argument("--runs", type=int, default=5, help="timed cxr label runs")
    args = parser.parse_args()
    print(f"command: python benchmarks/light_install.py --venv {args.venv} --runs {args.runs}")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    if args.venv.exists():
        shutil.rmtree(args.venv)
    subprocess.run([sys.executable, "-m", "venv", str(args.venv)], check=True)
    python = args.venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(ROOT)], check=True)
    empty = Path(tempfile.mkdtemp(prefix="cxr-empty-venv-"))
    subprocess.run([sys.executable, "-m", "venv", str(empty)], check=True)
    base = _du(empty)
    shutil.rmtree(empty)
    total = _du(args.venv)
    site = _site_packages(args.venv)
    sizes = sorted(
        (
            (_du(p), p.name)
            for p in site.iterdir()
            if p.is_dir() and not p.name.endswith((".dist-info", "__pycache__"))
        ),
        reverse=True,
    )
    print(
        f"light install: {_mb(total)} in {args.venv} ({_mb(total - base)} more than an "
        f"empty venv of {_mb(base)})"
    )
    print("largest packages: " + ", ".join(f"{name} {_mb(size)}" for size, name in sizes[:8]))
    heavy = [
        n for n in ("torch", "matplotlib", "sklearn", "scipy", "pyarrow") if (site / n).exists()
    ]
    print(f"optional packages present: {', '.join(heavy) or 'none'}")
    times = _time_label(args.venv, args.runs)
    print(
        f"cxr label, 10 reports, light install: median {statistics.median(times):.2f} s "
        f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} runs)"
    )
    if not args.keep:
        shutil.rmtree(args.venv)


if __name__ == "__main__":
    main()
