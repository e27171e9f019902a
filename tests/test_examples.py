"""The scripts in examples/ run as their docstrings and the README say, on small fixture
data in the same layout as the real collections (the real data is opt-in: see the
benchmarks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests._readme import ROOT

EXAMPLE = ROOT / "examples" / "covid_retrieval.py"


def _public_collection(root: Path, n: int = 40) -> Path:
    """The public COVID-19 image data collection layout: metadata.csv + images/."""
    from tests.cxrembed._runs import write_pngs

    rng = np.random.default_rng(0)
    names = [f"img{i:03d}.png" for i in range(n)]
    write_pngs(root / "images", names, size=48)
    quarter = n // 4
    pd.DataFrame(
        {
            "patientid": [f"p{i // 2}" for i in range(n)],
            "finding": [
                "Pneumonia/Viral/COVID-19",
                "Pneumonia/Bacterial",
                "No Finding",
                "Pneumonia/Viral/COVID-19",
            ]
            * quarter,
            "folder": "images",
            "filename": names,
            "modality": "X-ray",
            "view": ["PA", "AP"] * (n // 2),
            "clinical_notes": [
                "Fever and cough. Bilateral opacities.",
                "Right lower lobe consolidation, pneumonia.",
                "",
                "No pleural effusion. Mild cardiomegaly.",
            ]
            * quarter,
            "intubated": ["Y", "N", "N", "Y"] * quarter,
            "survival": "Y",
            "went_icu": "N",
            "age": rng.integers(20, 90, n),
            "sex": rng.choice(["M", "F"], n),
            "temperature": rng.normal(38, 1, n).round(1),
            "pO2_saturation": rng.normal(92, 4, n).round(0),
        }
    ).to_csv(root / "metadata.csv", index=False)
    return root


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], cwd=cwd, capture_output=True, text=True, timeout=900
    )


def test_covid_retrieval_runs_the_whole_chain_on_the_public_layout(tmp_path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("faiss")
    data = _public_collection(tmp_path / "covid-chestxray-dataset")
    done = _run(str(data), "--out", "out", "--epochs", "1", "--image-size", "32", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    for step in (
        "== cxr label",
        "== cxr train",
        "== cxr embed",
        "== cxr search",
        "== cxr evaluate",
        "== cxr predict-outcome",
    ):
        assert step in done.stdout
    assert "public layout: 40 frontal X-rays of 20 patients" in done.stdout
    assert (out / "evaluation" / "metrics.md").is_file()
    assert (out / "search_1.png").is_file() and (out / "search_2.png").is_file()
    assert (out / "intubation").is_dir()


def test_covid_retrieval_says_so_when_the_data_is_absent(tmp_path) -> None:
    """The docstring's command, where ../shared/data/cxr_dev does not exist."""
    done = _run("../shared/data/cxr_dev", "--out", "covid_out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "not found: nothing to run" in done.stdout
    assert not (tmp_path / "covid_out").exists()
