"""VectorIndex.add, and searches that leave out given ids or the query's own group (a
patient), refilled to k: compared with a brute-force ranking that skips the same vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

faiss = pytest.importorskip("faiss")

from cxrembed.errors import VectorInputError  # noqa: E402
from cxrembed.search.index import VectorIndex  # noqa: E402

from .test_index import clustered, exact_topk, recall, unit  # noqa: E402


def patients(n_patients: int, per: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per`` images of each patient, close to each other (so a patient's own images are
    its nearest neighbours), patients spread over 20 clusters."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(20, d)))
    own = unit(centres[rng.integers(0, 20, n_patients)] + rng.normal(0, 0.15, (n_patients, d)))
    x = unit(np.repeat(own, per, axis=0) + rng.normal(0, 0.03, (n_patients * per, d)))
    return x, np.repeat([f"P{i:04d}" for i in range(n_patients)], per)


def skipping_reference(x, q, k, banned_rows):
    """Exact top-k of each query over the rows it does not skip (a plain loop)."""
    sims = q.astype(np.float64) @ x.astype(np.float64).T
    out = []
    for i, banned in enumerate(banned_rows):
        order = [r for r in np.argsort(-sims[i], kind="stable") if r not in banned]
        out.append(order[:k])
    return np.asarray(out)


# ----------------------------------------------------------------- add
@pytest.mark.parametrize(
    ("kind", "params"), [("exact", None), ("ivf", {"nlist": 16, "nprobe": 16}), ("hnsw", {"M": 8})]
)
def test_added_vectors_are_found_and_saved(tmp_path, kind, params) -> None:
    x, q = clustered(1200, 16, 12, seed=30, queries=40)
    ids = [f"img{i}" for i in range(1200)]
    meta = pd.DataFrame({"patient": [f"P{i // 3}" for i in range(1200)], "age": range(1200)})
    index = VectorIndex.build(
        x[:1000], ids[:1000], kind=kind, params=params, metadata=meta.iloc[:1000]
    )
    assert index.add(x[1000:], ids[1000:], meta.iloc[1000:]) is index
    assert len(index) == 1200 and index.info["added"] == 200
    assert sorted(index.ids.tolist()) == sorted(ids)
    scores, found = index.search(x[1000:1010], k=1)
    assert found[:, 0].tolist() == ids[1000:1010]  # each added vector finds itself
    _, found = index.search(q, k=10)
    position = {v: r for r, v in enumerate(ids)}
    rows = np.vectorize(position.__getitem__)(found)
    assert recall(rows, exact_topk(x, q, 10)) >= 0.9
    loaded = VectorIndex.load(index.save(tmp_path / "idx"))
    assert len(loaded) == 1200 and loaded.ids.tolist() == index.ids.tolist()
    table = loaded.metadata.assign(id=loaded.ids).set_index("id")
    assert table.loc["img1100", "patient"] == "P366" and table.loc["img1100", "age"] == 1100
    assert (loaded.search(q, k=5)[1] == index.search(q, k=5)[1]).all()


def test_add_to_a_compressed_index_keeps_reranking(tmp_path) -> None:
    x, q = clustered(12_000, 32, 100, seed=31, queries=100)
    index = VectorIndex.build(
        x[:10_000], np.arange(10_000), kind="ivfpq", params={"m": 4}, n_threads=1
    )
    index.add(x[10_000:], np.arange(10_000, 12_000))
    _, found = index.search(q, k=10)
    assert recall(found, exact_topk(x, q, 10)) >= 0.95
    loaded = VectorIndex.load(index.save(tmp_path / "pq"))
    assert loaded._vectors.shape == (12_000, 32)
    assert (loaded.search(q, k=10)[1] == found).all()


def test_add_refuses_bad_input() -> None:
    x, _ = clustered(300, 8, 4, seed=32)
    index = VectorIndex.build(
        x[:200], [f"i{i}" for i in range(200)], metadata=pd.DataFrame({"patient": ["p"] * 200})
    )
    new_meta = pd.DataFrame({"patient": ["q"] * 100})
    with pytest.raises(
        VectorInputError, match="1 added ids are already in the index, e.g. 'i7' \\(added row 0\\)"
    ):
        index.add(x[200:202], ["i7", "new"], new_meta.iloc[:2])
    with pytest.raises(VectorInputError, match="ids must be unique"):
        index.add(x[200:202], ["a", "a"], new_meta.iloc[:2])
    with pytest.raises(VectorInputError, match="index has str ids but the added ids are int"):
        index.add(x[200:], np.arange(100), new_meta)
    with pytest.raises(VectorInputError, match="added vectors have 4 dimensions"):
        index.add(unit(x[200:, :4]), [f"n{i}" for i in range(100)], new_meta)
    with pytest.raises(VectorInputError, match="added vectors must be L2-normalised"):
        index.add(x[200:] * 3, [f"n{i}" for i in range(100)], new_meta)
    with pytest.raises(VectorInputError, match="give metadata for the added vectors"):
        index.add(x[200:], [f"n{i}" for i in range(100)])
    with pytest.raises(VectorInputError, match="missing \\['patient'\\], unknown \\['pid'\\]"):
        index.add(
            x[200:], [f"n{i}" for i in range(100)], new_meta.rename(columns={"patient": "pid"})
        )
    with pytest.raises(VectorInputError, match="metadata has 2 rows but there are 100"):
        index.add(x[200:], [f"n{i}" for i in range(100)], new_meta.iloc[:2])
    assert len(index) == 200  # nothing was added by the refused calls
    index.add(x[200:] * 3, [f"n{i}" for i in range(100)], new_meta, normalize=True)
    assert len(index) == 300 and index.metadata["patient"].tolist()[-1] == "q"
    bare = VectorIndex.build(x[:200], np.arange(200))
    with pytest.raises(VectorInputError, match="built without metadata"):
        bare.add(x[200:], np.arange(200, 300), new_meta)


# ----------------------------------------------------------------- exclude ids
def test_exclude_the_query_itself_refills_to_k() -> None:
    x, _ = clustered(800, 16, 10, seed=33)
    ids = np.arange(800) * 10
    index = VectorIndex.build(x, ids)
    scores, found = index.search(x[:50], k=5, exclude_ids=ids[:50])
    assert (found != ids[:50, None]).all() and found.shape == (50, 5)
    reference = skipping_reference(x, x[:50], 5, [{i} for i in range(50)])
    assert found.tolist() == ids[reference].tolist()
    assert (np.diff(scores, axis=1) <= 1e-7).all()
    # several ids per query, None for none, and ids not in the index are ignored
    _, found = index.search(x[:3], k=4, exclude_ids=[[0, 10, 99999], None, 20])
    banned = [{0, 1}, set(), {2}]
    assert found.tolist() == ids[skipping_reference(x, x[:3], 4, banned)].tolist()


def test_exclude_ids_with_an_approximate_index() -> None:
    x, _ = clustered(5000, 16, 40, seed=34)
    index = VectorIndex.build(x, [f"v{i}" for i in range(5000)], kind="ivf")
    _, found = index.search(x[:200], k=10, exclude_ids=[f"v{i}" for i in range(200)])
    assert all(f"v{i}" not in row for i, row in enumerate(found.tolist()))
    assert all(len(set(row)) == 10 for row in found.tolist())
    rows = np.vectorize(lambda v: int(v[1:]))(found)
    reference = skipping_reference(x, x[:200], 10, [{i} for i in range(200)])
    assert recall(rows, reference) >= 0.95


# ----------------------------------------------------------------- exclude groups
@pytest.mark.parametrize(("kind", "params"), [("exact", None), ("ivf", None), ("hnsw", {"M": 16})])
def test_same_patient_is_left_out(kind, params) -> None:
    x, pid = patients(400, 4, 16, seed=35)
    meta = pd.DataFrame({"patient_id": pid})
    index = VectorIndex.build(x, np.arange(len(x)), kind=kind, params=params, metadata=meta)
    table = index.metadata.assign(row=index.ids)
    group_of = dict(zip(table["row"], table["patient_id"], strict=True))
    queries = np.arange(0, len(x), 7)
    _, plain = index.search(x[queries], k=3)
    assert all(group_of[row[1]] == pid[q] for q, row in zip(queries, plain, strict=True))
    _, found = index.search(
        x[queries], k=10, exclude_groups=pid[queries], group_column="patient_id"
    )
    assert found.shape == (len(queries), 10)
    for q, row in zip(queries, found.tolist(), strict=True):
        assert all(group_of[r] != pid[q] for r in row) and len(set(row)) == 10
    banned = [set(np.flatnonzero(pid == pid[q])) for q in queries]
    reference = skipping_reference(x, x[queries], 10, banned)
    if kind == "exact":
        assert found.tolist() == reference.tolist()
    else:
        assert recall(found, reference) >= 0.9


def test_groups_compare_as_text_and_blank_groups_exclude_nothing() -> None:
    x, pid = patients(50, 3, 8, seed=36)
    numbers = np.array([int(p[1:]) for p in pid])  # an int column; queries give text/floats
    index = VectorIndex.build(x, np.arange(len(x)), metadata=pd.DataFrame({"pid": numbers}))
    groups = [str(numbers[0]), float(numbers[3]), None, np.nan]
    _, found = index.search(x[[0, 3, 6, 9]], k=5, exclude_groups=groups, group_column="pid")
    assert not {0, 1, 2} & set(found[0]) and not {3, 4, 5} & set(found[1])
    assert found[2, 0] == 6 and found[3, 0] == 9  # no group: the query itself is first


def test_groups_and_ids_together_are_counted_once() -> None:
    x, pid = patients(30, 3, 8, seed=37)
    index = VectorIndex.build(x, np.arange(len(x)), metadata=pd.DataFrame({"pid": pid}))
    k = len(x) - 4  # query 0 skips its 3 images and one other: exactly k remain
    _, found = index.search(
        x[:1], k=k, exclude_groups=pid[:1], group_column="pid", exclude_ids=[[0, 1, 50]]
    )
    assert sorted(found[0].tolist()) == sorted(set(range(len(x))) - {0, 1, 2, 50})
    with pytest.raises(
        VectorInputError,
        match="query row 0 excludes 4 of the 90 indexed vectors, leaving 86, fewer than k=87",
    ):
        index.search(
            x[:1], k=k + 1, exclude_groups=pid[:1], group_column="pid", exclude_ids=[[0, 50]]
        )


def test_bad_exclusion_arguments() -> None:
    x, pid = patients(10, 2, 8, seed=38)
    index = VectorIndex.build(x, np.arange(20), metadata=pd.DataFrame({"pid": pid}))
    with pytest.raises(VectorInputError, match="go together"):
        index.search(x[:2], k=2, exclude_groups=pid[:2])
    with pytest.raises(
        VectorInputError, match="group_column 'patient' is not a metadata column.*\\['pid'\\]"
    ):
        index.search(x[:2], k=2, exclude_groups=pid[:2], group_column="patient")
    with pytest.raises(VectorInputError, match="exclude_groups has 3 entries for 2 queries"):
        index.search(x[:2], k=2, exclude_groups=pid[:3], group_column="pid")
    with pytest.raises(VectorInputError, match="exclude_ids must hold int ids"):
        index.search(x[:2], k=2, exclude_ids=["0", "1"])
    with pytest.raises(VectorInputError, match="exclude_ids must be a sequence"):
        index.search(x[:2], k=2, exclude_ids="0")
    bare = VectorIndex.build(x, np.arange(20))
    with pytest.raises(VectorInputError, match="no metadata"):
        bare.search(x[:2], k=2, exclude_groups=pid[:2], group_column="pid")
