"""The preprocessed cache: every bad input excluded with its reason, pixels equal to a
direct decode, resumable (a second run decodes nothing), parallel = serial, and the
dataset that reads it."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd
import pydicom
import pytest
import torch
from pydicom.encaps import encapsulate
from torch.utils.data import DataLoader

import cxrembed.data.cache as cache_module
from cxrembed.data.cache import CachedImageDataset, prepare_cache, read_cache_index
from cxrembed.data.labels import LabelOptions
from cxrembed.data.square import decode_or_reason, fit_square, quantize
from cxrembed.io.image import read_image
from cxrlabel.errors import InputError

from .._images import BASIC_TEXT_SR, ramp, truncate, write_dicom, write_png

SIZE = 16
GOOD = {"g1": "g1.png", "g2": "g2.png", "g3": "g3.dcm", "g4": "g4.dcm"}
BAD = {  # id -> (file, expected kind)
    "missing": ("missing.png", "missing"),
    "empty": ("empty.dcm", "empty"),
    "trunc_dcm": ("trunc.dcm", "corrupt"),
    "trunc_png": ("trunc.png", "corrupt"),
    "garbage": ("garbage.dcm", "corrupt"),
    "mpeg": ("mpeg.dcm", "unsupported-transfer-syntax"),
    "report": ("sr.dcm", "non-image"),
    "frames": ("mf.dcm", "multi-frame"),
    "no_image": (None, "no-image"),
}


@pytest.fixture()
def source(tmp_path):
    """A table of 13 rows: 4 good images and one row for each kind of bad input."""
    images = tmp_path / "images"
    images.mkdir()
    write_png(images / "g1.png", ramp(20, 30))
    write_png(images / "g2.png", ramp(30, 20, top=65535, dtype="uint16"))
    write_dicom(
        images / "g3.dcm",
        ramp(24, 24, top=4095, dtype="uint16"),
        bits_stored=12,
        photometric="MONOCHROME1",
        window=(2000.0, 3000.0),
    )
    write_dicom(images / "g4.dcm", ramp(12, 40))
    (images / "empty.dcm").write_bytes(b"")
    truncate(write_dicom(images / "trunc.dcm", ramp(30, 30, top=4095, dtype="uint16")), 0.6)
    noise = np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8)
    truncate(write_png(images / "trunc.png", noise), 0.5)
    (images / "garbage.dcm").write_bytes(b"this is not DICOM " * 30)
    ds = pydicom.dcmread(write_dicom(images / "mpeg.dcm", ramp()))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    ds.PixelData = encapsulate([bytes(32)])
    ds["PixelData"].VR = "OB"
    ds.save_as(images / "mpeg.dcm")
    write_dicom(images / "sr.dcm", None, sop_class=BASIC_TEXT_SR)
    write_dicom(images / "mf.dcm", np.zeros((2, 4, 4), np.uint8), frames=2)
    rows = [(i, f) for i, f in GOOD.items()] + [(i, f) for i, (f, _) in BAD.items()]
    table = pd.DataFrame({"id": [r[0] for r in rows], "file": [r[1] for r in rows]})
    table["finding"] = ["a", "b", "a", "todo"] + ["a"] * len(BAD)
    return table, images


def _prepare(source, cache_dir, **kwargs):
    table, images = source
    options = {"image_col": "file", "id_col": "id", "size": SIZE, "progress": False, **kwargs}
    return prepare_cache(table, images, cache_dir, **options)


def _pixels(cache_dir, size=SIZE, dtype="uint8"):
    info = json.loads((cache_dir / "cache.json").read_text())
    suffix = "u8" if dtype == "uint8" else "u16"
    return np.fromfile(cache_dir / f"images.{suffix}", dtype=dtype).reshape(
        info["count"], size, size
    )


class CountingDecoder:
    """Wraps the worker function to count decodes (and optionally stop after some)."""

    def __init__(self, stop_after=None):
        self.calls = 0
        self.stop_after = stop_after

    def __call__(self, *args, **kwargs):
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise KeyboardInterrupt
        self.calls += 1
        return decode_or_reason(*args, **kwargs)


def test_every_bad_input_is_excluded_with_its_reason(source, tmp_path):
    cache_dir = tmp_path / "cache"
    summary = _prepare(source, cache_dir)
    assert summary.decoded == 4 and summary.already == 0
    assert summary.rows == len(source[0]) == summary.usable + len(summary.excluded)
    kinds = dict(zip(summary.excluded["id"], summary.excluded["kind"], strict=True))
    assert kinds == {i: kind for i, (_, kind) in BAD.items()}
    on_disk = pd.read_csv(cache_dir / "excluded.csv")
    assert on_disk["id"].tolist() == summary.excluded["id"].tolist()
    assert on_disk["reason"].notna().all()
    index = read_cache_index(cache_dir)
    ok = index[index["status"] == "ok"]
    assert sorted(ok["id"]) == sorted(GOOD) and sorted(ok["slot"]) == [0, 1, 2, 3]


def test_cached_pixels_equal_a_direct_decode(source, tmp_path):
    cache_dir = tmp_path / "cache"
    _prepare(source, cache_dir)
    pixels = _pixels(cache_dir)
    index = read_cache_index(cache_dir).set_index("id")
    for row_id, name in GOOD.items():
        expected = quantize(fit_square(read_image(source[1] / name)[0], SIZE))
        np.testing.assert_array_equal(pixels[int(index.loc[row_id, "slot"])], expected)
    assert index.loc["g3", "photometric"] == "MONOCHROME1"
    assert int(index.loc["g1", "orig_rows"]) == 20 and int(index.loc["g1", "orig_cols"]) == 30


def test_second_run_does_no_decoding(source, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    first = _prepare(source, cache_dir)
    before = _pixels(cache_dir).copy()
    counter = CountingDecoder()
    monkeypatch.setattr(cache_module, "decode_or_reason", counter)
    second = _prepare(source, cache_dir)
    assert counter.calls == 0
    assert second.decoded == 0 and second.already == 4
    assert second.excluded.drop(columns="path").equals(first.excluded.drop(columns="path"))
    np.testing.assert_array_equal(_pixels(cache_dir), before)


def test_changed_file_is_decoded_again_into_its_slot(source, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    _prepare(source, cache_dir)
    slot = int(read_cache_index(cache_dir).set_index("id").loc["g1", "slot"])
    write_png(source[1] / "g1.png", np.full((20, 30), 255, np.uint8))
    os.utime(source[1] / "g1.png", ns=(1, 1))  # a different mtime even on coarse clocks
    (source[1] / "trunc.png").unlink()  # a fixed file: decoded again, succeeds
    write_png(source[1] / "trunc.png", ramp(8, 8))
    counter = CountingDecoder()
    monkeypatch.setattr(cache_module, "decode_or_reason", counter)
    summary = _prepare(source, cache_dir)
    assert counter.calls == 2 and summary.decoded == 2 and summary.already == 3
    index = read_cache_index(cache_dir).set_index("id")
    assert int(index.loc["g1", "slot"]) == slot and int(index.loc["trunc_png", "slot"]) == 4
    assert _pixels(cache_dir)[slot][8, 2:-2].min() == 255  # new pixels (letterboxed)


def test_new_rows_are_appended(source, tmp_path):
    cache_dir = tmp_path / "cache"
    table, images = source
    prepare_cache(
        table.iloc[:2], images, cache_dir, image_col="file", id_col="id", size=SIZE, progress=False
    )
    first = _pixels(cache_dir).copy()
    summary = _prepare(source, cache_dir)
    assert summary.already == 2 and summary.decoded == 2
    np.testing.assert_array_equal(_pixels(cache_dir)[:2], first)
    assert _pixels(cache_dir).shape[0] == 4


def test_interrupted_run_keeps_its_work_and_resumes(source, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    monkeypatch.setattr(cache_module, "decode_or_reason", CountingDecoder(stop_after=2))
    with pytest.raises(KeyboardInterrupt):
        _prepare(source, cache_dir)
    index = read_cache_index(cache_dir)
    assert sorted(index["id"]) == ["g1", "g2"]  # saved on the way out
    assert _pixels(cache_dir).shape[0] == 2
    counter = CountingDecoder()
    monkeypatch.setattr(cache_module, "decode_or_reason", counter)
    summary = _prepare(source, cache_dir)
    assert summary.already == 2 and summary.decoded == 2
    # all rows but the 2 cached and the 3 excluded without decoding (missing, empty, no image)
    assert counter.calls == len(source[0]) - 2 - 3


def test_two_workers_give_the_same_cache(source, tmp_path):
    _prepare(source, tmp_path / "serial", jobs=1)
    summary = _prepare(source, tmp_path / "parallel", jobs=2)
    assert summary.decoded == 4
    np.testing.assert_array_equal(_pixels(tmp_path / "serial"), _pixels(tmp_path / "parallel"))
    serial = read_cache_index(tmp_path / "serial").drop(columns="source")
    parallel = read_cache_index(tmp_path / "parallel").drop(columns="source")
    pd.testing.assert_frame_equal(serial, parallel)


def test_other_settings_are_refused_unless_overwrite(source, tmp_path):
    cache_dir = tmp_path / "cache"
    _prepare(source, cache_dir)
    with pytest.raises(InputError, match=r"size 16 \(asked 24\).*--overwrite"):
        _prepare(source, cache_dir, size=24)
    summary = _prepare(source, cache_dir, size=24, dtype="uint16", fit="crop", overwrite=True)
    assert summary.decoded == 4
    assert not (cache_dir / "images.u8").exists()
    pixels = _pixels(cache_dir, 24, "uint16")
    index = read_cache_index(cache_dir).set_index("id")
    expected = quantize(fit_square(read_image(source[1] / "g2.png")[0], 24, "crop"), "uint16")
    np.testing.assert_array_equal(pixels[int(index.loc["g2", "slot"])], expected)


def test_refuses_a_foreign_folder_and_bad_settings(source, tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not an image cache"):
        _prepare(source, tmp_path / "stuff")
    with pytest.raises(InputError, match="dtype"):
        _prepare(source, tmp_path / "c", dtype="float32")
    with pytest.raises(InputError, match="jobs"):
        _prepare(source, tmp_path / "c", jobs=-1)


def test_nothing_usable_is_an_error_after_writing_the_reasons(source, tmp_path):
    table, images = source
    bad_rows = table[table["id"].isin(BAD)]
    with pytest.raises(InputError, match="no usable row"):
        prepare_cache(
            bad_rows,
            images,
            tmp_path / "cache",
            image_col="file",
            id_col="id",
            size=SIZE,
            progress=False,
        )
    assert len(pd.read_csv(tmp_path / "cache" / "excluded.csv")) == len(BAD)


# ----------------------------------------------------------------------------- reading


def test_cached_dataset_items_and_exclusions(source, tmp_path):
    cache_dir = tmp_path / "cache"
    _prepare(source, cache_dir)
    table, _ = source
    ds = CachedImageDataset.from_table(cache_dir, table, labels=LabelOptions(label_col="finding"))
    assert ds.ids == list(GOOD) and ds.label_names == ["a", "b"]
    assert len(ds) + len(ds.excluded) == len(table)
    kinds = dict(zip(ds.excluded["id"], ds.excluded["kind"], strict=True))
    assert kinds["trunc_dcm"] == "corrupt" and kinds["missing"] == "missing"
    image, target, mask, item_id = ds[2]
    expected = quantize(fit_square(read_image(source[1] / "g3.dcm")[0], SIZE)) / 255.0
    np.testing.assert_allclose(image[0].numpy(), expected, atol=1e-6)
    assert item_id == "g3" and target.tolist() == [1.0, 0.0]
    assert ds[3][2].tolist() == [0.0, 0.0]  # 'todo' finding: unknown, masked out


def test_cached_dataset_rows_missing_from_the_cache(source, tmp_path):
    cache_dir = tmp_path / "cache"
    _prepare(source, cache_dir)
    extra = pd.DataFrame({"id": ["g1", "new"], "file": ["g1.png", "new.png"], "finding": "a"})
    ds = CachedImageDataset.from_table(cache_dir, extra, labels=LabelOptions(label_col="finding"))
    assert ds.ids == ["g1"]
    assert ds.excluded[["id", "kind"]].values.tolist() == [["new", "not-cached"]]
    with pytest.raises(InputError, match="no image cache"):
        CachedImageDataset.from_table(
            tmp_path / "nowhere", extra, labels=LabelOptions(label_col="finding")
        )


def test_cached_dataset_pickles_without_pixels_and_loads_in_workers(source, tmp_path):
    cache_dir = tmp_path / "cache"
    _prepare(source, cache_dir)
    ds = CachedImageDataset.from_table(
        cache_dir, source[0], labels=LabelOptions(label_col="finding")
    )
    first = ds[0][0]  # opens the memory map in this process
    assert len(pickle.dumps(ds)) < 20_000
    batches = list(DataLoader(ds, batch_size=2, num_workers=1))
    images = torch.cat([b[0] for b in batches])
    assert images.shape == (4, 1, SIZE, SIZE)
    torch.testing.assert_close(images[0], first)


def test_real_covid_and_dicom_cache(cxr_dev, tmp_path):
    table = pd.read_csv(cxr_dev / "covid_metadata.csv").iloc[:24]
    dicoms = pd.DataFrame(
        {"small_image": [f"dicom/{p.name}" for p in sorted((cxr_dev / "dicom").glob("*.dcm"))]}
    )
    both = pd.concat([table[["small_image"]], dicoms], ignore_index=True)
    summary = prepare_cache(
        both, cxr_dev, tmp_path / "c", image_col="small_image", size=64, jobs=2, progress=False
    )
    assert summary.decoded == 27 and len(summary.excluded) == 0
    pixels = _pixels(tmp_path / "c", 64)
    index = read_cache_index(tmp_path / "c").set_index("id")
    mono2 = pixels[int(index.loc[dicoms.small_image[2], "slot"])].astype(int)
    mono1 = pixels[int(index.loc["dicom/Fake_MONOHR1.dcm", "slot"])].astype(int)
    assert np.abs(mono1 + mono2 - 255).max() <= 1  # inverses, up to rounding
