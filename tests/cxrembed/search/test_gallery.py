"""cxrembed.search.gallery with a memory budget: the index compresses to fit, and a bad
budget is refused before any image is embedded."""

from __future__ import annotations

import pytest

pytest.importorskip("faiss")

from cxrembed.embeddings.embedding_set import EmbeddingSet  # noqa: E402
from cxrembed.errors import VectorInputError  # noqa: E402
from cxrembed.search import gallery  # noqa: E402
from cxrembed.search.index import VectorIndex  # noqa: E402
from cxrlabel.errors import InputError  # noqa: E402

from .test_index import clustered  # noqa: E402


def test_build_index_within_max_memory(tmp_path):
    x, _ = clustered(12_000, 32, 100, seed=50)
    emb = EmbeddingSet([f"img{i}" for i in range(len(x))], x, "h1")
    # full vectors: 1.5 MB; 4-byte PQ codes + list ids + 32-byte str ids: 0.59 MB with the
    # 65 kB of centroids and codebooks; 8-byte codes would need 0.64 MB
    summary = gallery.build_index(emb, tmp_path / "index", max_memory="600kB")
    assert summary.kind == "ivfpq" and summary.count == 12_000
    index = VectorIndex.load(tmp_path / "index")
    assert index.info["memory_bytes"] == 593_536 and index.params["m"] == 4
    assert index.search(x[:1], k=1)[1][0, 0] == "img0"


def test_embed_and_index_checks_the_budget_before_embedding(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("embedded before the options were checked")

    monkeypatch.setattr("cxrembed.inference.embed.embed_images", never)
    with pytest.raises(VectorInputError, match=r"max_memory \(--max-memory\) must be a size"):
        gallery.embed_and_index(
            "RUN", "imgs", tmp_path / "emb", index=tmp_path / "i", max_memory="4 gigs"
        )
    with pytest.raises(InputError, match="give the index folder too"):
        gallery.embed_and_index("RUN", "imgs", tmp_path / "emb", max_memory="4GB")
