"""Small synthetic DICOM/PNG files for the cxrembed image tests (written with pydicom/Pillow,
so the reader logic is covered on any machine)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def write_dicom(
    path: Path,
    pixels: np.ndarray | None,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    rescale: tuple[float, float] | None = None,
    window: tuple[float, float] | None = None,
    voi_function: str | None = None,
    voi_lut: tuple[Sequence[int], int, int] | None = None,
    frames: int | None = None,
    view: str | None = "PA",
    spacing: tuple[float, float] | None = (0.2, 0.25),
    sop_class: str = DigitalXRayImageStorageForPresentation,
) -> Path:
    """Write a single-frame grayscale DICOM (``pixels`` None: an object without pixel data).

    ``rescale`` is (slope, intercept); ``window`` (center, width); ``voi_lut`` is
    (table, first_mapped, bits).
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    if view:
        ds.ViewPosition = view
    if pixels is not None:
        pixels = np.asarray(pixels)
        allocated = pixels.dtype.itemsize * 8
        ds.Rows, ds.Columns = pixels.shape[-2:]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = allocated
        ds.BitsStored = bits_stored or allocated
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
        if frames:
            ds.NumberOfFrames = frames
        if spacing:
            ds.ImagerPixelSpacing = list(spacing)
        if rescale:
            ds.RescaleSlope, ds.RescaleIntercept = rescale
        if window:
            ds.WindowCenter, ds.WindowWidth = window
        if voi_function:
            ds.VOILUTFunction = voi_function
        if voi_lut:
            table, first, bits = voi_lut
            item = Dataset()
            item.LUTDescriptor = [len(table), first, bits]
            item["LUTDescriptor"].VR = "US"
            item.LUTData = [int(v) for v in table]
            item["LUTData"].VR = "US"
            ds.VOILUTSequence = DicomSequence([item])
        ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def write_png(path: Path, pixels: np.ndarray) -> Path:
    """uint8 (L), uint16 (I;16) or H x W x 3 uint8 (RGB) PNG."""
    Image.fromarray(np.asarray(pixels)).save(path)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to ``keep`` of its bytes (a download or copy that stopped midway)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def ramp(rows: int = 6, cols: int = 5, top: int = 255, dtype: str = "uint8") -> np.ndarray:
    """Deterministic test pixels spanning 0..top."""
    values = np.linspace(0, top, rows * cols).round()
    return values.reshape(rows, cols).astype(dtype)


def write_nih(images: Path, entries: Path, findings: Sequence[str]) -> None:
    """An NIH ChestX-ray14 layout: one random 48 x 40 PA image per ``findings`` entry
    (``00000000_000.png``, ...) in ``images`` and its Data_Entry table at ``entries``."""
    import pandas as pd

    rng = np.random.default_rng(0)
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, finding in enumerate(findings):
        name = f"{i:08d}_000.png"
        Image.fromarray((rng.random((48, 40)) * 255).astype("uint8")).save(images / name)
        rows.append(
            {
                "Image Index": name,
                "Finding Labels": finding,
                "Follow-up #": 0,
                "Patient ID": i,
                "Patient Age": 50,
                "Patient Gender": "F",
                "View Position": "PA",
            }
        )
    pd.DataFrame(rows).to_csv(entries, index=False)
