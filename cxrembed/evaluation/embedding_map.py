"""A 2-D map of an embedding, coloured by label, saved as PNG (or SVG / PDF).

The map is UMAP when the ``umap-learn`` package is installed, else t-SNE (scikit-learn),
both on cosine geometry and seeded; PCA is available as a fast, deterministic fallback. Large
sets are subsampled (seeded) to ``max_points`` and the title says how many points are shown.
Neighbourhoods in such maps are meaningful, distances between far clusters are not.
"""

from __future__ import annotations

import importlib.util
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cxrembed._vectors import as_vectors, normalise
from cxrembed.errors import EvaluationInputError
from cxrlabel.figures import FigureStyle, new_figure, save_figure

__all__ = ["EmbeddingMap", "embedding_map", "plot_embedding_map", "METHODS"]

METHODS: tuple[str, ...] = ("auto", "umap", "tsne", "pca")
_MAX_COLOURS = 20


@dataclass(frozen=True)
class EmbeddingMap:
    """2-D coordinates of (a sample of) the embeddings.

    Attributes
    ----------
    coords : numpy.ndarray
        float (M, 2).
    rows : numpy.ndarray
        int64 (M,) the embedding rows shown, increasing.
    total : int
        Number of embeddings before subsampling.
    method : str
        ``umap``, ``tsne`` or ``pca``.
    """

    coords: np.ndarray
    rows: np.ndarray
    total: int
    method: str


def embedding_map(
    embeddings: Any, *, method: str = "auto", max_points: int = 3000, seed: int = 0
) -> EmbeddingMap:
    """Project the embeddings to 2-D.

    Parameters
    ----------
    embeddings : array-like, shape (N, D)
    method : {"auto", "umap", "tsne", "pca"}
        ``auto``: UMAP when installed, else t-SNE.
    max_points : int
        Subsample (seeded) to at most this many rows.
    seed : int

    Examples
    --------
    >>> m = embedding_map(np.eye(5, 3) + 0.1, method="pca")
    >>> m.coords.shape, m.method
    ((5, 2), 'pca')
    """
    if method not in METHODS:
        raise EvaluationInputError(
            f"map method must be one of {', '.join(METHODS)}; got {method!r}"
        )
    if max_points < 3:
        raise EvaluationInputError(f"max_points must be at least 3; got {max_points}")
    x = normalise(
        as_vectors(embeddings, name="embeddings", error=EvaluationInputError),
        name="embeddings",
        error=EvaluationInputError,
    )
    if len(x) < 3:
        raise EvaluationInputError(f"a 2-D map needs at least 3 embeddings; got {len(x)}")
    total = len(x)
    rows = np.arange(total)
    if total > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(total, max_points, replace=False))
        x = x[rows]
    if method == "auto":
        method = "umap" if importlib.util.find_spec("umap") is not None else "tsne"
    if method == "umap" and importlib.util.find_spec("umap") is None:
        raise EvaluationInputError(
            "method='umap' needs the umap-learn package. Fix: pip install umap-learn, or use "
            "method='tsne'"
        )
    return EmbeddingMap(_project(x, method, seed), rows.astype(np.int64), total, method)


def _project(x: np.ndarray, method: str, seed: int) -> np.ndarray:
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "umap":
        import umap

        neighbours = min(15, len(x) - 1)
        return umap.UMAP(
            n_neighbors=neighbours, metric="cosine", random_state=seed, n_jobs=1
        ).fit_transform(x)
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, (len(x) - 1) / 3.0))
    return TSNE(
        n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed
    ).fit_transform(x)


def plot_embedding_map(
    emap: EmbeddingMap,
    labels: Sequence[Any],
    path: str | os.PathLike[str],
    *,
    title: str = "Embedding map",
    style: FigureStyle | None = None,
) -> Path:
    """Draw the map coloured by ``labels`` (one per embedding row) and write it atomically
    (PNG unless ``style`` or the suffix of ``path`` says SVG or PDF).

    More than 20 distinct labels: the 19 most frequent keep a colour and the rest are drawn
    grey as "other (N labels)", so no point is hidden.
    """
    if len(labels) != emap.total:
        raise EvaluationInputError(
            f"{len(labels)} labels were given for a map of {emap.total} embeddings; expected one "
            "label per embedding row"
        )
    names = [str(v) for v in np.asarray(labels, dtype=object)[emap.rows]]
    ranked = [name for name, _ in Counter(names).most_common()]
    has_other = len(ranked) > _MAX_COLOURS
    if has_other:
        kept = set(ranked[: _MAX_COLOURS - 1])
        other = f"other ({len(ranked) - len(kept)} labels)"
        names = [n if n in kept else other for n in names]
        ranked = ranked[: _MAX_COLOURS - 1] + [other]
    fig = new_figure(7.5, 6.0)
    ax = fig.add_subplot(1, 1, 1)
    palette = _palette(len(ranked), has_other)
    array = np.asarray(names, dtype=object)
    for colour, name in zip(palette, ranked, strict=True):
        points = emap.coords[array == name]
        ax.scatter(
            points[:, 0],
            points[:, 1],
            s=8,
            alpha=0.75,
            color=colour,
            label=f"{name} ({len(points)})",
            linewidths=0,
        )
    shown = (
        f"{len(emap.rows):,} of {emap.total:,} points"
        if len(emap.rows) < emap.total
        else f"{emap.total:,} points"
    )
    ax.set_title(f"{title} ({emap.method}, {shown})", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(
        fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False
    )
    fig.tight_layout()
    return save_figure(fig, path, style)


def _palette(count: int, has_other: bool) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    colours = [cmap(i) for i in range(count)]
    if has_other:
        colours[-1] = (0.6, 0.6, 0.6, 1.0)  # grey for "other"
    return colours
