"""DICOM radiographs -> float32 [0, 1], bone bright (see :mod:`cxrembed.io.image`).

Stored values -> modality LUT (rescale slope/intercept or Modality LUT Sequence) -> VOI (VOI
LUT Sequence, else Window Center/Width, when present; see ``window``) -> [0, 1] -> inverted
when MONOCHROME1. Without a VOI the nominal range of the stored bits (``BitsStored``) maps
to [0, 1], so intensities stay comparable between images. pydicom is imported on first use.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cxrembed._deps import require
from cxrembed.errors import ImageReadError
from cxrembed.io._common import ImageMeta, Window, luma, minmax, short

__all__ = ["read_dicom", "DICOM_EXTENSIONS"]

#: Extensions read as DICOM even without the ``DICM`` preamble.
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic", ""})


def read_dicom(path: Path, window: Window) -> tuple[np.ndarray, ImageMeta]:
    pydicom = require("pydicom")
    # pydicom warns about oddities it tolerates (and about truncation before it gives up):
    # a file that decodes needs no warning; one that fails gets the warning in its reason.
    with warnings.catch_warnings(record=True) as noted:
        warnings.simplefilter("always")
        try:
            return _decode_dicom(path, pydicom.dcmread(path, force=True), window)
        except ImageReadError as exc:
            if noted:
                exc = ImageReadError(path, f"{exc.reason} [{short(noted[0].message)}]", exc.kind)
            raise exc from None
        except Exception as exc:  # pydicom raises many types on malformed headers
            reason = f"not a readable DICOM file ({short(exc)})"
            raise ImageReadError(path, reason, "corrupt") from None


def _decode_dicom(path: Path, ds: Any, window: Window) -> tuple[np.ndarray, ImageMeta]:
    if "PixelData" not in ds:
        _raise_without_pixels(path, ds)
    frames = _int_tag(ds, "NumberOfFrames", 1)
    if frames > 1:
        raise ImageReadError(
            path,
            f"multi-frame DICOM ({frames} frames); a radiograph has one frame. "
            "Split the frames into separate files first",
            "multi-frame",
        )
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422"):
        raise ImageReadError(
            path,
            f"unsupported Photometric Interpretation {photometric!r}; expected MONOCHROME1, "
            "MONOCHROME2 or RGB",
            "unsupported-photometric",
        )
    pixels = _decode_pixels(path, ds)
    bits = _int_tag(ds, "BitsStored", _int_tag(ds, "BitsAllocated", 8 * pixels.itemsize))
    if pixels.ndim == 3:  # colour DICOM (pydicom converts YBR to RGB)
        image = luma(pixels) / float(2**bits - 1)
        intensity = f"{bits}-bit"
        if window == "minmax":
            image, intensity = minmax(image), "minmax"
        inverted = False
    elif pixels.ndim == 2:
        image, intensity = _dicom_intensity(ds, pixels, bits, window)
        inverted = photometric == "MONOCHROME1"
        if inverted:
            image = 1.0 - image
    else:
        raise ImageReadError(
            path, f"unexpected pixel array shape {pixels.shape}; expected rows x columns", "corrupt"
        )
    image = np.clip(image, 0.0, 1.0, out=image)
    meta = ImageMeta(
        rows=int(image.shape[0]),
        columns=int(image.shape[1]),
        source_bits=bits,
        photometric=photometric,
        format="dicom",
        pixel_spacing=_spacing(ds),
        view_position=(str(ds.get("ViewPosition", "")).strip() or None),
        intensity=intensity,
        inverted=inverted,
    )
    return image, meta


def _raise_without_pixels(path: Path, ds: Any) -> None:
    """Tell a non-image object from a truncated file (pydicom stops silently at EOF, so a
    file cut inside its pixel data reads as a dataset without pixel data)."""
    if any(tag in ds for tag in ("Rows", "Columns", "BitsAllocated")):
        raise ImageReadError(
            path,
            "image attributes (Rows, Columns) but no complete pixel data: the file is "
            "truncated or corrupt",
            "corrupt",
        )
    sop_class = ds.get("SOPClassUID", None)
    if sop_class is None:
        raise ImageReadError(
            path, "no SOP Class UID and no pixel data: truncated, or not a DICOM file", "corrupt"
        )
    name = getattr(sop_class, "name", None) or str(sop_class)
    raise ImageReadError(
        path, f"DICOM object has no pixel data ({name}): not an image", "non-image"
    )


def _decode_pixels(path: Path, ds: Any) -> np.ndarray:
    _ensure_transfer_syntax(ds)
    syntax = ds.file_meta.TransferSyntaxUID
    syntax_name = getattr(syntax, "name", None) or str(syntax or "unknown")
    try:
        return ds.pixel_array
    except NotImplementedError as exc:
        raise ImageReadError(
            path,
            f"transfer syntax {syntax_name} ({syntax}) cannot be decoded with the installed "
            f"plugins ({short(exc)}). Convert the file (e.g. with dcmdjpeg / gdcmconv --raw) "
            "or install a pydicom decoder for it",
            "unsupported-transfer-syntax",
        ) from None
    except Exception as exc:  # truncated or corrupt pixel data: many exception types
        raise ImageReadError(
            path, f"pixel data cannot be decoded ({syntax_name}): {short(exc)}", "corrupt"
        ) from None


def _dicom_intensity(
    ds: Any, pixels: np.ndarray, bits: int, window: Window
) -> tuple[np.ndarray, str]:
    """Modality LUT, then VOI, then [0, 1]: returns the image and how it was mapped."""
    processing = require("pydicom.pixels.processing")
    values = processing.apply_modality_lut(pixels, ds)
    if window == "minmax":
        return minmax(values.astype(np.float32)), "minmax"
    if not isinstance(window, str):
        center, width = (float(v) for v in window)
        return _linear_window(values, center, width, exact=False), f"window {center:g}/{width:g}"
    if window == "auto" and ds.get("VOILUTSequence"):
        lut = _voi_lut(ds, values, processing)
        if lut is not None:
            return lut, "voi-lut"
    if window == "auto":
        windowed = _tag_window(ds, values)
        if windowed is not None:
            return windowed
    low, high = _nominal_range(ds, bits)
    image = (values.astype(np.float32) - np.float32(low)) / np.float32(high - low)
    return image, "full-range"


def _voi_lut(ds: Any, values: np.ndarray, processing: Any) -> np.ndarray | None:
    item = ds.VOILUTSequence[0]
    if item.get("LUTDescriptor") is None or item.get("LUTData") is None:
        return None
    # A VOI LUT is indexed by integer modality values; pydicom warns on float input.
    out = processing.apply_voi(np.rint(values).astype(np.int64), ds, 0)
    data = np.asarray(out, dtype=np.float32)
    lut = processing.apply_voi(np.arange(-(2**16), 2**16, dtype=np.int64), ds, 0)
    low, high = float(np.min(lut)), float(np.max(lut))
    if high <= low:
        return None
    return (data - np.float32(low)) / np.float32(high - low)


def _tag_window(ds: Any, values: np.ndarray) -> tuple[np.ndarray, str] | None:
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        return None
    center, width = _first_value(ds["WindowCenter"].value), _first_value(ds["WindowWidth"].value)
    if center is None or width is None or not np.isfinite([center, width]).all():
        return None
    function = str(ds.get("VOILUTFunction", "LINEAR")).strip().upper() or "LINEAR"
    if function == "SIGMOID" and width > 0:
        image = 1.0 / (1.0 + np.exp(-4.0 * (values.astype(np.float32) - center) / width))
        return image.astype(np.float32), f"sigmoid window {center:g}/{width:g}"
    exact = function == "LINEAR_EXACT"
    if width < (0.0 if exact else 1.0) or width == 0:
        return None  # invalid window tag: fall back to the full range
    return _linear_window(values, center, width, exact=exact), f"window {center:g}/{width:g}"


def _linear_window(values: np.ndarray, center: float, width: float, *, exact: bool) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 linear windowing, output scaled to [0, 1]."""
    if exact:
        scaled = (values.astype(np.float32) - np.float32(center)) / np.float32(width) + 0.5
    elif width <= 1:
        scaled = (values > center - 0.5).astype(np.float32)
    else:
        centre = np.float32(center - 0.5)
        scaled = (values.astype(np.float32) - centre) / np.float32(width - 1) + np.float32(0.5)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32, copy=False)


def _nominal_range(ds: Any, bits: int) -> tuple[float, float]:
    """Range of the modality output implied by the stored bits (PS3.3 C.11.1)."""
    if ds.get("ModalityLUTSequence"):
        depth = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**depth - 1)
    if _int_tag(ds, "PixelRepresentation", 0) == 0:
        low, high = 0.0, float(2**bits - 1)
    else:
        low, high = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        low, high = sorted((low * slope + intercept, high * slope + intercept))
    return low, high


def _spacing(ds: Any) -> tuple[float, float] | None:
    for tag in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(tag)
        try:
            row, col = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if row > 0 and col > 0:
            return (row, col)
    return None


def _ensure_transfer_syntax(ds: Any) -> None:
    """A dataset without file meta (no preamble) was read with a guessed encoding: record
    it, so pydicom knows how to decode the pixels."""
    uid = require("pydicom.uid")
    if getattr(ds, "file_meta", None) is None:
        ds.file_meta = require("pydicom.dataset").FileMetaDataset()
    if "TransferSyntaxUID" not in ds.file_meta:
        implicit, little = getattr(ds, "original_encoding", (True, True))
        ds.file_meta.TransferSyntaxUID = (
            uid.ImplicitVRLittleEndian
            if implicit
            else uid.ExplicitVRLittleEndian
            if little
            else uid.ExplicitVRBigEndian
        )


def _int_tag(ds: Any, keyword: str, default: int) -> int:
    try:
        return int(ds.get(keyword, default) or default)
    except (TypeError, ValueError):
        return default


def _first_value(value: Any) -> float | None:
    try:
        if isinstance(value, str | bytes) or not hasattr(value, "__len__"):
            return float(value)
        return float(value[0]) if len(value) else None
    except (TypeError, ValueError):
        return None
