"""The end-to-end demo chain on a very small setting: every stage writes outputs that make
sense (labels per image, a run, one embedding per image, an index, neighbours, metrics)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from cxrembed.collections.synthetic import TRUTH_COLUMNS
from cxrembed.demo import DemoSettings, run_demo
from cxrembed.embeddings.embedding_set import EmbeddingSet


@pytest.mark.slow
def test_demo_chain_small(tmp_path):
    lines: list[str] = []
    settings = DemoSettings(
        n_images=40,
        file_size=32,
        image_size=32,
        epochs=1,
        batch_size=16,
        embedding_dim=16,
        k=3,
        openi=False,
        progress=False,
    )
    result = run_demo(tmp_path, settings, echo=lines.append)
    text = "\n".join(lines)
    assert "NOT real radiographs" in text and "synthetic drawings" in text

    truth = pd.read_csv(result.synthetic.table, dtype={"id": str})
    mined = pd.read_csv(result.mined_labels, dtype={"id": str})
    assert mined["id"].tolist() == truth["id"].tolist()  # one labelled row per report
    assert set(TRUTH_COLUMNS) <= set(mined.columns) and (mined["status"] == "ok").all()
    # with the default label noise most mined positives are true positives
    agree = ((mined["Cardiomegaly"] == 1) == (truth["Cardiomegaly"] == 1)).mean()
    assert agree > 0.8

    assert (result.run_dir / "model.safetensors").is_file()
    emb = EmbeddingSet.load(result.embeddings)
    assert sorted(emb.ids) == sorted(truth["id"])
    assert (result.index / "index.json").is_file()

    assert len(result.searches) == 2 and all(p.stat().st_size > 0 for p in result.grids)
    for frame in result.searches:
        assert len(frame) == 3
        assert frame["id"].iloc[0] == frame.attrs["query"].rsplit("/", 1)[-1][:-4]  # itself
        assert frame["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-3)
        assert frame["similarity"].is_monotonic_decreasing
        assert {"Cardiomegaly", "evidence"} <= set(frame.columns)

    metrics = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())["metrics"]
    assert 0.0 <= metrics["mean_average_precision_at_r"] <= 1.0
    assert (tmp_path / "evaluation" / "embedding_map.png").is_file()
    assert set(result.trained) == set(result.untrained)
    assert all(math.isfinite(v) and 0 <= v <= 1 for v in result.trained.values())
