"""``torchrun --no-python cxr train``: the documented multi-process launch works as written.

Two CPU processes (gloo) train one epoch of a tiny model; rank 0 writes the run folder and
prints the summary once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .._runs import tiny_train_argv, write_image_table

pytestmark = pytest.mark.slow


def test_torchrun_no_python_cxr_train(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "torchrun").exists() or not (bin_dir / "cxr").exists():
        pytest.skip("torchrun and cxr are not installed next to this Python")
    write_image_table(tmp_path)
    command = [
        "torchrun", "--nproc-per-node", "2", "--no-python",
        "cxr", "train", *tiny_train_argv("t.csv", ".", "run"),
    ]  # fmt: skip
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "OMP_NUM_THREADS": "1",
    }
    assert shutil.which("cxr", path=env["PATH"])
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("finished 1 epochs") == 1  # only rank 0 reports
    assert {"config.yaml", "model.safetensors", "metrics.csv"} <= {
        p.name for p in (tmp_path / "run").iterdir()
    }
