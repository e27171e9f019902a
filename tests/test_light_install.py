"""The light install (no extras) emulated: every optional module blocked in a subprocess.

``cxr label`` and ``cxr validate`` work with the base dependencies alone; what needs an
extra says which one (``plots``, ``parquet``, ``embed``). The real install and its size are
measured by ``benchmarks/light_install.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

# Modules only the extras install (top-level names).
OPTIONAL = (
    "torch",
    "torchvision",
    "faiss",
    "pydicom",
    "PIL",
    "safetensors",
    "pylibjpeg",
    "scipy",
    "sklearn",
    "matplotlib",
    "pyarrow",
    "fastparquet",
)
BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
from cxrlabel.cli import main
main({args!r})
"""


def _cxr(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    code = BLOCK.format(blocked=OPTIONAL, args=args)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_base_dependencies_are_the_labeller_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {
        dep.split(">")[0].split("<")[0].split("=")[0].strip() for dep in project["dependencies"]
    }
    assert base == {"spacy", "negspacy", "pandas", "numpy", "pyyaml", "typer", "rich", "tqdm"}
    extras = project["optional-dependencies"]
    assert extras["plots"] == ["matplotlib>=3.7"] and extras["parquet"] == ["pyarrow>=14"]
    embed = " ".join(extras["embed"])
    assert all(name in embed for name in ("matplotlib", "pyarrow", "scikit-learn", "torch"))


def test_label_and_validate_without_any_extra(tmp_path):
    pd.DataFrame(
        {"uid": ["a", "b", "c"], "text": ["No effusion.", "Mild edema.", "Possible pneumonia."]}
    ).to_csv(tmp_path / "r.csv", index=False)
    labelled = _cxr(["label", "r.csv", "-o", "labels.csv", "-q"], tmp_path)
    assert labelled.returncode == 0, labelled.stderr
    pd.DataFrame({"uid": ["a", "b", "c"], "Edema": [0, 1, 0], "Pneumonia": [0, 0, 1]}).to_csv(
        tmp_path / "gold.csv", index=False
    )
    validated = _cxr(
        ["validate", "labels.csv", "gold.csv", "-o", "v", "--bootstrap", "10"], tmp_path
    )
    assert validated.returncode == 0, validated.stderr
    written = {p.name for p in (tmp_path / "v").iterdir()}
    tables = "metrics.md metrics.csv metrics.json noise.json errors.csv missing_ids.csv".split()
    assert set(tables) <= written and "f1.png" not in written
    assert "f1.png not written" in validated.stderr
    assert 'pip install "cxrkit[plots]"' in validated.stderr
    assert "| Edema |" in validated.stdout


def test_what_needs_an_extra_names_it(tmp_path):
    pd.DataFrame({"id": ["a"], "text": ["No effusion."]}).to_csv(tmp_path / "r.csv", index=False)
    (tmp_path / "r.parquet").write_bytes(b"PAR1")
    parquet_out = _cxr(["label", "r.csv", "-o", "labels.parquet"], tmp_path)
    parquet_in = _cxr(["label", "r.parquet", "-o", "labels.csv"], tmp_path)
    image = _cxr(
        ["train", "--labels", "r.csv", "-o", "run", "--images", ".", "--label-col", "text"],
        tmp_path,
    )
    helped = _cxr(["--help"], tmp_path)
    for done, extra in ((parquet_out, "parquet"), (parquet_in, "parquet"), (image, "embed")):
        assert done.returncode == 1, done.stderr
        assert f'pip install "cxrkit[{extra}]"' in done.stderr
        assert "Traceback" not in done.stderr
    assert helped.returncode == 0 and "train" in helped.stdout and "label" in helped.stdout
