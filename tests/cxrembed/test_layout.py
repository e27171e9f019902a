"""The package layout holds: training does not depend on inference, and cxrembed keeps its
modules in concept packages (a handful of flat modules only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLAT = {"__init__", "errors", "cli", "_deps", "_vectors", "demo"}


def test_only_a_few_flat_modules() -> None:
    flat = {p.stem for p in (ROOT / "cxrembed").glob("*.py")}
    assert flat <= FLAT, sorted(flat - FLAT)


def test_training_never_imports_inference() -> None:
    pytest.importorskip("torch")
    code = (
        "import sys, cxrembed.train.trainer, cxrembed.train.loop, cxrembed.train.data;"
        "print(sorted(m for m in sys.modules if m.startswith('cxrembed.inference')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_gallery_names_still_import_from_gallery() -> None:
    pytest.importorskip("faiss")
    from cxrembed.search import embed_and_index, gallery, metadata

    assert gallery.embed_and_index is embed_and_index.embed_and_index
    assert gallery.join_metadata is metadata.join_metadata
    from cxrembed.embeddings.sources import read_sources
    from cxrembed.inference.embed import read_sources as old

    assert old is read_sources


def test_label_sets_names_one_thing() -> None:
    pytest.importorskip("torch")
    from cxrembed.evaluation import metrics
    from cxrembed.evaluation.metrics.relevance import RelevanceLabels
    from cxrembed.losses import LabelSets

    assert "LabelSets" not in metrics.__all__ and LabelSets.__module__ == "cxrembed.losses.pairs"
    with pytest.warns(DeprecationWarning, match="RelevanceLabels"):
        assert metrics.LabelSets is RelevanceLabels
