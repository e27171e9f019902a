"""EmbeddingSet.vectors_for: a table's rows get their own vectors, whatever the write order."""

from __future__ import annotations

import numpy as np
import pytest

from cxrembed.embeddings import EmbeddingSet
from cxrembed.errors import EmbeddingsFileError


def test_vectors_follow_the_given_ids_not_the_write_order() -> None:
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    emb = EmbeddingSet(["d", "b", "a", "c"], vectors)
    got = emb.vectors_for(["a", "b", "c", "d", "a"])
    np.testing.assert_array_equal(got, vectors[[2, 1, 3, 0, 2]])


def test_ids_are_matched_as_text() -> None:
    emb = EmbeddingSet(["1", "2"], np.eye(2, dtype=np.float32))
    np.testing.assert_array_equal(emb.vectors_for([2, 1]), np.eye(2)[[1, 0]])


def test_an_absent_id_is_named_with_the_count() -> None:
    emb = EmbeddingSet(["a", "b"], np.eye(2, dtype=np.float32))
    with pytest.raises(EmbeddingsFileError, match=r"no embedding for id 'x' \(2 of 3 ids absent\)"):
        emb.vectors_for(["a", "x", "y"])
