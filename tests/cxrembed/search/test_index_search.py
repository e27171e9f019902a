"""Rows that approximate search leaves short (fewer than k hits) are searched again with
more cells: complete and accurate, with nothing rebuilt (no direct map, no copy of the
vectors), and the other rows untouched."""

from __future__ import annotations

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from cxrembed.search.index import VectorIndex  # noqa: E402
from cxrembed.search.index_search import (  # noqa: E402
    complete,
    numpy_method,
    numpy_search,
    search_params,
)

from .test_index import clustered, exact_topk, recall, unit  # noqa: E402


@pytest.fixture(scope="module")
def sparse_cells():
    """An IVF index with a few near-empty cells, and queries aimed at them (their centroids)."""
    x, q = clustered(20_000, 16, 60, seed=40, queries=500)
    index = VectorIndex.build(x, np.arange(len(x)), kind="ivf", params={"nlist": 256, "nprobe": 1})
    ivf = faiss.extract_index_ivf(index._index)
    sizes = np.array([ivf.invlists.list_size(c) for c in range(ivf.nlist)])
    sparse = np.flatnonzero(sizes < 10)  # so k=10 leaves queries aimed at them short
    assert len(sparse) >= 2
    centroids = unit(numpy_method(ivf.quantizer, "reconstruct_n")(0, ivf.nlist)[sparse])
    return x, np.vstack([q, centroids]), index, len(sparse)


def test_raw_faiss_leaves_rows_short_and_the_index_completes_them(sparse_cells) -> None:
    x, q, index, aimed = sparse_cells
    params = search_params("ivf", index.params, 10)
    raw_scores, raw = numpy_search(index._index)(q, 10, params=params)
    short = (raw < 0).any(axis=1)
    assert short[-aimed:].all() and short.sum() < 20  # the aimed queries (and few others)
    scores, found = index.search(q, k=10)
    assert (found >= 0).all() and all(len(set(r)) == 10 for r in found.tolist())
    truth = exact_topk(x, q, 10)
    assert recall(found[short], truth[short]) >= 0.95
    assert (found[~short] == index.ids[raw[~short]]).all()  # full rows: FAISS's own answer
    np.testing.assert_array_equal(scores[~short], raw_scores[~short])
    assert faiss.extract_index_ivf(index._index).direct_map.type == 0  # nothing rebuilt


def test_complete_widens_until_full_then_once_more(sparse_cells) -> None:
    """k close to a cell's size: widening stops one step after every row is full."""
    x, q, index, aimed = sparse_cells
    settings = {**index.params, "nprobe": 1}
    _, rows = complete(index._index, "ivf", settings, q[-aimed:], 200)
    assert (rows >= 0).all()
    assert recall(index.ids[rows], exact_topk(x, q[-aimed:], 200)) >= 0.9


def test_short_rows_of_a_compressed_index_are_completed() -> None:
    x, q = clustered(12_000, 32, 100, seed=41, queries=50)
    index = VectorIndex.build(
        x, np.arange(len(x)), kind="ivfpq", params={"m": 4, "nlist": 256, "nprobe": 1}, n_threads=1
    )
    _, found = index.search(q, k=60)  # a shortlist of 600 > most cells at nprobe 1
    assert (found >= 0).all() and all(len(set(r)) == 60 for r in found.tolist())
    assert recall(found, exact_topk(x, q, 60)) >= 0.9
