"""The compressed index (IVF-PQ) and memory budgets: sizes predicted exactly, ``auto``
choosing the kind that fits, recall with and without exact re-ranking, and the re-ranking
vectors saved, memory-mapped and checked on load."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from cxrembed.errors import IndexFileError, VectorInputError  # noqa: E402
from cxrembed.search import index_build  # noqa: E402
from cxrembed.search.index import VectorIndex  # noqa: E402
from cxrembed.search.index_build import resolve  # noqa: E402
from cxrembed.search.sizing import (  # noqa: E402
    bytes_per_vector,
    index_bytes,
    parse_memory,
    pq_m_choices,
)

from .test_index import clustered, exact_topk, recall  # noqa: E402

N, D = 12_000, 32  # enough to train 256-centroid PQ codebooks; 8-d sub-vectors train fast


@pytest.fixture(scope="module")
def data():
    return clustered(N, D, 120, seed=21, queries=300)


@pytest.fixture(scope="module")
def pq(data):
    x, _ = data
    # 64 cells of ~190 vectors: more than the k * 10 shortlist, as at scale
    return VectorIndex.build(
        x, np.arange(N), kind="ivfpq", params={"m": 4, "nlist": 64}, n_threads=1
    )


# ----------------------------------------------------------------- sizes
def test_parse_memory_units_and_errors() -> None:
    assert parse_memory("4GB") == 4 * 10**9
    assert parse_memory("512 MiB") == 512 * 2**20
    assert parse_memory("1.5gib") == 3 * 2**29
    assert parse_memory(2048) == 2048 and parse_memory(None) is None
    for bad in ("4XB", "lots", "-1GB", 0, True, "0.1B"):
        with pytest.raises(VectorInputError, match="max_memory must be a"):
            parse_memory(bad)


def test_bytes_per_vector_rules() -> None:
    assert bytes_per_vector("exact", {}, 128) == 512
    assert bytes_per_vector("ivf", {}, 128) == 520
    assert bytes_per_vector("ivfpq", {"m": 32}, 128) == 40
    assert pq_m_choices(128) == [64, 32, 16, 8, 4, 2, 1]
    assert pq_m_choices(100)[:3] == [50, 25, 20]


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("exact", None),
        ("ivf", {"nlist": 64, "nprobe": 2}),
        ("ivfpq", {"m": 4, "nlist": 64}),
        ("ivfpq", {"m": 4, "nlist": 32, "opq": True}),
    ],
)
@pytest.mark.filterwarnings("ignore:approximate ivfpq index reaches")
def test_predicted_size_is_the_faiss_size(data, kind, params, monkeypatch) -> None:
    """Sizes come from the code size, exactly: FAISS's serialised index differs by its
    headers only (a few hundred bytes, whatever the count)."""
    x, _ = data
    monkeypatch.setattr(index_build, "_OPQ_ITERATIONS", 1)  # the size does not depend on it
    sizes = []
    for n in (N - 2000, N)[1 if params and params.get("opq") else 0 :]:
        index = VectorIndex.build(
            x[:n], np.arange(n), kind=kind, params=params, n_threads=1, rerank=False
        )
        serialised = faiss.serialize_index(index._index).nbytes
        predicted = index_bytes(index.kind, index.params, n, D)
        assert 0 <= serialised - predicted < 1024
        assert index.info["memory_bytes"] == predicted + n * 8  # + the int64 ids
        sizes.append(serialised)
    if len(sizes) == 2:
        assert (sizes[1] - sizes[0]) / 2000 == bytes_per_vector(kind, index.params, D)


# ----------------------------------------------------------------- auto and budgets
def test_auto_without_budget_is_unchanged() -> None:
    assert resolve("auto", None, 60_000, dim=128)[0] == "ivf"
    assert resolve("auto", None, 60_000, dim=128, budget=10**9)[0] == "ivf"


def test_auto_turns_to_pq_when_full_vectors_do_not_fit() -> None:
    count, dim, ids = 1_000_000, 128, 8_000_000
    kind, settings = resolve(
        "auto", None, count, dim=dim, budget=parse_memory("4GB"), extra_bytes=ids
    )
    assert kind == "ivf"  # 520 MB fits
    kind, settings = resolve(
        "auto", None, count, dim=dim, budget=parse_memory("100MB"), extra_bytes=ids
    )
    assert kind == "ivfpq" and settings["m"] == 64  # 72 B/vector + 8 B ids = 80 MB
    assert index_bytes(kind, settings, count, dim) + ids <= 100 * 10**6
    kind, settings = resolve(
        "auto", None, count, dim=dim, budget=parse_memory("50MB"), extra_bytes=ids
    )
    assert settings["m"] == 32  # the largest code that fits
    with pytest.raises(VectorInputError, match=r"needs .*more than max_memory=5\.0 MB.*ivfpq, m=1"):
        resolve("auto", None, count, dim=dim, budget=parse_memory("5MB"), extra_bytes=ids)
    with pytest.raises(VectorInputError, match="kind='auto' picks an ivfpq index that fits"):
        resolve("ivf", None, count, dim=dim, budget=parse_memory("100MB"), extra_bytes=ids)


def test_build_within_a_budget(data) -> None:
    x, q = data
    budget = index_bytes("ivfpq", {"m": 4, "nlist": 128}, N, D) + N * 8 + 1000
    index = VectorIndex.build(
        x, np.arange(N), max_memory=budget, params={"nlist": 128}, n_threads=1
    )
    assert index.kind == "ivfpq" and index.params["m"] == 4  # m=8 would not fit
    assert index.info["memory_bytes"] <= budget == index.info["max_memory"]
    assert index.rerank  # on by default for the compressed kind
    _, found = index.search(q, k=10)
    assert recall(found, exact_topk(x, q, 10)) >= 0.95
    roomy = VectorIndex.build(x, np.arange(N), max_memory="1GB")
    assert roomy.kind == "exact" and not roomy.rerank  # fits in full: as before


# ----------------------------------------------------------------- recall and re-ranking
def test_pq_recall_with_and_without_reranking(data, pq) -> None:
    x, q = data
    truth = exact_topk(x, q, 10)
    assert pq.kind == "ivfpq" and pq.rerank and pq.info["bytes_per_vector"] == 12
    scores, found = pq.search(q, k=10)
    with_rerank = recall(found, truth)
    assert with_rerank >= 0.95 and abs(with_rerank - pq.recall_at_10) < 0.03
    expected = np.take_along_axis(q @ x.T, found, axis=1)
    np.testing.assert_allclose(scores, expected, atol=1e-5)  # exact cosine, not PQ's estimate
    assert (np.diff(scores, axis=1) <= 1e-7).all()
    _, coarse = pq.search(q, k=10, rerank=False)
    assert recall(coarse, truth) < with_rerank - 0.2  # 4-byte codes alone lose neighbours


def test_shortlist_grows_when_the_default_misses_the_target(data) -> None:
    x, q = data
    strict = VectorIndex.build(
        x,
        np.arange(N),
        kind="ivfpq",
        target_recall=0.9995,
        params={"m": 4, "nlist": 64},
        n_threads=1,
    )
    assert strict.params["rerank_factor"] in (20, 40)
    _, found = strict.search(q, k=10)
    assert recall(found, exact_topk(x, q, 10)) >= 0.98
    with pytest.warns(UserWarning, match="k x 5 shortlist misses neighbours"):
        given = VectorIndex.build(
            x,
            np.arange(N),
            kind="ivfpq",
            target_recall=0.9995,
            params={"m": 4, "nlist": 64, "rerank_factor": 5},
            n_threads=1,
        )
    assert given.params["rerank_factor"] == 5  # a given shortlist is kept


def test_pq_without_reranking_warns_and_keeps_no_vectors(data) -> None:
    x, _ = data
    with pytest.warns(UserWarning, match="codes lose detail. Build with rerank=True"):
        index = VectorIndex.build(
            x, np.arange(N), kind="ivfpq", params={"m": 4}, rerank=False, n_threads=1
        )
    assert not index.rerank and index.recall_at_10 < 0.95
    with pytest.raises(VectorInputError, match="keeps no full vectors to re-rank"):
        index.search(x[:2], k=3, rerank=True)
    exact = VectorIndex.build(x[:500], np.arange(500), rerank=True)
    assert exact.kind == "exact" and not exact.rerank  # full vectors: nothing to re-rank


def test_opq_rotation(data, monkeypatch) -> None:
    x, q = data
    monkeypatch.setattr(index_build, "_OPQ_ITERATIONS", 3)  # FAISS's 50 take ~30 s here
    index = VectorIndex.build(
        x[:10_000],
        np.arange(10_000),
        kind="ivfpq",
        params={"m": 4, "nlist": 32, "opq": True},
        n_threads=1,
    )
    assert index.params["opq"] is True
    assert isinstance(index._index, faiss.IndexPreTransform)
    assert faiss.downcast_VectorTransform(index._index.chain.at(0)).niter == 3
    _, found = index.search(q, k=10)
    assert recall(found, exact_topk(x[:10_000], q, 10)) >= 0.95


def test_bad_pq_parameters(data) -> None:
    x, _ = data
    with pytest.raises(VectorInputError, match="m=5 must divide the 32 dimensions"):
        VectorIndex.build(x, np.arange(N), kind="ivfpq", params={"m": 5})
    with pytest.raises(VectorInputError, match="'opq' must be True or False"):
        VectorIndex.build(x, np.arange(N), kind="ivfpq", params={"opq": 1})
    with pytest.raises(VectorInputError, match="needs at least 9,984 training vectors"):
        VectorIndex.build(x[:5000], np.arange(5000), kind="ivfpq")
    with pytest.raises(VectorInputError, match="unknown parameters \\['m'\\]"):
        VectorIndex.build(x, np.arange(N), kind="ivf", params={"m": 4})


# ----------------------------------------------------------------- save / load
def test_reranking_vectors_saved_and_memory_mapped(tmp_path, data, pq) -> None:
    x, q = data
    folder = pq.save(tmp_path / "pq")
    assert (folder / "vectors.npy").stat().st_size >= N * D * 4
    loaded = VectorIndex.load(folder)
    assert loaded._vectors.is_mapped  # no budget given: left on disk
    s1, i1 = pq.search(q, k=10)
    s2, i2 = loaded.search(q, k=10)
    assert (i1 == i2).all() and np.allclose(s1, s2)
    info = json.loads((folder / "index.json").read_text())
    assert info["rerank"] is True and info["files"]["vectors.npy"] > 0


def test_reranking_vectors_in_ram_when_the_budget_holds_them(tmp_path, data) -> None:
    x, q = data
    index = VectorIndex.build(
        x, np.arange(N), kind="ivfpq", params={"m": 4}, n_threads=1, max_memory="10MB"
    )
    loaded = VectorIndex.load(index.save(tmp_path / "pq"))
    assert not loaded._vectors.is_mapped and loaded._vectors.shape == (N, D)
    assert (loaded.search(q, k=5)[1] == index.search(q, k=5)[1]).all()


def test_tampered_or_stale_vectors_file(tmp_path, data, pq) -> None:
    x, _ = data
    folder = pq.save(tmp_path / "pq")
    size = (folder / "vectors.npy").stat().st_size
    with open(folder / "vectors.npy", "wb") as fh:  # same size, wrong shape
        np.save(fh, np.zeros((N * 2, D // 2), dtype=np.float32))
    assert (folder / "vectors.npy").stat().st_size == size
    with pytest.raises(IndexFileError, match="vectors.npy does not match the checksum"):
        VectorIndex.load(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        VectorIndex.build(
            x, np.arange(N), kind="ivfpq", params={"m": 4}, rerank=False, n_threads=1
        ).save(folder)
    assert not (folder / "vectors.npy").exists()  # no stale file next to a codes-only index
    assert VectorIndex.load(folder)._vectors is None
