"""cxrembed.search.rerank: exact re-scoring from vectors in RAM or memory-mapped (with rows
added after), the same scores either way, and the .npy written back."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss")

from cxrembed.search.rerank import ExactVectors, rerank  # noqa: E402

from .test_index import exact_topk, unit  # noqa: E402


@pytest.fixture()
def vectors():
    rng = np.random.default_rng(60)
    return unit(rng.normal(size=(300, 12))), unit(rng.normal(size=(40, 12)))


def stores(x: np.ndarray, tmp_path) -> dict[str, ExactVectors]:
    np.save(tmp_path / "v.npy", x[:250])
    mapped = ExactVectors.mapped(np.load(tmp_path / "v.npy", mmap_mode="r"))
    mapped.extend(x[250:])  # added rows stay in RAM next to the file
    ram = ExactVectors.in_memory(x[:200])
    ram.extend(x[200:])
    return {"ram": ram, "mapped": mapped, "rows": ExactVectors.in_memory(x, np.arange(300))}


def test_scores_are_exact_in_ram_and_mapped(vectors, tmp_path) -> None:
    x, q = vectors
    rng = np.random.default_rng(61)
    shortlist = rng.integers(0, 300, size=(40, 25))
    expected = np.einsum("qd,qkd->qk", q, x[shortlist])
    for name, store in stores(x, tmp_path).items():
        assert store.shape == (300, 12) and len(store) == 300, name
        np.testing.assert_allclose(store.scores(q, shortlist), expected, atol=1e-6)
    assert stores(x, tmp_path)["mapped"].is_mapped
    assert stores(x, tmp_path)["mapped"].nbytes == 50 * 12 * 4  # only the added rows in RAM


def test_rerank_keeps_the_exact_best(vectors, tmp_path) -> None:
    x, q = vectors
    shortlist = np.tile(np.arange(300), (40, 1))[:, ::-1].copy()  # worst first, on purpose
    for store in stores(x, tmp_path).values():
        scores, rows = rerank(q, shortlist, 5, store)
        assert rows.tolist() == exact_topk(x, q, 5).tolist()
        np.testing.assert_allclose(scores, np.sort(q @ x.T, axis=1)[:, ::-1][:, :5], atol=1e-6)


def test_save_writes_every_row(vectors, tmp_path) -> None:
    x, _ = vectors
    for name, store in stores(x, tmp_path).items():
        store.save(tmp_path / f"{name}.npy")
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), x)
