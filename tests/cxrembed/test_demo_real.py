"""The demo's real-image chain (on a small folder in the Kermany layout drawn here), the
subset maker behind ``data/kermany_demo`` (deterministic), and how the demo finds it."""

from __future__ import annotations

import hashlib
import importlib.util
import math
import sys
from pathlib import Path

import pandas as pd
import pytest

from cxrembed.collections.kermany import read_kermany_collection
from cxrembed.demo import real as demo_real
from cxrembed.demo.real import RealDemoSettings, find_demo_data, run_real_demo

from ._kermany import write_kermany

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_real_chain_trains_embeds_searches_and_evaluates(tmp_path):
    data = tmp_path / "data"
    write_kermany(data, 36, size=32)
    lines: list[str] = []
    settings = RealDemoSettings(
        data=data, image_size=32, epochs=2, k=3, bootstrap=50, progress=False
    )
    result = run_real_demo(tmp_path / "out", settings, echo=lines.append)
    text = "\n".join(lines)
    assert "CC BY 4.0" in text and "cxr evaluate" in text
    assert (result.run_dir / "model.safetensors").is_file()
    assert (result.index / "index.json").is_file()
    assert len(result.searches) == 2 and all(g.stat().st_size > 0 for g in result.grids)
    for frame in result.searches:
        assert len(frame) == 3 and frame["similarity"].is_monotonic_decreasing
        assert not any(frame.attrs["query"].endswith(i) for i in frame["id"])  # left out
    assert list(result.scores) == [
        "trained (cxr train defaults)",
        "same network, untrained",
        "raw pixels (32 px)",
    ]
    for table in result.scores.values():
        assert all(0 <= v <= 1 for v in table["value"] if math.isfinite(v))
    assert "| pneumonia vote AUROC (k=10) |" in text


def test_find_demo_data_prefers_the_environment_then_the_tree(tmp_path, monkeypatch):
    monkeypatch.setenv(demo_real.DEMO_DATA_ENV, str(tmp_path))
    monkeypatch.setattr(demo_real, "_IN_TREE", tmp_path / "nothing")
    assert find_demo_data() is None
    write_kermany(tmp_path, 3)
    assert find_demo_data() == tmp_path
    monkeypatch.delenv(demo_real.DEMO_DATA_ENV)
    assert find_demo_data() is None


def test_the_shipped_subset_is_found_in_a_clone_and_small():
    folder = ROOT / "data" / "kermany_demo"
    if not (folder / "labels.csv").is_file():
        pytest.skip("data/kermany_demo not made yet")
    collection = read_kermany_collection(folder)
    assert collection.excluded.empty and len(collection.table) >= 1000
    assert set(collection.table["split"]) == {"train", "test"}
    train = set(collection.table.loc[collection.table["split"] == "train", "patient_id"])
    test = set(collection.table.loc[collection.table["split"] == "test", "patient_id"])
    assert not train & test
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) <= 5_000_000
    assert (ROOT / "NOTICE").read_text().count("CC BY 4.0") >= 1
    assert "doi:10.17632/rscbjbr9sj.2" in (folder / "README.md").read_text()


def _maker():
    spec = importlib.util.spec_from_file_location(
        "make_demo_subset", ROOT / "benchmarks" / "make_demo_subset.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_demo_subset"] = module
    spec.loader.exec_module(module)
    return module


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_subset_maker_is_deterministic_patient_disjoint_and_proportional(tmp_path):
    source = tmp_path / "source"
    write_kermany(source, 60, size=48, split=False, source=True)
    maker = _maker()
    assert (
        maker.main(
            [
                "--source",
                str(source),
                "--out",
                str(tmp_path / "a"),
                "--images",
                "40",
                "--size",
                "16",
            ]
        )
        == 0
    )
    assert (
        maker.main(
            [
                "--source",
                str(source),
                "--out",
                str(tmp_path / "b"),
                "--images",
                "40",
                "--size",
                "16",
            ]
        )
        == 0
    )
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    labels = pd.read_csv(tmp_path / "a" / "labels.csv")
    assert 35 <= len(labels) <= 48
    assert list(labels.columns) == [
        "image",
        "label",
        "subtype",
        "patient_id",
        "split",
        "source_image",
    ]
    sides = labels.groupby("patient_id")["split"].nunique()
    assert (sides == 1).all()
    assert labels["subtype"].value_counts().min() >= 10
    subset = read_kermany_collection(tmp_path / "a")
    assert subset.excluded.empty
    from PIL import Image

    with Image.open(tmp_path / "a" / labels["image"].iloc[0]) as image:
        assert image.mode == "L" and image.size == (16, 16)
