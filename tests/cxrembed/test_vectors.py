"""cxrembed._vectors: the one place vectors and ids are checked, each check raising the
error class of its caller."""

from __future__ import annotations

import numpy as np
import pytest

from cxrembed._vectors import as_ids, as_vectors, check_table_ids, first_repeat, text_ids
from cxrembed.errors import EmbeddingsFileError, IdJoinError, IndexFileError, VectorInputError


def test_vectors_shape_rules_and_error_class() -> None:
    with pytest.raises(EmbeddingsFileError, match="e: vectors must be a 2-D array"):
        as_vectors(np.ones(3), name="e: vectors", error=EmbeddingsFileError, allow_empty=True)
    assert as_vectors(np.zeros((0, 4)), allow_empty=True).shape == (0, 4)
    with pytest.raises(VectorInputError, match="non-empty 2-D array"):
        as_vectors(np.zeros((0, 4)))
    nan = np.ones((2, 2))
    nan[1, 0] = np.nan
    assert as_vectors(nan, finite=False).shape == (2, 2)
    with pytest.raises(VectorInputError, match=r"row 1 \(id 'b'\) contains NaN"):
        as_vectors(nan, ids=np.array(["a", "b"]))


def test_ids_of_an_index_and_of_a_file() -> None:
    with pytest.raises(IndexFileError, match="3 ids are repeated, e.g. 'x' again at row 2"):
        as_ids(["x", "y", "x", "y", "y"], source="ids.json", error=IndexFileError)
    assert as_ids(np.arange(3)).dtype == np.int64
    with pytest.raises(EmbeddingsFileError, match="row 1 is ''"):
        text_ids(["a", ""], "f", EmbeddingsFileError)


def test_table_ids_blank_and_repeated() -> None:
    with pytest.raises(IdJoinError, match="t column 'id' holds 'a' on rows 1 and 3"):
        check_table_ids(
            [None, "a", None, "a"], column="t column 'id'", error=IdJoinError, allow_blank=True
        )
    with pytest.raises(IdJoinError, match="blank at row 0 \\(2 such rows\\)"):
        check_table_ids([None, "a", None], column="t", error=IdJoinError)
    assert check_table_ids(["a", None], column="t", error=IdJoinError, allow_blank=True) == [
        "a",
        None,
    ]
    assert first_repeat(["a", "b"]) is None
