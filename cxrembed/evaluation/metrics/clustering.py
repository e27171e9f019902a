"""Clustering agreement: k-means on the embeddings against the labels (NMI, AMI).

As pytorch-metric-learning does, k-means gets as many clusters as there are classes; here
it runs on the L2-normalised embeddings (cosine geometry) with a fixed seed. Multi-label rows
count each distinct set of findings as one class. With a single class the scores say nothing
and are NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from cxrembed._vectors import as_vectors, normalise
from cxrembed.errors import EvaluationInputError
from cxrembed.evaluation.metrics.relevance import label_sets

__all__ = ["clustering_metrics"]


def clustering_metrics(
    embeddings: Any, labels: Any, *, query_mask: Any = None, seed: int = 0
) -> dict[str, float]:
    """NMI and AMI between seeded k-means clusters and the label classes.

    Parameters
    ----------
    embeddings : array-like, shape (N, D)
    labels : array-like, shape (N,) or (N, C)
        Classes, or 0/1 findings (each distinct combination is a class).
    query_mask : bool array-like, shape (N,), optional
        Rows to cluster (default: all).
    seed : int
        k-means seed.

    Returns
    -------
    dict
        ``NMI``, ``AMI`` (pytorch-metric-learning's key names) and ``n_classes``.

    Examples
    --------
    >>> x = [[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]]
    >>> clustering_metrics(x, ["a", "a", "b", "b"])["NMI"]
    1.0
    """
    x = normalise(
        as_vectors(embeddings, name="embeddings", error=EvaluationInputError),
        name="embeddings",
        error=EvaluationInputError,
    )
    sets = label_sets(labels).sets
    if len(sets) != len(x):
        raise EvaluationInputError(
            f"{len(sets)} label rows were given for {len(x)} embeddings; expected one per row"
        )
    if query_mask is not None:
        mask = np.asarray(query_mask)
        if mask.dtype != bool or mask.shape != (len(x),):
            raise EvaluationInputError(
                f"query_mask must be a boolean array of length {len(x)}; got dtype {mask.dtype} "
                f"and shape {mask.shape}"
            )
        x, sets = x[mask], sets[mask]
    classes = np.unique(sets, axis=0, return_inverse=True)[1].reshape(-1)
    n_classes = int(classes.max()) + 1 if len(classes) else 0
    if n_classes < 2:
        return {"NMI": float("nan"), "AMI": float("nan"), "n_classes": float(n_classes)}
    clusters = KMeans(n_clusters=n_classes, n_init=10, random_state=seed).fit_predict(x)
    return {
        "NMI": float(normalized_mutual_info_score(classes, clusters)),
        "AMI": float(adjusted_mutual_info_score(classes, clusters)),
        "n_classes": float(n_classes),
    }
