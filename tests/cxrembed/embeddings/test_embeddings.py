"""Tests of the embeddings file contract (cxrembed.embeddings.embedding_set)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cxrembed.embeddings.embedding_set import MANIFEST, EmbeddingSet, EmbeddingWriter
from cxrembed.errors import ConfigHashMismatchError, EmbeddingsFileError, VectorInputError
from cxrlabel.errors import CxrError


def _set(n: int = 5, d: int = 4, seed: int = 0) -> EmbeddingSet:
    rng = np.random.default_rng(seed)
    return EmbeddingSet(
        [f"img{i:03d}.png" for i in range(n)],
        rng.normal(size=(n, d)).astype(np.float32),
        "hash1",
        {"run": "r"},
    )


def test_folder_round_trip_keeps_ids_order_values_hash_and_meta(tmp_path):
    emb = _set()
    emb.save(tmp_path / "e")
    back = EmbeddingSet.load(tmp_path / "e")
    assert back.ids == emb.ids
    np.testing.assert_array_equal(back.vectors, emb.vectors)
    assert back.vectors.dtype == np.float32
    assert back.config_hash == "hash1" and back.meta == {"run": "r"}
    manifest = json.loads((tmp_path / "e" / MANIFEST).read_text())
    assert manifest["count"] == 5 and manifest["dim"] == 4 and manifest["dtype"] == "float32"
    assert manifest["complete"] is True and manifest["cxrkit_version"]
    assert manifest["shards"] == [{"vectors": "vectors.npy", "ids": "ids.parquet", "count": 5}]


def test_ids_keep_leading_zeros_and_int_ids_become_text(tmp_path):
    EmbeddingSet(["007", 12], np.ones((2, 2))).save(tmp_path / "e")
    assert EmbeddingSet.load(tmp_path / "e").ids == ["007", "12"]


def test_save_refuses_to_overwrite_unless_asked(tmp_path):
    _set().save(tmp_path / "e")
    with pytest.raises(EmbeddingsFileError, match="already holds embeddings"):
        _set(seed=1).save(tmp_path / "e")
    _set(n=3, seed=1).save(tmp_path / "e", overwrite=True)
    assert len(EmbeddingSet.load(tmp_path / "e")) == 3


def test_save_over_a_sharded_folder_removes_the_old_shards(tmp_path):
    with EmbeddingWriter(tmp_path / "e", 4, "hash1", shard_size=2) as w:
        w.append(_set().ids, _set().vectors)
    _set(n=2).save(tmp_path / "e", overwrite=True)
    assert not list((tmp_path / "e").glob("vectors-*"))
    assert len(EmbeddingSet.load(tmp_path / "e")) == 2


def test_parquet_file_round_trip_keeps_config_hash(tmp_path):
    emb = _set()
    emb.save(tmp_path / "e.parquet")
    back = EmbeddingSet.load(tmp_path / "e.parquet")
    assert back.ids == emb.ids and back.config_hash == "hash1" and back.meta == {"run": "r"}
    np.testing.assert_array_equal(back.vectors, emb.vectors)


def test_foreign_parquet_with_variable_list_column(tmp_path):
    table = pa.table({"image": ["a", "b"], "emb": [[1.0, 2.0], [3.0, 4.0]], "x": [1, 2]})
    pq.write_table(table, tmp_path / "mine.parquet")
    back = EmbeddingSet.load(tmp_path / "mine.parquet", id_col="image")
    assert back.ids == ["a", "b"] and back.config_hash is None
    np.testing.assert_array_equal(back.vectors, [[1, 2], [3, 4]])


def test_foreign_parquet_errors_name_the_problem(tmp_path):
    pq.write_table(pa.table({"id": ["a", "b"], "v": [[1.0, 2.0], [3.0]]}), tmp_path / "r.parquet")
    with pytest.raises(EmbeddingsFileError, match="row 1 has a vector of another length"):
        EmbeddingSet.load(tmp_path / "r.parquet")
    pq.write_table(pa.table({"id": ["a"], "v": [[1.0]], "w": [[2.0]]}), tmp_path / "two.parquet")
    with pytest.raises(EmbeddingsFileError, match="exactly one list/array column"):
        EmbeddingSet.load(tmp_path / "two.parquet")
    assert EmbeddingSet.load(tmp_path / "two.parquet", vector_col="w").vectors.tolist() == [[2.0]]
    with pytest.raises(EmbeddingsFileError, match="no id column 'uid'"):
        EmbeddingSet.load(tmp_path / "two.parquet", id_col="uid")


def test_npy_with_ids_file(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(6, dtype=np.float64).reshape(3, 2))
    (tmp_path / "ids.txt").write_text("a\r\nb\r\nc\r\n")  # Windows line ends
    back = EmbeddingSet.load(tmp_path / "v.npy", ids=tmp_path / "ids.txt")
    assert back.ids == ["a", "b", "c"] and back.vectors.dtype == np.float32
    with pytest.raises(EmbeddingsFileError, match="without ids"):
        EmbeddingSet.load(tmp_path / "v.npy")
    (tmp_path / "short.txt").write_text("a\nb\n")
    with pytest.raises(EmbeddingsFileError, match="holds 2 ids but .* holds 3 vectors"):
        EmbeddingSet.load(tmp_path / "v.npy", ids=tmp_path / "short.txt")
    (tmp_path / "blank.txt").write_text("a\n\nc\n")
    with pytest.raises(EmbeddingsFileError, match="line 2 is blank"):
        EmbeddingSet.load(tmp_path / "v.npy", ids=tmp_path / "blank.txt")


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        (["a", "b", "a"], np.ones((3, 2)), "id 'a' appears at rows 0 and 2"),
        (["a", "b"], [[1.0, np.nan], [0.0, 1.0]], "id 'a' .* NaN"),
        (["a", "b"], [[1.0, 0.0], [np.inf, 1.0]], "id 'b' .* infinite"),
        (["a", "b"], np.ones(2), "2-D array"),
        (["a"], np.ones((2, 2)), "1 ids for 2 vectors"),
        (["a", " "], np.ones((2, 2)), "row 1 is ' '"),
        (["a", None], np.ones((2, 2)), "row 1 is None"),
        (["a\nb", "c"], np.ones((2, 2)), "one line"),
    ],
)
def test_bad_sets_are_refused_with_the_row(tmp_path, ids, vectors, message):
    with pytest.raises(EmbeddingsFileError, match=message):
        EmbeddingSet(ids, np.asarray(vectors)).save(tmp_path / "e")
    assert not (tmp_path / "e" / MANIFEST).exists()


def test_errors_are_cxr_errors_and_value_errors(tmp_path):
    with pytest.raises(CxrError):
        EmbeddingSet.load(tmp_path / "nothing")
    with pytest.raises(ValueError):
        EmbeddingSet.load(tmp_path / "nothing")


def test_load_checks_the_files_against_the_manifest(tmp_path):
    _set().save(tmp_path / "e")
    np.save(tmp_path / "e" / "vectors.npy", np.ones((4, 4), dtype=np.float32))
    with pytest.raises(EmbeddingsFileError, match=r"shape \(4, 4\); the manifest expects \(5, 4\)"):
        EmbeddingSet.load(tmp_path / "e")
    (tmp_path / "e" / "vectors.npy").write_bytes(b"garbage")
    with pytest.raises(EmbeddingsFileError, match="cannot read vectors file"):
        EmbeddingSet.load(tmp_path / "e")
    (tmp_path / "e" / MANIFEST).write_text("{")
    with pytest.raises(EmbeddingsFileError, match="expected the JSON manifest"):
        EmbeddingSet.load(tmp_path / "e")
    (tmp_path / "f").mkdir()
    with pytest.raises(EmbeddingsFileError, match="has no embeddings.json"):
        EmbeddingSet.load(tmp_path / "f")


def test_load_refuses_nan_written_by_someone_else(tmp_path):
    _set().save(tmp_path / "e")
    bad = _set().vectors.copy()
    bad[3, 1] = np.nan
    np.save(tmp_path / "e" / "vectors.npy", bad)
    with pytest.raises(EmbeddingsFileError, match=r"id 'img003.png' \(row 3\)"):
        EmbeddingSet.load(tmp_path / "e")


def test_expected_config_hash(tmp_path):
    _set().save(tmp_path / "e")
    assert EmbeddingSet.load(tmp_path / "e", expect_config_hash="hash1").config_hash == "hash1"
    with pytest.raises(ConfigHashMismatchError, match="config hash 'hash1', not 'other'"):
        EmbeddingSet.load(tmp_path / "e", expect_config_hash="other")


def test_writer_shards_and_reads_back_in_append_order(tmp_path):
    emb = _set(n=7)
    with EmbeddingWriter(tmp_path / "e", 4, "hash1", shard_size=3) as w:
        w.append(emb.ids[:2], emb.vectors[:2])
        w.append(emb.ids[2:], emb.vectors[2:])
    manifest = json.loads((tmp_path / "e" / MANIFEST).read_text())
    assert [s["count"] for s in manifest["shards"]] == [3, 3, 1]
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == [
        MANIFEST,
        "ids-00000.txt",
        "ids-00001.txt",
        "ids-00002.txt",
        "vectors-00000.npy",
        "vectors-00001.npy",
        "vectors-00002.npy",
    ]
    back = EmbeddingSet.load(tmp_path / "e")
    assert back.ids == emb.ids
    np.testing.assert_array_equal(back.vectors, emb.vectors)


def test_writer_resumes_after_an_interruption(tmp_path):
    emb = _set(n=9)
    with pytest.raises(RuntimeError), EmbeddingWriter(tmp_path / "e", 4, "hash1", 4) as w:
        w.append(emb.ids[:5], emb.vectors[:5])
        raise RuntimeError("killed")
    # the buffered row was flushed, but the folder is not complete
    with pytest.raises(EmbeddingsFileError, match="incomplete"):
        EmbeddingSet.load(tmp_path / "e")
    assert len(EmbeddingSet.load(tmp_path / "e", allow_incomplete=True)) == 5
    writer = EmbeddingWriter(tmp_path / "e", 4, "hash1", 4)
    done = writer.done_ids()
    assert done == set(emb.ids[:5])
    todo = [i for i, name in enumerate(emb.ids) if name not in done]
    writer.append([emb.ids[i] for i in todo], emb.vectors[todo])
    assert writer.close() == 9
    back = EmbeddingSet.load(tmp_path / "e")
    assert back.ids == emb.ids
    np.testing.assert_array_equal(back.vectors, emb.vectors)


def test_writer_shard_written_but_not_listed_is_redone(tmp_path):
    """A crash between the shard files and the manifest: the orphan files are overwritten."""
    emb = _set(n=4)
    w = EmbeddingWriter(tmp_path / "e", 4, "hash1", shard_size=2)
    w.append(emb.ids[:2], emb.vectors[:2])
    np.save(tmp_path / "e" / "vectors-00001.npy", np.zeros((2, 4), dtype=np.float32))
    w2 = EmbeddingWriter(tmp_path / "e", 4, "hash1", shard_size=2)
    assert w2.done_ids() == set(emb.ids[:2])
    w2.append(emb.ids[2:], emb.vectors[2:])
    w2.close()
    np.testing.assert_array_equal(EmbeddingSet.load(tmp_path / "e").vectors, emb.vectors)


def test_writer_refuses_mixing_runs_dims_repeats_and_nan(tmp_path):
    emb = _set(n=3)
    with EmbeddingWriter(tmp_path / "e", 4, "hash1") as w:
        w.append(emb.ids, emb.vectors)
        with pytest.raises(VectorInputError, match="already written"):
            w.append(["img000.png"], np.ones((1, 4)))
        with pytest.raises(VectorInputError, match=r"shape \(1, 3\); expected \(1, 4\)"):
            w.append(["new"], np.ones((1, 3)))
        with pytest.raises(VectorInputError, match="'nan1' holds NaN"):
            w.append(["ok", "nan1"], [[0, 0, 0, 0], [np.nan, 0, 0, 0]])
        assert "ok" not in w.done_ids()  # a refused batch writes nothing
    with pytest.raises(ConfigHashMismatchError, match="config hash 'hash1', not 'hash2'"):
        EmbeddingWriter(tmp_path / "e", 4, "hash2").done_ids()
    with pytest.raises(EmbeddingsFileError, match="4-dimensional"):
        EmbeddingWriter(tmp_path / "e", 8, "hash1").done_ids()
    assert len(EmbeddingSet.load(tmp_path / "e")) == 3


def test_writer_with_a_missing_listed_shard_says_so(tmp_path):
    with EmbeddingWriter(tmp_path / "e", 4, None, shard_size=2) as w:
        w.append(_set().ids, _set().vectors)
    (tmp_path / "e" / "ids-00001.txt").unlink()
    with pytest.raises(EmbeddingsFileError, match="'ids-00001.txt' listed in embeddings.json"):
        EmbeddingWriter(tmp_path / "e", 4, None).done_ids()
    with pytest.raises(EmbeddingsFileError, match="ids-00001.txt' is missing"):
        EmbeddingSet.load(tmp_path / "e")


def test_writer_many_small_appends_match_one_big_array(tmp_path):
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(50, 3)).astype(np.float32)
    ids = [f"r{i}" for i in range(50)]
    with EmbeddingWriter(tmp_path / "e", 3, "h", shard_size=7) as w:
        start = 0
        for size in (1, 5, 13, 2, 29):
            w.append(ids[start : start + size], vectors[start : start + size])
            start += size
    back = EmbeddingSet.load(tmp_path / "e")
    assert back.ids == ids
    np.testing.assert_array_equal(back.vectors, vectors)
    counts = [s["count"] for s in json.loads((tmp_path / "e" / MANIFEST).read_text())["shards"]]
    assert counts == [7] * 7 + [1]
