"""cxrembed.search.retriever and cxrembed.search.gallery: neighbours equal to a brute-force ranking,
metadata and evidence joined by id, a run/index mismatch refused, k clamped, unreadable
queries reported, and the PNG grid."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.errors import ConfigHashMismatchError, ImageReadError
from cxrembed.inference.embed import embed_images
from cxrembed.search.gallery import IMAGE_PATH_COLUMN, build_index, join_metadata
from cxrembed.search.grid import THUMB_INCHES
from cxrembed.search.retriever import EVIDENCE_COLUMN, Retriever, search_images
from cxrlabel.errors import InputError
from cxrlabel.figures import DEFAULT_DPI

from .._images import truncate
from .._runs import make_run, write_pngs

NAMES = [f"img{i}" for i in range(8)]


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    root = tmp_path_factory.mktemp("gallery")
    run = make_run(root / "run")
    write_pngs(root / "images", [f"{n}.png" for n in NAMES])
    meta = pd.DataFrame(
        {
            "file": [f"images/{n}.png" for n in NAMES],
            "finding": ["COVID-19" if i % 2 else "Pneumonia" for i in range(8)],
            "report_id": [f"r{i}" for i in range(8)],
            "age": [40 + i for i in range(8)],
        }
    )
    meta.to_csv(root / "meta.csv", index=False)
    records = [
        {
            "id": "r1",
            "observation": "Lung Opacity",
            "sentence": "Patchy opacity right base.",
            "assertion": "positive",
            "excluded": False,
        },
        {
            "id": "r1",
            "observation": "Pneumothorax",
            "sentence": "No pneumothorax.",
            "assertion": "negative",
            "excluded": False,
        },
        {
            "id": "r1",
            "observation": "Edema",
            "sentence": "Possible mild edema.",
            "assertion": "uncertain",
            "excluded": False,
        },
        {
            "id": "r3",
            "observation": "Pneumonia",
            "sentence": "History of pneumonia.",
            "assertion": "positive",
            "excluded": True,
        },
    ]
    (root / "evidence.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    embed_images(run, root / "images", root / "emb", progress=False)
    build_index(root / "emb", root / "index", metadata=root / "meta.csv", image_col="file")
    return root


def _query(root, i):
    return root / "images" / f"{NAMES[i]}.png"


def test_neighbours_match_a_brute_force_ranking(gallery):
    retriever = Retriever(gallery / "run", gallery / "index", device="cpu")
    emb = EmbeddingSet.load(gallery / "emb")
    (frame,) = retriever.search([_query(gallery, 2)], k=5, include_self=True)
    similarity = emb.vectors @ emb.vectors[emb.ids.index("img2")]
    order = np.argsort(-similarity, kind="stable")[:5]
    assert frame["rank"].tolist() == [1, 2, 3, 4, 5]
    assert frame["id"].iloc[0] == "img2"  # a gallery image finds itself first
    assert frame["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-4)
    assert set(frame["id"]) == {emb.ids[i] for i in order}
    np.testing.assert_allclose(frame["similarity"], np.sort(similarity)[::-1][:5], atol=1e-4)
    assert frame.attrs["query"] == str(_query(gallery, 2))


def test_metadata_columns_are_those_of_each_neighbour(gallery):
    retriever = Retriever(gallery / "run", gallery / "index", show=["finding", "age"], device="cpu")
    (frame,) = retriever.search(_query(gallery, 5), k=8)
    assert list(frame.columns) == ["rank", "id", "similarity", "finding", "age"]
    for row in frame.itertuples():
        i = NAMES.index(row.id)
        assert row.finding == ("COVID-19" if i % 2 else "Pneumonia") and row.age == 40 + i


def test_pixels_and_files_give_the_same_neighbours(gallery):
    retriever = Retriever(gallery / "run", gallery / "index", device="cpu")
    pixels = np.asarray(Image.open(_query(gallery, 4)), dtype=np.float32) / 255
    by_file, by_pixels = retriever.search([_query(gallery, 4), pixels], k=3, include_self=True)
    assert by_file["id"].tolist() == by_pixels["id"].tolist()
    np.testing.assert_allclose(by_file["similarity"], by_pixels["similarity"], atol=1e-4)


def test_evidence_sentences_joined_through_a_report_id_column(gallery):
    retriever = Retriever(
        gallery / "run",
        gallery / "index",
        evidence=gallery / "evidence.jsonl",
        evidence_key="report_id",
        show=["finding"],
        device="cpu",
    )
    (frame,) = retriever.search(_query(gallery, 1), k=8, include_self=True)
    text = dict(zip(frame["id"], frame[EVIDENCE_COLUMN], strict=True))
    assert text["img1"] == (
        "Lung Opacity: Patchy opacity right base. | Edema (uncertain): Possible mild edema."
    )
    assert text["img3"] == ""  # its only mention was excluded
    assert "pneumothorax" not in " ".join(text.values()).lower()  # negatives are not shown
    with pytest.raises(InputError, match="evidence_key 'nope'"):
        Retriever(
            gallery / "run",
            gallery / "index",
            evidence=gallery / "evidence.jsonl",
            evidence_key="nope",
            device="cpu",
        ).check()


def test_index_of_another_run_is_refused(gallery, tmp_path):
    other = make_run(tmp_path / "other", image_size=64)
    with pytest.raises(ConfigHashMismatchError, match="config hash"):
        Retriever(other, gallery / "index", device="cpu").check()


def test_k_larger_than_the_gallery_is_clamped_with_a_warning(gallery):
    retriever = Retriever(gallery / "run", gallery / "index", device="cpu")
    with pytest.warns(UserWarning, match="larger than the gallery"):
        (frame,) = retriever.search(_query(gallery, 0), k=50, include_self=True)
    assert len(frame) == len(NAMES)
    with pytest.raises(InputError, match="k must be"):
        retriever.search(_query(gallery, 0), k=0)


def test_unreadable_query_raises_or_is_reported(gallery, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(_query(gallery, 0).read_bytes())
    truncate(bad, 0.3)
    retriever = Retriever(gallery / "run", gallery / "index", device="cpu")
    with pytest.raises(ImageReadError, match="bad.png"):
        retriever.search([bad], k=2)
    good, broken, absent = retriever.search(
        [_query(gallery, 0), bad, tmp_path / "no.png"], k=2, on_error="empty"
    )
    assert len(good) == 2 and "error" not in good.attrs
    assert len(broken) == 0 and "bad.png" in broken.attrs["error"]
    assert "not found" in absent.attrs["error"]


def test_unknown_show_column_names_the_available_ones(gallery):
    with pytest.raises(InputError, match=r"cannot show column\(s\) \['nope'\].*finding"):
        Retriever(gallery / "run", gallery / "index", show=["nope"], device="cpu").check()


def test_grid_png_has_one_tile_per_image(gallery, tmp_path):
    # one tile (thumbnail + gap) per image, 6 per row: 4 tiles in one row, 8 in two rows of 6
    tile = round((THUMB_INCHES + 0.14) * DEFAULT_DPI)
    retriever = Retriever(gallery / "run", gallery / "index", show=["finding"], device="cpu")
    (frame,) = retriever.search(_query(gallery, 3), k=3)
    path = retriever.grid_png(tmp_path / "grid.png", _query(gallery, 3), frame)
    with Image.open(path) as image:
        one_row = image.size  # query + 3 neighbours, one row
    (frame,) = retriever.search(_query(gallery, 3), k=7)
    with Image.open(retriever.grid_png(tmp_path / "two_rows.png", _query(gallery, 3), frame)) as im:
        two_rows = im.size
    assert abs(two_rows[0] - one_row[0] - 2 * tile) <= 2
    assert two_rows[1] > 2 * THUMB_INCHES * DEFAULT_DPI > one_row[1] > THUMB_INCHES * DEFAULT_DPI
    with pytest.raises(InputError, match="PNG"):
        retriever.grid_png(tmp_path / "grid.jpg", _query(gallery, 3), frame)


def test_grid_survives_a_neighbour_image_that_vanished(gallery, tmp_path):
    images = tmp_path / "images"
    write_pngs(images, ["a.png", "b.png", "c.png"])
    embed_images(gallery / "run", images, tmp_path / "emb", progress=False)
    build_index(tmp_path / "emb", tmp_path / "index")
    (images / "c.png").unlink()
    retriever = Retriever(gallery / "run", tmp_path / "index", device="cpu")
    (frame,) = retriever.search(images / "a.png", k=3)
    assert retriever.grid_png(tmp_path / "g.png", images / "a.png", frame).stat().st_size > 0


def test_search_images_keeps_going_and_names_grids(gallery, tmp_path):
    report = search_images(
        gallery / "run",
        gallery / "index",
        [str(_query(gallery, 0)), str(tmp_path / "none.png"), str(_query(gallery, 1))],
        k=20,
        grid=tmp_path / "g.png",
        device="cpu",
        include_self=True,
    )
    assert [len(r) for r in report.results] == [8, 0, 8]
    assert list(report.errors) == [str(tmp_path / "none.png")]
    assert [p.name for p in report.grids] == ["g-1.png", "g-3.png"]
    assert report.notes == ["k=20 is larger than the gallery (8 images): showing all 8"]


def test_build_index_joins_by_path_tail_and_lists_unmatched(gallery, tmp_path):
    meta = pd.read_csv(gallery / "meta.csv").iloc[:6]
    with pytest.warns(UserWarning, match="2 of 8 embeddings have no row"):
        summary = build_index(
            gallery / "emb",
            tmp_path / "index",
            metadata=meta,
            image_col="file",
            show_cols=["finding"],
        )
    assert summary.unmatched == ["img6", "img7"] and summary.columns == ["finding"]
    retriever = Retriever(gallery / "run", tmp_path / "index", device="cpu")
    table = retriever.table.set_index("id")
    assert pd.isna(table.loc["img7", "finding"]) and table.loc["img1", "finding"] == "COVID-19"
    assert table.loc["img1", IMAGE_PATH_COLUMN].endswith("img1.png")


def test_join_metadata_refuses_duplicates_and_no_match():
    table = pd.DataFrame({"id": ["a", "b", "a"], "x": [1, 2, 3]})
    with pytest.raises(InputError, match="id 'a' on rows 0 and 2"):
        join_metadata(["a"], table)
    with pytest.raises(InputError, match="no embedding id matches"):
        join_metadata(["zzz"], table.iloc[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame, missing = join_metadata(
            ["b", "dir/a"],
            pd.DataFrame({"path": ["x/dir/a.dcm", "b.png"], "x": [1, 2]}),
            image_col="path",
        )
    assert frame["x"].tolist() == [2, 1] and missing == []


# ----------------------------------------------------------------- the query itself
def test_query_in_the_gallery_is_left_out_and_the_list_refilled(gallery):
    retriever = Retriever(gallery / "run", gallery / "index", device="cpu")
    emb = EmbeddingSet.load(gallery / "emb")
    (frame,) = retriever.search([_query(gallery, 2)], k=5)
    similarity = emb.vectors @ emb.vectors[emb.ids.index("img2")]
    order = [emb.ids[i] for i in np.argsort(-similarity, kind="stable") if emb.ids[i] != "img2"]
    assert "img2" not in frame["id"].tolist() and frame["rank"].tolist() == [1, 2, 3, 4, 5]
    assert set(frame["id"]) == set(order[:5])
    (kept,) = retriever.search([_query(gallery, 2)], k=5, include_self=True)
    assert kept["id"].iloc[0] == "img2" and kept["id"].tolist()[1:] == frame["id"].tolist()[:4]


def test_same_file_through_another_path_is_still_the_query(gallery, tmp_path):
    retriever = Retriever(gallery / "run", gallery / "index", device="cpu")
    link = tmp_path / "alias.png"
    link.symlink_to(_query(gallery, 3))
    roundabout = gallery / "images" / ".." / "images" / f"{NAMES[3]}.png"
    for query in (link, roundabout, str(roundabout)):
        (frame,) = retriever.search(query, k=3)
        assert "img3" not in frame["id"].tolist() and len(frame) == 3
    pixels = np.asarray(Image.open(_query(gallery, 3)), dtype=np.float32) / 255
    (frame,) = retriever.search([pixels], k=3)
    assert frame["id"].iloc[0] == "img3"  # pixels have no file: nothing is left out


def test_query_named_by_a_gallery_id_is_left_out(gallery, tmp_path, monkeypatch):
    emb = EmbeddingSet.load(gallery / "emb")
    build_index(emb, tmp_path / "index")  # in memory: no image_path column, ids only
    monkeypatch.chdir(gallery / "images")
    retriever = Retriever(gallery / "run", tmp_path / "index", device="cpu")
    assert IMAGE_PATH_COLUMN not in retriever.table.columns
    (frame,) = retriever.search("img4.png", k=3)
    assert frame["id"].iloc[0] == "img4"  # the id is img4, not the file name
    renamed = EmbeddingSet([f"{i}.png" for i in emb.ids], emb.vectors, emb.config_hash)
    build_index(renamed, tmp_path / "by_name")
    retriever = Retriever(gallery / "run", tmp_path / "by_name", device="cpu")
    (frame,) = retriever.search("img4.png", k=3)
    assert "img4.png" not in frame["id"].tolist() and len(frame) == 3


def test_k_beyond_the_gallery_without_the_query(gallery, tmp_path):
    retriever = Retriever(gallery / "run", gallery / "index", device="cpu")
    with pytest.warns(UserWarning, match="returning all 8, less the query itself"):
        outside, inside = retriever.search(
            [tmp_path / "none.png", _query(gallery, 0)], k=50, on_error="empty"
        )
    assert len(inside) == 7 and "img0" not in inside["id"].tolist()
    report = search_images(
        gallery / "run",
        gallery / "index",
        [str(_query(gallery, 0)), str(_query(gallery, 1))],
        k=20,
        device="cpu",
    )
    assert [len(r) for r in report.results] == [7, 7]
    assert report.notes == [
        "k=20 is larger than the gallery (8 images): showing all 8, less "
        "the query itself where it is one"
    ]
