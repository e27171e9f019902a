"""Tests for cxrembed.evaluation.embedding_map: projection, seeded subsampling and the PNG."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from cxrembed.errors import EvaluationInputError
from cxrembed.evaluation.embedding_map import embedding_map, plot_embedding_map


def three_clusters(per: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 16) * 4.0
    labels = np.repeat(["a", "b", "c"], per)
    return centres[np.repeat(np.arange(3), per)] + rng.normal(size=(3 * per, 16)), labels


def _cluster_separation(coords: np.ndarray, labels: np.ndarray) -> float:
    """Mean distance between class centres over mean distance to own class centre."""
    centres = np.stack([coords[labels == c].mean(axis=0) for c in np.unique(labels)])
    within = np.mean(
        [
            np.linalg.norm(coords[labels == c] - centres[i], axis=1).mean()
            for i, c in enumerate(np.unique(labels))
        ]
    )
    between = np.mean(
        [np.linalg.norm(a - b) for i, a in enumerate(centres) for b in centres[i + 1 :]]
    )
    return float(between / within)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_map_keeps_clusters_apart(method: str) -> None:
    x, labels = three_clusters(20)
    emap = embedding_map(x, method=method, seed=0)
    assert emap.coords.shape == (60, 2) and emap.method == method and emap.total == 60
    assert emap.rows.tolist() == list(range(60))
    assert _cluster_separation(emap.coords, labels) > 3.0


def test_auto_method_and_umap_availability() -> None:
    x, _ = three_clusters(10)
    has_umap = importlib.util.find_spec("umap") is not None
    assert embedding_map(x, method="auto").method == ("umap" if has_umap else "tsne")
    if not has_umap:
        with pytest.raises(EvaluationInputError, match="pip install umap-learn"):
            embedding_map(x, method="umap")


def test_subsample_is_seeded_and_sorted() -> None:
    x, _ = three_clusters(100)
    a = embedding_map(x, method="pca", max_points=50, seed=1)
    b = embedding_map(x, method="pca", max_points=50, seed=1)
    c = embedding_map(x, method="pca", max_points=50, seed=2)
    assert len(a.rows) == 50 and a.total == 300
    assert (np.diff(a.rows) > 0).all()
    assert (a.rows == b.rows).all() and not (a.rows == c.rows).all()


def test_png_is_written_atomically(tmp_path) -> None:
    x, labels = three_clusters(10)
    emap = embedding_map(x, method="pca")
    path = plot_embedding_map(emap, labels, tmp_path / "sub" / "map.png", title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["map.png"]  # no temp file left


def test_many_labels_are_grouped_not_hidden(tmp_path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 8))
    labels = [f"class{i % 30}" for i in range(120)]
    emap = embedding_map(x, method="pca")
    assert plot_embedding_map(emap, labels, tmp_path / "m.png").stat().st_size > 1000


def test_bad_input() -> None:
    x, labels = three_clusters(5)
    emap = embedding_map(x, method="pca")
    with pytest.raises(EvaluationInputError, match="14 labels were given for a map of 15"):
        plot_embedding_map(emap, labels[:14], "unused.png")
    with pytest.raises(EvaluationInputError, match="method must be one of"):
        embedding_map(x, method="mds")
    with pytest.raises(EvaluationInputError, match="at least 3 embeddings"):
        embedding_map(x[:2], method="pca")
    bad = x.copy()
    bad[4, 2] = np.nan
    with pytest.raises(EvaluationInputError, match="row 4 contains NaN"):
        embedding_map(bad, method="pca")
