"""Read a radiograph (DICOM, PNG, JPEG, ...) into one pixel convention: float32 in [0, 1].

Everything downstream (cache, datasets, transforms, models) sees the same range, with bone
bright and air dark (MONOCHROME2 sense), whatever the source:

* DICOM: stored values -> modality LUT (rescale slope/intercept or Modality LUT Sequence)
  -> VOI (VOI LUT Sequence, else Window Center/Width, when present; see ``window``) ->
  [0, 1] -> inverted when MONOCHROME1. Without a VOI the nominal range of the stored bits
  (``BitsStored``) maps to [0, 1], so intensities stay comparable between images.
* PNG/JPEG/other Pillow formats: 8-bit divided by 255, 16-bit by 65535, colour converted
  to grayscale (ITU-R 601 luma).

torchxrayvision models expect [-1024, 1024] instead: :func:`xrv_scale` converts.

Unreadable input raises :class:`~cxrembed.errors.ImageReadError` (one type; its ``kind``
says why, its message names the file and the reason).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cxrembed._deps import require
from cxrembed.errors import ImageReadError

__all__ = ["ImageMeta", "Window", "read_image", "xrv_scale", "DICOM_EXTENSIONS"]

#: ``"auto"``: the file's VOI LUT or window when present, else the full stored range;
#: ``"none"``: always the full stored range; ``"minmax"``: stretch this image's own
#: min..max; ``(center, width)``: this linear window, in modality (rescaled) units.
Window = Literal["auto", "none", "minmax"] | tuple[float, float]

#: Extensions read as DICOM even without the ``DICM`` preamble.
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic", ""})

_PILLOW_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"})
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_XRV_MAX = 1024.0


@dataclass(frozen=True)
class ImageMeta:
    """What :func:`read_image` learned about the source image.

    Attributes
    ----------
    rows, columns : int
        Size of the returned array (the source image size).
    source_bits : int
        Bit depth of the stored pixels (DICOM ``BitsStored``; 8 or 16 for PNG/JPEG).
    photometric : str
        DICOM Photometric Interpretation, or the Pillow mode (``"L"``, ``"I;16"``, ``"RGB"``).
    format : str
        ``"dicom"`` or the Pillow format name in lower case (``"png"``, ``"jpeg"``...).
    pixel_spacing : tuple of float or None
        Row and column spacing in mm (DICOM ``PixelSpacing`` or ``ImagerPixelSpacing``).
    view_position : str or None
        DICOM ``ViewPosition`` (``"PA"``, ``"AP"``, ``"LL"``...) when present.
    intensity : str
        How values were mapped to [0, 1]: ``"voi-lut"``, ``"window C/W"``,
        ``"full-range"``, ``"minmax"`` or ``"8-bit"``/``"16-bit"``.
    inverted : bool
        True when the source was MONOCHROME1 and was inverted.
    """

    rows: int
    columns: int
    source_bits: int
    photometric: str
    format: str
    pixel_spacing: tuple[float, float] | None = None
    view_position: str | None = None
    intensity: str = "full-range"
    inverted: bool = False

    @property
    def size(self) -> tuple[int, int]:
        """``(rows, columns)``."""
        return (self.rows, self.columns)


def read_image(
    path: str | os.PathLike[str], *, window: Window = "auto"
) -> tuple[np.ndarray, ImageMeta]:
    """Read one radiograph as a float32 2-D array in [0, 1] (rows x columns) and its metadata.

    Parameters
    ----------
    path : path-like
        DICOM (recognised by its ``DICM`` preamble or a ``.dcm``/``.dicom`` extension), PNG,
        JPEG or any single-frame format Pillow reads.
    window : {"auto", "none", "minmax"} or (center, width)
        DICOM intensity mapping (see :data:`Window`); ignored for other formats except
        ``"minmax"``.

    Returns
    -------
    image : numpy.ndarray
        float32, shape ``(rows, columns)``, values in [0, 1], bone bright.
    meta : ImageMeta

    Raises
    ------
    ImageReadError
        The file is missing, empty, truncated or corrupt, in an unsupported format or
        transfer syntax, multi-frame, or a DICOM object without an image.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> png = pathlib.Path(tempfile.mkdtemp()) / "x.png"
    >>> Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).save(png)
    >>> image, meta = read_image(png)
    >>> image.tolist(), meta.size, meta.source_bits
    ([[0.0, 1.0]], (1, 2), 8)
    """
    path = Path(path)
    _check_window(window)
    head = _read_head(path)
    if _looks_like_dicom(path, head):
        return _read_dicom(path, window)
    return _read_pillow(path, window, head)


def xrv_scale(image: np.ndarray) -> np.ndarray:
    """Map a [0, 1] image to torchxrayvision's [-1024, 1024] pixel convention.

    Examples
    --------
    >>> xrv_scale(np.array([0.0, 0.5, 1.0], dtype=np.float32)).tolist()
    [-1024.0, 0.0, 1024.0]
    """
    return (np.asarray(image, dtype=np.float32) * (2 * _XRV_MAX) - _XRV_MAX).astype(np.float32)


def _check_window(window: Window) -> None:
    if isinstance(window, str):
        if window not in ("auto", "none", "minmax"):
            raise ValueError(
                f"window must be 'auto', 'none', 'minmax' or (center, width); got {window!r}"
            )
        return
    if len(window) != 2 or not float(window[1]) > 0:
        raise ValueError(f"window (center, width) needs a positive width; got {window!r}")


def _looks_like_dicom(path: Path, head: bytes) -> bool:
    """By content first: PNG/JPEG signatures, the DICM preamble; then the extension; then
    a bare dataset's first tag (group 0002 or 0008, little endian), for files named by UID."""
    if head.startswith((_PNG_MAGIC, _JPEG_MAGIC)):
        return False
    if head[128:132] == b"DICM" or path.suffix.lower() in DICOM_EXTENSIONS:
        return True
    return path.suffix.lower() not in _PILLOW_EXTENSIONS and head[:2] in (b"\x02\x00", b"\x08\x00")


def _read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except FileNotFoundError:
        raise ImageReadError(path, "file not found", "missing") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a folder, not an image file", "not-a-file") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot open: {exc.strerror or exc}", "unreadable") from None
    if not head:
        raise ImageReadError(path, "file is empty (0 bytes)", "empty")
    return head


# ----------------------------------------------------------------------------- DICOM


def _read_dicom(path: Path, window: Window) -> tuple[np.ndarray, ImageMeta]:
    pydicom = require("pydicom")
    # pydicom warns about oddities it tolerates (and about truncation before it gives up):
    # a file that decodes needs no warning; one that fails gets the warning in its reason.
    with warnings.catch_warnings(record=True) as noted:
        warnings.simplefilter("always")
        try:
            return _decode_dicom(path, pydicom.dcmread(path, force=True), window)
        except ImageReadError as exc:
            if noted:
                exc = ImageReadError(path, f"{exc.reason} [{_short(noted[0].message)}]", exc.kind)
            raise exc from None
        except Exception as exc:  # pydicom raises many types on malformed headers
            reason = f"not a readable DICOM file ({_short(exc)})"
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
        image = _luma(pixels) / float(2**bits - 1)
        intensity = f"{bits}-bit"
        if window == "minmax":
            image, intensity = _minmax(image), "minmax"
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
    raise ImageReadError(path, f"DICOM object has no pixel data ({name}): not an image",
                         "non-image")


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
            f"plugins ({_short(exc)}). Convert the file (e.g. with dcmdjpeg / gdcmconv --raw) "
            "or install a pydicom decoder for it",
            "unsupported-transfer-syntax",
        ) from None
    except Exception as exc:  # truncated or corrupt pixel data: many exception types
        raise ImageReadError(
            path, f"pixel data cannot be decoded ({syntax_name}): {_short(exc)}", "corrupt"
        ) from None


def _dicom_intensity(
    ds: Any, pixels: np.ndarray, bits: int, window: Window
) -> tuple[np.ndarray, str]:
    """Modality LUT, then VOI, then [0, 1]: returns the image and how it was mapped."""
    processing = require("pydicom.pixels.processing")
    values = processing.apply_modality_lut(pixels, ds)
    if window == "minmax":
        return _minmax(values.astype(np.float32)), "minmax"
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
            uid.ImplicitVRLittleEndian if implicit
            else uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian
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


# ----------------------------------------------------------------------------- Pillow

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def _read_pillow(path: Path, window: Window, head: bytes) -> tuple[np.ndarray, ImageMeta]:
    pil = require("PIL.Image")
    try:
        with pil.open(path) as img:
            if getattr(img, "n_frames", 1) > 1:
                raise ImageReadError(
                    path,
                    f"multi-frame image ({img.n_frames} frames); expected a single image",
                    "multi-frame",
                )
            img.load()
            fmt = (img.format or path.suffix.lstrip(".") or "unknown").lower()
            mode = img.mode
            image, bits = _pillow_pixels(path, img)
    except ImageReadError:
        raise
    except pil.UnidentifiedImageError:
        if head.startswith((_PNG_MAGIC, _JPEG_MAGIC)):
            reason = "PNG/JPEG signature but an unreadable header: truncated or corrupt file"
            raise ImageReadError(path, reason, "corrupt") from None
        raise ImageReadError(
            path,
            "not an image format this reader knows (expected DICOM, PNG or JPEG)",
            "unsupported-format",
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, pil.DecompressionBombError) as exc:
        # Pillow reports truncated or corrupt files with these types.
        reason = f"truncated or corrupt {path.suffix or 'image'} file: {_short(exc)}"
        raise ImageReadError(path, reason, "corrupt") from None
    intensity = f"{bits}-bit"
    if window == "minmax":
        image, intensity = _minmax(image), "minmax"
    meta = ImageMeta(
        rows=int(image.shape[0]),
        columns=int(image.shape[1]),
        source_bits=bits,
        photometric=mode,
        format=fmt,
        intensity=intensity,
    )
    return np.clip(image, 0.0, 1.0, out=image), meta


def _pillow_pixels(path: Path, img: Any) -> tuple[np.ndarray, int]:
    mode = img.mode
    if mode == "L":
        return np.asarray(img, dtype=np.float32) / np.float32(255.0), 8
    if mode in _SIXTEEN_BIT_MODES:
        return np.asarray(img).astype(np.float32) / np.float32(65535.0), 16
    if mode == "I":  # 32-bit integer: what Pillow gives some 16-bit files
        data = np.asarray(img)
        if data.size and (data.min() < 0 or data.max() > 65535):
            raise ImageReadError(
                path,
                f"32-bit integer pixels outside 0..65535 (found {data.min()}..{data.max()}); "
                "expected 8- or 16-bit grayscale",
                "unsupported-format",
            )
        return data.astype(np.float32) / np.float32(65535.0), 16
    if mode == "F":
        return _minmax(np.asarray(img, dtype=np.float32)), 32
    if mode in ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
        return _luma(rgb) / np.float32(255.0), 8
    return np.asarray(img.convert("L"), dtype=np.float32) / np.float32(255.0), 8


# ----------------------------------------------------------------------------- helpers


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, the weights Pillow's ``convert("L")`` uses."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return rgb.astype(np.float32, copy=False) @ weights


def _minmax(image: np.ndarray) -> np.ndarray:
    low, high = float(np.min(image)), float(np.max(image))
    if high <= low:
        return np.zeros_like(image, dtype=np.float32)
    return ((image - np.float32(low)) / np.float32(high - low)).astype(np.float32, copy=False)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
