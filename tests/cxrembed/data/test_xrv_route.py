"""The torchxrayvision route: a real ``xrv.datasets`` object wrapped by XRVDataset.

torchxrayvision is installed with its own dependencies by the ``xrv`` extra (``make test``
installs it); the test skips where it is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

xrv = pytest.importorskip("torchxrayvision", exc_type=ImportError)
Image = pytest.importorskip("PIL.Image")

from cxrembed.data import XRVDataset  # noqa: E402

from .._images import write_nih  # noqa: E402

FINDINGS = ["Effusion", "No Finding", "Edema|Mass", "Cardiomegaly"]


@pytest.fixture
def nih(tmp_path):
    """An NIH ChestX-ray14 layout (images + Data_Entry csv) with four PA images."""
    write_nih(tmp_path, tmp_path / "entries.csv", FINDINGS)
    return xrv.datasets.NIH_Dataset(imgpath=str(tmp_path), csvpath=str(tmp_path / "entries.csv"))


def test_real_xrv_dataset_is_wrapped_with_its_labels_and_ids(nih) -> None:
    ds = XRVDataset.from_xrv(
        nih, label_names=["Effusion", "Edema", "Mass", "Cardiomegaly"], id_col="Image Index"
    )
    assert len(ds) == 4
    assert ds.ids == [f"{i:08d}_000.png" for i in range(4)]
    expected = [[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]]
    assert ds.labels.tolist() == expected
    image, target, mask, image_id = ds[2]
    assert image_id == "00000002_000.png"
    assert target.tolist() == [0.0, 1.0, 1.0, 0.0] and mask.tolist() == [1.0] * 4
    pixels = image.numpy()
    # XRV's [-1024, 1024] comes back to cxrkit's [0, 1], same pixels as the PNG.
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    png = np.asarray(Image.open(nih.imgpath + "/00000002_000.png"), dtype=np.float32) / 255.0
    assert pixels.shape[-2:] == png.shape
    assert np.allclose(pixels[0], png, atol=2 / 255)
