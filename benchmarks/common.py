"""What the benchmark scripts share: where the real data is, the line that says it is not
there, and the command line they print first (so every figure can be made again).

Real data is read by path, never shipped: ``CXR_DEV`` and ``KERMANY_DEV`` name its folders,
by default ``../shared/data/cxr_dev`` and ``../shared/data/kermany_dev`` beside the clone.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
#: Folders of the real data, by the environment variable that moves each.
DATA_ENV = {
    "CXR_DEV": Path(os.environ.get("CXR_DEV", SHARED / "cxr_dev")),
    "KERMANY_DEV": Path(os.environ.get("KERMANY_DEV", SHARED / "kermany_dev")),
}
CXR_DEV = DATA_ENV["CXR_DEV"]
KERMANY_DEV = DATA_ENV["KERMANY_DEV"]


def missing(*needed: Path) -> list[Path]:
    """The files or folders of ``needed`` that are not on this machine."""
    return [path for path in needed if not path.exists()]


def skipped(*needed: Path) -> bool:
    """True, after one ``skipped: ... not found`` line each, when something is missing.

    A benchmark without its data stops with exit code 0 (CI and a fresh clone have none);
    the line names the variable that points at the folder.
    """
    absent = missing(*needed)
    for path in absent:
        env = [name for name, folder in DATA_ENV.items() if path.is_relative_to(folder)]
        hint = f" (set {env[0]} to the {env[0].lower()} folder)" if env else ""
        print(f"skipped: {path} not found{hint}")
    return bool(absent)


def command_line(script: str, argv: list[str] | None = None, *, python: str = "python") -> str:
    """``command: python benchmarks/SCRIPT ARGS``: ``sys.argv`` unless ``argv`` is given
    (a call from Python, e.g. a test, has no command line of its own)."""
    words = sys.argv if argv is None else [f"benchmarks/{script}", *argv]
    return "command: " + shlex.join([python, *words])
