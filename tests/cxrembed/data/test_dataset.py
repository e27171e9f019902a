"""Datasets: the (image, target, mask, id) item contract, joining, exclusions, the uncertain
policy end to end, and the torchxrayvision-style adapter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from cxrembed.data.dataset import LabeledImageDataset, XRVDataset
from cxrembed.data.labels import LabelOptions
from cxrembed.data.transforms import eval_transform
from cxrembed.errors import ImageReadError
from cxrlabel.errors import InputError

from .._images import ramp, write_dicom, write_png


@pytest.fixture()
def labelled(tmp_path):
    """Five reports with CheXpert-style columns; images for four of them (one corrupt)."""
    images = tmp_path / "images"
    images.mkdir()
    write_png(images / "r1.png", ramp(8, 12))
    write_dicom(
        images / "r2.dcm",
        ramp(10, 10, top=4095, dtype="uint16"),
        bits_stored=12,
        photometric="MONOCHROME1",
    )
    write_png(images / "r3.png", ramp(12, 8))
    (images / "r4.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    table = pd.DataFrame(
        {
            "report_id": ["r1", "r2", "r3", "r4", "r5", "r6"],
            "Edema": [1, -1, None, 0, 1, 1],
            "Pleural Effusion": [-1, 0, 1, None, 0, 1],
            "status": ["ok", "ok", "ok", "ok", "ok", "empty"],
        }
    )
    return table, images


def _dataset(labelled, **options):
    table, images = labelled
    return LabeledImageDataset.from_table(
        table,
        images,
        id_col="report_id",
        transform=eval_transform(16),
        labels=LabelOptions(columns=("Edema", "Pleural Effusion"), **options),
    )


def test_item_contract_and_aligned_metadata(labelled):
    ds = _dataset(labelled)
    assert len(ds) == 4 and ds.ids == ["r1", "r2", "r3", "r4"]
    assert ds.label_names == ["Edema", "Pleural Effusion"]
    image, target, mask, item_id = ds[1]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32
    assert target.shape == mask.shape == (2,) and target.dtype == mask.dtype == torch.float32
    assert item_id == "r2"
    assert ds.table["report_id"].tolist() == ds.ids and ds.rows.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(ds.labels[0], [1, -1])


def test_every_row_is_kept_or_excluded_with_a_reason(labelled):
    table, _ = labelled
    ds = _dataset(labelled)
    assert len(ds) + len(ds.excluded) == len(table)
    assert ds.excluded[["row", "id", "kind"]].values.tolist() == [
        [4, "r5", "missing"],
        [5, "r6", "label-status"],
    ]


@pytest.mark.parametrize(
    "policy, edema_r2, mask_r2",
    [("ignore", 0.0, 0.0), ("zeros", 0.0, 1.0), ("ones", 1.0, 1.0), ("soft", 0.3, 1.0)],
)
def test_uncertain_policy_end_to_end(labelled, policy, edema_r2, mask_r2):
    ds = _dataset(labelled, policy=policy, soft_value=0.3)
    _, target, mask, _ = ds[1]  # r2: Edema uncertain
    assert target[0].item() == pytest.approx(edema_r2) and mask[0].item() == mask_r2
    _, target, mask, _ = ds[2]  # r3: Edema not mentioned -> negative by default
    assert target[0].item() == 0.0 and mask[0].item() == 1.0


def test_unmentioned_can_be_masked(labelled):
    ds = _dataset(labelled, unmentioned="ignore")
    assert ds[2][2][0].item() == 0.0


def test_images_follow_the_reader_convention(labelled):
    table, images = labelled
    ds = LabeledImageDataset.from_table(
        table, images, id_col="report_id", labels=LabelOptions(columns=("Edema",))
    )
    raw = ds[1][0]  # no transform: the reader's [0, 1], MONOCHROME1 inverted
    expected = 1.0 - ramp(10, 10, top=4095, dtype="uint16") / 4095.0
    np.testing.assert_allclose(raw[0].numpy(), expected, atol=1e-6)


def test_unreadable_image_is_masked_with_a_warning_or_raises(labelled):
    ds = _dataset(labelled)
    with pytest.warns(UserWarning, match="r4.png.*masked out"):
        image, _, mask, item_id = ds[3]
    assert item_id == "r4" and mask.sum() == 0 and image.shape == (1, 16, 16)
    strict = _dataset(labelled)
    strict.on_error = "raise"
    with pytest.raises(ImageReadError, match="r4.png"):
        strict[3]


def test_dataloader_batches(labelled):
    ds = _dataset(labelled)
    images, targets, masks, ids = next(iter(DataLoader(ds, batch_size=3)))
    assert images.shape == (3, 1, 16, 16) and targets.shape == masks.shape == (3, 2)
    assert list(ids) == ["r1", "r2", "r3"]


def test_categorical_label_column(tmp_path):
    for name in ("a", "b", "c"):
        write_png(tmp_path / f"{name}.png", ramp())
    table = pd.DataFrame(
        {"file": ["a.png", "b.png", "c.png"], "finding": ["COVID-19", "todo", "SARS"]}
    )
    ds = LabeledImageDataset.from_table(
        table, tmp_path, image_col="file", labels=LabelOptions(label_col="finding")
    )
    assert ds.label_names == ["COVID-19", "SARS"] and ds.unmentioned == "ignore"
    assert ds.mask.tolist() == [[1, 1], [0, 0], [1, 1]]
    assert ds.targets.tolist() == [[1, 0], [0, 0], [0, 1]]


def test_nothing_usable_is_a_clear_error(tmp_path):
    table = pd.DataFrame({"id": ["x", "y"], "Edema": [1, 0]})
    with pytest.raises(InputError, match=r"no usable row.*all 2 rows.*missing: 2"):
        LabeledImageDataset.from_table(
            table, tmp_path, id_col="id", labels=LabelOptions(columns=("Edema",))
        )


# ----------------------------------------------------------------------------- XRV adapter


class FakeXRV:
    """The torchxrayvision dataset protocol, without torchxrayvision."""

    pathologies = ["Atelectasis", "Effusion", "Edema"]

    def __init__(self):
        self.labels = np.array([[1, 0, np.nan], [np.nan, 1, 0]], dtype=np.float32)
        self.csv = pd.DataFrame({"dicom_id": ["d0", "d1"]})

    def __len__(self):
        return 2

    def __getitem__(self, index):
        img = np.full((1, 6, 6), -1024.0 + 2048.0 * index, dtype=np.float32)
        return {"img": img, "lab": self.labels[index], "idx": index}


def test_xrv_adapter_relabels_rescales_and_masks_nan():
    ds = XRVDataset.from_xrv(
        FakeXRV(), label_names=["Edema", "Effusion", "Mass"], id_col="dicom_id"
    )
    assert ds.ids == ["d0", "d1"] and ds.label_names == ["Edema", "Effusion", "Mass"]
    image, target, mask, item_id = ds[1]
    assert image.shape == (1, 6, 6) and float(image.max()) == 1.0  # 1024 -> 1
    assert float(ds[0][0].max()) == 0.0  # -1024 -> 0
    assert target.tolist() == [0.0, 1.0, 0.0] and mask.tolist() == [1.0, 1.0, 0.0]
    assert item_id == "d1"


def test_xrv_adapter_rejects_other_objects():
    with pytest.raises(InputError, match="pathologies"):
        XRVDataset.from_xrv(object())
    broken = FakeXRV()
    broken.labels = np.zeros((2, 5))
    with pytest.raises(InputError, match=r"shape \(2, 5\)"):
        XRVDataset.from_xrv(broken)
    with pytest.raises(InputError, match="id_col"):
        XRVDataset.from_xrv(FakeXRV(), id_col="nope")


def test_real_covid_table_with_finding_labels(cxr_dev):
    ds = LabeledImageDataset.from_table(
        cxr_dev / "covid_metadata.csv",
        image_col="small_image",
        labels=LabelOptions(label_col="finding"),
        transform=eval_transform(64),
    )
    assert len(ds) + len(ds.excluded) == 398 and len(ds) == 398
    assert "COVID-19" in ds.label_names and "todo" not in ds.label_names
    assert int((ds.mask.sum(axis=1) == 0).sum()) == int((ds.table["finding"] == "todo").sum())
    image, target, mask, item_id = ds[0]
    assert image.shape == (1, 64, 64) and item_id.startswith("covid_images_256/")
