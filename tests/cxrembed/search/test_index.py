"""Tests for cxrembed.search.index: exact search against a numpy reference, approximate recall
against exact search, save / load round trips and every bad-input message."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

faiss = pytest.importorskip("faiss")

from cxrembed.errors import (  # noqa: E402
    ConfigHashMismatchError,
    IndexFileError,
    VectorInputError,
)
from cxrembed.search.index import EXACT_MAX_COUNT, VectorIndex  # noqa: E402
from cxrembed.search.index_build import default_nlist, resolve  # noqa: E402


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, d: int, clusters: int, seed: int, queries: int = 0):
    """The benchmark's mixture at small scale: unit centres + N(0, 0.06^2) noise."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(clusters, d)))

    def draw(m: int) -> np.ndarray:
        return unit(centres[rng.integers(0, clusters, m)] + rng.normal(0, 0.06, (m, d)))

    return draw(n), draw(queries)


def exact_topk(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    sims = q.astype(np.float64) @ x.astype(np.float64).T
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth, strict=True)])
    )


@pytest.fixture(scope="module")
def data20k():
    x, q = clustered(20_000, 32, 200, seed=0, queries=500)
    return x, q


# ----------------------------------------------------------------- exact
def test_exact_matches_numpy_reference() -> None:
    rng = np.random.default_rng(1)
    x = unit(rng.normal(size=(500, 24)))
    q = unit(rng.normal(size=(40, 24)))
    ids = [f"img{i:03d}" for i in range(500)]
    index = VectorIndex.build(x, ids)
    assert index.kind == "exact" and index.recall_at_10 is None
    scores, found = index.search(q, k=7)
    ref = exact_topk(x, q, 7)
    assert found.tolist() == np.asarray(ids)[ref].tolist()
    np.testing.assert_allclose(scores, np.take_along_axis(q @ x.T, ref, axis=1), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-7).all()  # decreasing similarity


def test_search_one_vector_and_batches_agree() -> None:
    rng = np.random.default_rng(2)
    x = unit(rng.normal(size=(300, 8)))
    index = VectorIndex.build(x, np.arange(300))
    _, one = index.search(x[5], k=3)
    assert one.shape == (1, 3) and one[0, 0] == 5 and one.dtype == np.int64
    _, batched = index.search(x[:50], k=3, batch_size=7)
    _, whole = index.search(x[:50], k=3)
    assert (batched == whole).all()


def test_auto_kind_by_size() -> None:
    assert resolve("auto", None, EXACT_MAX_COUNT - 1)[0] == "exact"
    kind, settings = resolve("auto", None, EXACT_MAX_COUNT)
    assert kind == "ivf" and settings["nlist"] == 512
    assert default_nlist(1_000_000) == 2048
    assert default_nlist(100) == 2  # at least 39 training points per cell


# ----------------------------------------------------------------- approximate
def test_ivf_recall_on_clustered_data(data20k) -> None:
    x, q = data20k
    index = VectorIndex.build(x, np.arange(len(x)), kind="ivf", seed=0)
    assert index.kind == "ivf" and index.params["nprobe"] >= 1
    assert index.recall_at_10 >= 0.95  # measured at build on a held-out sample
    _, found = index.search(q, k=10)
    measured = recall(found, exact_topk(x, q, 10))
    assert measured >= 0.95  # and it holds for new queries
    assert abs(measured - index.recall_at_10) < 0.02


def test_hnsw_recall_on_clustered_data() -> None:
    x, q = clustered(3000, 16, 50, seed=3, queries=200)
    index = VectorIndex.build(x, np.arange(len(x)), kind="hnsw", params={"M": 16})
    assert index.params["M"] == 16 and index.params["ef_search"] >= 16
    _, found = index.search(q, k=10)
    measured = recall(found, exact_topk(x, q, 10))
    assert measured >= 0.95
    # held-out queries: the stored estimate is honest (self-queries overstate HNSW recall)
    assert abs(measured - index.recall_at_10) < 0.03


def test_uniform_data_warns_and_reports_low_recall() -> None:
    rng = np.random.default_rng(4)
    x = unit(rng.normal(size=(8000, 32)))
    with pytest.warns(UserWarning, match="below the target"):
        index = VectorIndex.build(x, np.arange(len(x)), kind="ivf")
    assert index.recall_at_10 < 0.95
    assert index.params["nprobe"] == index.params["nlist"] // 16  # stopped at the cap


def test_given_nprobe_is_kept_and_measured(data20k) -> None:
    x, _ = data20k
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one candidate: no tuning, so no warning either
        index = VectorIndex.build(
            x, np.arange(len(x)), kind="ivf", params={"nlist": 64, "nprobe": 3}
        )
    assert index.params == {"nlist": 64, "nprobe": 3, "train_size": 4096}
    assert 0.0 < index.recall_at_10 <= 1.0


def test_small_training_set_warns_instead_of_printing(capfd) -> None:
    x, _ = clustered(1000, 8, 10, seed=12)
    with pytest.warns(UserWarning, match="nlist=64 trained on 1000 vectors"):
        VectorIndex.build(x, np.arange(1000), kind="ivf", params={"nlist": 64, "nprobe": 4})
    assert capfd.readouterr().err == ""  # FAISS printed nothing
    with pytest.raises(VectorInputError, match="needs at least 100 vectors"):
        VectorIndex.build(x[:50], np.arange(50), kind="hnsw")


def test_fewer_than_k_found_falls_back_to_exhaustive() -> None:
    x, q = clustered(2000, 16, 40, seed=5, queries=20)
    index = VectorIndex.build(x, np.arange(2000), kind="ivf", params={"nlist": 32, "nprobe": 1})
    scores, found = index.search(q, k=400)  # one cell holds ~60 vectors: IVF returns -1s
    assert (found >= 0).all()
    assert all(len(set(row)) == 400 for row in found.tolist())
    assert recall(found, exact_topk(x, q, 400)) > 0.99
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_n_threads_is_restored() -> None:
    before = faiss.omp_get_max_threads()
    rng = np.random.default_rng(6)
    x = unit(rng.normal(size=(100, 8)))
    VectorIndex.build(x, np.arange(100), n_threads=1).search(x, k=2, n_threads=1)
    assert faiss.omp_get_max_threads() == before


# ----------------------------------------------------------------- save / load
def test_save_load_round_trip(tmp_path, data20k) -> None:
    x, q = data20k
    x, q = x[:3000], q[:50]
    ids = [f"p{i}.png" for i in range(3000)]
    meta = pd.DataFrame({"age": np.arange(3000) % 90, "finding": ["COVID-19", "SARS"] * 1500})
    index = VectorIndex.build(x, ids, kind="ivf", config_hash="abc123", metadata=meta)
    folder = index.save(tmp_path / "idx")
    assert sorted(p.name for p in folder.iterdir()) == [
        "ids.json",
        "index.faiss",
        "index.json",
        "meta.parquet",
    ]
    info = json.loads((folder / "index.json").read_text())
    assert info["kind"] == "ivf" and info["count"] == 3000 and info["dim"] == 32
    assert info["metric"] == "inner_product" and info["config_hash"] == "abc123"
    assert info["recall_at_10"] == index.recall_at_10 and info["faiss_version"]
    loaded = VectorIndex.load(folder, config_hash="abc123")
    s1, i1 = index.search(q, k=5)
    s2, i2 = loaded.search(q, k=5)
    assert (i1 == i2).all() and np.allclose(s1, s2)
    assert loaded.ids.tolist() == index.ids.tolist() and loaded.params == index.params
    assert sorted(loaded.ids.tolist()) == sorted(ids)  # held-out sample moved last
    position = {v: r for r, v in enumerate(ids)}
    order = [position[v] for v in loaded.ids.tolist()]
    pd.testing.assert_frame_equal(loaded.metadata, meta.iloc[order].reset_index(drop=True))
    assert info["recall_queries"] == 300 and order[-300:] == sorted(order[-300:])


def test_int_ids_round_trip_and_stale_metadata_removed(tmp_path) -> None:
    rng = np.random.default_rng(7)
    x = unit(rng.normal(size=(50, 4)))
    folder = tmp_path / "idx"
    VectorIndex.build(x, np.arange(50), metadata=pd.DataFrame({"a": range(50)})).save(folder)
    VectorIndex.build(x, np.arange(100, 150)).save(folder)  # same folder, no metadata
    loaded = VectorIndex.load(folder)
    assert loaded.metadata is None and not (folder / "meta.parquet").exists()
    assert loaded.ids.dtype == np.int64 and loaded.ids[0] == 100
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_config_hash_mismatch(tmp_path) -> None:
    rng = np.random.default_rng(8)
    x = unit(rng.normal(size=(20, 4)))
    index = VectorIndex.build(x, np.arange(20), config_hash="run-a")
    index.save(tmp_path / "idx")
    with pytest.raises(ConfigHashMismatchError, match="run-a.*run-b"):
        VectorIndex.load(tmp_path / "idx", config_hash="run-b")
    with pytest.raises(ConfigHashMismatchError):
        index.check_config_hash("run-b")
    index.check_config_hash(None)  # nothing asked: nothing checked


def test_load_detects_broken_folders(tmp_path) -> None:
    rng = np.random.default_rng(9)
    x = unit(rng.normal(size=(20, 4)))
    with pytest.raises(IndexFileError, match="does not exist"):
        VectorIndex.load(tmp_path / "nothing")
    folder = VectorIndex.build(x, [f"i{i}" for i in range(20)]).save(tmp_path / "idx")
    ids_file = folder / "ids.json"
    ids_file.write_text(json.dumps([f"i{i}" for i in range(19)]))  # cut short
    with pytest.raises(IndexFileError, match="ids.json has .* bytes but index.json expects"):
        VectorIndex.load(folder)
    (folder / "index.faiss").unlink()
    with pytest.raises(IndexFileError, match="lacks index.faiss"):
        VectorIndex.load(folder)
    (folder / "index.json").unlink()
    with pytest.raises(IndexFileError, match="no index.json"):
        VectorIndex.load(folder)
    (tmp_path / "file").write_text("x")
    with pytest.raises(IndexFileError, match="is a file"):
        VectorIndex.build(x, np.arange(20)).save(tmp_path / "file")


# ----------------------------------------------------------------- bad input
def test_bad_vectors_and_ids() -> None:
    rng = np.random.default_rng(10)
    x = unit(rng.normal(size=(10, 4)))
    ids = [f"i{i}" for i in range(10)]
    nan = x.copy()
    nan[3, 1] = np.nan
    with pytest.raises(VectorInputError, match="row 3 \\(id 'i3'\\) contains NaN"):
        VectorIndex.build(nan, ids)
    with pytest.raises(VectorInputError, match="ids must be unique.*'i1' again at row 2"):
        VectorIndex.build(x, ["i0", "i1", "i1"] + ids[3:])
    with pytest.raises(VectorInputError, match="9 ids were given for 10 vectors"):
        VectorIndex.build(x, ids[:9])
    with pytest.raises(VectorInputError, match="must all be strings or all integers"):
        VectorIndex.build(x, [1, "a"] + ids[2:])
    with pytest.raises(VectorInputError, match="L2-normalised.*normalize=True"):
        VectorIndex.build(x * 2, ids)
    assert VectorIndex.build(x * 2, ids, normalize=True).search(x[:1], 1)[1][0, 0] == "i0"
    with pytest.raises(VectorInputError, match="2-D"):
        VectorIndex.build(x[0], ids[:1])
    with pytest.raises(VectorInputError, match="metadata has 3 rows"):
        VectorIndex.build(x, ids, metadata=pd.DataFrame({"a": [1, 2, 3]}))
    with pytest.raises(VectorInputError, match="unknown parameters \\['nprobe'\\]"):
        VectorIndex.build(x, ids, kind="exact", params={"nprobe": 2})
    with pytest.raises(VectorInputError, match="kind must be one of"):
        VectorIndex.build(x, ids, kind="lsh")


def test_bad_queries() -> None:
    rng = np.random.default_rng(11)
    x = unit(rng.normal(size=(10, 4)))
    index = VectorIndex.build(x, np.arange(10))
    with pytest.raises(VectorInputError, match="queries have 3 dimensions but the index holds 4"):
        index.search(x[:, :3], k=1)
    with pytest.raises(VectorInputError, match="k=11 is larger than the 10 indexed vectors"):
        index.search(x, k=11)
    with pytest.raises(VectorInputError, match="k must be a positive int"):
        index.search(x, k=0)
    bad = x[:2].copy()
    bad[1, 0] = np.inf
    with pytest.raises(VectorInputError, match="queries row 1 contains NaN or infinite"):
        index.search(bad, k=1)


def test_search_survives_faiss_torch_utils_patch() -> None:
    """pytorch-metric-learning imports faiss.contrib.torch_utils, which replaces
    Index.search process-wide by a wrapper without ``params``; the index must still work."""
    import faiss.contrib.torch_utils  # noqa: F401

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 16)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for kind in ("exact", "ivf"):
        index = VectorIndex.build(x, [f"v{i}" for i in range(len(x))], kind=kind)
        _, ids = index.search(x[:5], k=1)
        assert [row[0] for row in ids] == [f"v{i}" for i in range(5)]
    test_fewer_than_k_found_falls_back_to_exhaustive()  # knn / reconstruct_n are patched too
