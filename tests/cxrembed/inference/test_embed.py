"""cxrembed.inference.embed: every candidate embedded, already done or excluded with a reason; vectors
equal to a one-image-at-a-time reference; resume after an interruption; three sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.errors import ConfigHashMismatchError
from cxrembed.inference.embed import EXCLUDED_FILE, embed_images, read_sources
from cxrembed.inference.encoder import Encoder
from cxrembed.inference.run import eval_transform_for, load_run
from cxrembed.io.image import read_image
from cxrlabel.errors import InputError

from .._images import ramp, truncate, write_dicom, write_png
from .._runs import make_run, write_pngs

pytestmark = pytest.mark.filterwarnings("error::UserWarning")  # nothing warns on clean input


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run") / "run")


def _reference(run_dir, path) -> np.ndarray:
    """One image at a time, straight from the reader, transform and model."""
    model, config = load_run(run_dir)
    image = torch.from_numpy(read_image(path)[0])[None]
    with torch.no_grad():
        return model(eval_transform_for(config)(image)[None])[0].numpy()


def test_folder_ids_vectors_and_sources(tmp_path, run):
    paths = write_pngs(tmp_path / "img", ["a.png", "b.png", "sub/c.png", "sub/deep/d.png"])
    write_dicom(tmp_path / "img" / "e", ramp(40, 40, 4095, "uint16"), bits_stored=12)
    (tmp_path / "img" / "notes.txt").write_text("not an image")
    summary = embed_images(run, tmp_path / "img", tmp_path / "emb", batch_size=3, progress=False)
    emb = EmbeddingSet.load(tmp_path / "emb")
    assert emb.ids == ["a", "b", "e", "sub/c", "sub/deep/d"]  # sorted walk, no extension
    assert (summary.kind, summary.candidates, summary.embedded, summary.already) == (
        "images",
        5,
        5,
        0,
    )
    assert len(summary.excluded) == 0 and summary.total == 5
    for image_id, path in zip(["a", "b", "sub/c", "sub/deep/d"], paths, strict=True):
        row = emb.ids.index(image_id)
        np.testing.assert_allclose(emb.vectors[row], _reference(run, path), atol=1e-5)
    assert np.allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)
    assert emb.config_hash == summary.config_hash == Encoder.from_run(run).config_hash
    sources = read_sources(tmp_path / "emb")
    assert dict(zip(sources["id"], sources["source"], strict=True))["sub/c"] == str(
        paths[2].resolve()
    )


def test_unreadable_and_duplicate_images_are_listed_not_dropped(tmp_path, run):
    write_pngs(tmp_path / "img", ["ok1.png", "ok2.png", "twin.png", "bad.png"])
    write_png(tmp_path / "img" / "twin.jpg", ramp(40, 40))  # same id as twin.png
    truncate(tmp_path / "img" / "bad.png", 0.3)
    (tmp_path / "img" / "empty.png").write_bytes(b"")
    summary = embed_images(run, tmp_path / "img", tmp_path / "emb", batch_size=2, progress=False)
    assert summary.embedded == 3
    assert summary.embedded + summary.already + len(summary.excluded) == summary.candidates == 6
    on_disk = pd.read_csv(tmp_path / "emb" / EXCLUDED_FILE)
    assert sorted(on_disk["id"]) == ["bad", "empty", "twin"]
    kinds = dict(zip(on_disk["id"], on_disk["kind"], strict=True))
    assert kinds["twin"] == "duplicate-id" and kinds["empty"] == "empty"
    assert kinds["bad"] in {"corrupt", "truncated"}
    assert on_disk["reason"].str.len().min() > 10  # every row says why


def test_non_finite_embeddings_are_excluded_not_written(tmp_path, run, monkeypatch):
    write_pngs(tmp_path / "img", ["a.png", "b.png", "c.png"])
    real = Encoder.encode

    def nan_for_b(self, batch):
        vectors = real(self, batch)
        if len(vectors) > 1:
            vectors[1] = np.nan  # the second image of each full batch
        return vectors

    monkeypatch.setattr(Encoder, "encode", nan_for_b)
    summary = embed_images(run, tmp_path / "img", tmp_path / "emb", batch_size=2, progress=False)
    assert EmbeddingSet.load(tmp_path / "emb").ids == ["a", "c"]
    assert summary.excluded[["id", "kind"]].values.tolist() == [["b", "non-finite-embedding"]]


def test_resume_skips_done_ids_and_keeps_their_vectors(tmp_path, run):
    write_pngs(tmp_path / "img", [f"x{i}.png" for i in range(5)])
    first = embed_images(run, tmp_path / "img", tmp_path / "emb", progress=False)
    before = EmbeddingSet.load(tmp_path / "emb")
    write_pngs(tmp_path / "img", ["y0.png", "y1.png"], seed=9)
    second = embed_images(run, tmp_path / "img", tmp_path / "emb", progress=False)
    after = EmbeddingSet.load(tmp_path / "emb")
    assert (first.embedded, second.embedded, second.already, second.total) == (5, 2, 5, 7)
    assert after.ids[:5] == before.ids
    np.testing.assert_array_equal(after.vectors[:5], before.vectors)
    assert len(read_sources(tmp_path / "emb")) == 7


def test_interrupted_run_keeps_finished_batches_and_resumes(tmp_path, run, monkeypatch):
    write_pngs(tmp_path / "img", [f"x{i}.png" for i in range(6)])
    calls = {"n": 0}
    real = Encoder.encode

    def stop_on_second_batch(self, batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, batch)

    monkeypatch.setattr(Encoder, "encode", stop_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        embed_images(run, tmp_path / "img", tmp_path / "emb", batch_size=2, progress=False)
    partial = EmbeddingSet.load(tmp_path / "emb", allow_incomplete=True)
    assert partial.ids == ["x0", "x1"]
    monkeypatch.setattr(Encoder, "encode", real)
    resumed = embed_images(run, tmp_path / "img", tmp_path / "emb", batch_size=2, progress=False)
    assert (resumed.already, resumed.embedded, resumed.total) == (2, 4, 6)
    done = EmbeddingSet.load(tmp_path / "emb")
    fresh = embed_images(run, tmp_path / "img", tmp_path / "fresh", progress=False)
    assert fresh.embedded == 6
    np.testing.assert_allclose(
        done.vectors, EmbeddingSet.load(tmp_path / "fresh").vectors, atol=1e-6
    )


def test_resume_refuses_another_run_and_no_resume_replaces(tmp_path, run):
    write_pngs(tmp_path / "img", ["a.png", "b.png"])
    embed_images(run, tmp_path / "img", tmp_path / "emb", progress=False)
    other = make_run(tmp_path / "other", image_size=64)  # other preprocessing: other hash
    with pytest.raises(ConfigHashMismatchError, match="config hash"):
        embed_images(other, tmp_path / "img", tmp_path / "emb", progress=False)
    replaced = embed_images(other, tmp_path / "img", tmp_path / "emb", resume=False, progress=False)
    assert replaced.embedded == 2 and replaced.already == 0
    assert EmbeddingSet.load(tmp_path / "emb").config_hash == replaced.config_hash


def test_table_source_ids_rows_and_missing_images(tmp_path, run):
    write_pngs(tmp_path / "img", ["p1.png", "p2.png"])
    table = pd.DataFrame({"uid": ["u1", "u2", "u3"], "file": ["p1.png", "p2.png", "gone.png"]})
    table.to_csv(tmp_path / "t.csv", index=False)
    where = {"images_root": tmp_path / "img", "image_col": "file", "progress": False}
    by_path = embed_images(run, tmp_path / "t.csv", tmp_path / "e1", **where)
    by_id = embed_images(run, tmp_path / "t.csv", tmp_path / "e2", id_col="uid", **where)
    assert EmbeddingSet.load(tmp_path / "e1").ids == ["p1.png", "p2.png"]
    assert EmbeddingSet.load(tmp_path / "e2").ids == ["u1", "u2"]
    for summary in (by_path, by_id):
        assert summary.kind == "table" and summary.candidates == 3
        assert summary.excluded[["row", "kind"]].values.tolist() == [[2, "missing"]]


def test_cache_source_matches_files(tmp_path, run):
    from cxrembed.data.cache import prepare_cache

    write_pngs(tmp_path / "img", ["a.png", "b.png", "c.png"], size=32)
    table = pd.DataFrame({"file": ["a.png", "b.png", "c.png", "nope.png"]})
    prepare_cache(
        table, tmp_path / "img", tmp_path / "cache", image_col="file", size=32, progress=False
    )
    summary = embed_images(run, tmp_path / "cache", tmp_path / "emb", progress=False)
    emb = EmbeddingSet.load(tmp_path / "emb")
    assert summary.kind == "cache" and emb.ids == ["a.png", "b.png", "c.png"]
    embed_images(run, tmp_path / "img", tmp_path / "files", progress=False)  # same images
    files = EmbeddingSet.load(tmp_path / "files")
    cosine = (emb.vectors * files.vectors).sum(axis=1)
    assert cosine.min() > 0.999  # only 8-bit cache quantisation differs


@pytest.mark.parametrize("cache_size", [32, 48])  # the run's size (batched), larger (per image)
def test_cache_batches_are_prepared_as_single_images(tmp_path, run, cache_size):
    from cxrembed.data.cache import prepare_cache
    from cxrembed.inference.embed import _cache_items

    names = [f"x{i}.png" for i in range(5)]
    write_pngs(tmp_path / "img", names, size=cache_size)
    table = pd.DataFrame({"file": names})
    prepare_cache(
        table, tmp_path / "img", tmp_path / "c", image_col="file", size=cache_size, progress=False
    )
    encoder = Encoder.from_run(run)
    dataset = _cache_items(tmp_path / "c", encoder).dataset([4, 0, 2])
    batch = dataset.__getitems__([0, 1, 2])
    single = [dataset[i] for i in range(3)]
    assert [b[0] for b in batch] == [s[0] for s in single] == [4, 0, 2]
    assert [tuple(b[4]) for b in batch] == [tuple(s[4]) for s in single]
    for (_, got, *_), (_, want, *_) in zip(batch, single, strict=True):
        assert got.shape == (1, 32, 32)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_prepare_batch_checks_an_array_of_squares_like_single_images(run):
    encoder = Encoder.from_run(run)
    squares = np.random.default_rng(0).random((3, 32, 32), dtype=np.float32)
    torch.testing.assert_close(
        encoder.prepare_batch(squares), torch.stack([encoder.prepare(x) for x in squares])
    )
    squares[1, 5, 5] = 1.5
    with pytest.raises(InputError, match=r"in \[0, 1\]"):
        encoder.prepare_batch(squares)


def test_workers_give_the_same_vectors(tmp_path, run):
    write_pngs(tmp_path / "img", [f"x{i}.png" for i in range(4)])
    embed_images(run, tmp_path / "img", tmp_path / "one", progress=False)
    embed_images(
        run, tmp_path / "img", tmp_path / "two", num_workers=2, batch_size=3, progress=False
    )
    np.testing.assert_allclose(
        EmbeddingSet.load(tmp_path / "one").vectors,
        EmbeddingSet.load(tmp_path / "two").vectors,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    ("make", "kwargs", "match"),
    [
        (lambda d: d.mkdir(), {}, "no image to embed"),
        (lambda d: None, {}, "not found"),
        (lambda d: d.mkdir(), {"image_col": "x"}, "table source"),
        (lambda d: d.mkdir(), {"batch_size": 0}, "batch_size"),
        (lambda d: d.mkdir(), {"kind": "table"}, "is a folder"),
        (lambda d: d.mkdir(), {"kind": "files"}, "kind must be"),
    ],
)
def test_bad_sources_and_options(tmp_path, run, make, kwargs, match):
    make(tmp_path / "src")
    with pytest.raises(InputError, match=match):
        embed_images(run, tmp_path / "src", tmp_path / "emb", progress=False, **kwargs)
