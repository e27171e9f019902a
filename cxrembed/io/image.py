"""Read a radiograph (DICOM, PNG, JPEG, ...) into one pixel convention: float32 in [0, 1].

Everything downstream (cache, datasets, transforms, models) sees the same range, with bone
bright and air dark (MONOCHROME2 sense), whatever the source:

* DICOM: stored values -> modality LUT (rescale slope/intercept or Modality LUT Sequence)
  -> VOI (VOI LUT Sequence, else Window Center/Width, when present; see ``window``) ->
  [0, 1] -> inverted when MONOCHROME1. Without a VOI the nominal range of the stored bits
  (``BitsStored``) maps to [0, 1], so intensities stay comparable between images
  (:mod:`cxrembed.io.dicom`).
* PNG/JPEG/other Pillow formats: 8-bit divided by 255, 16-bit by 65535, colour converted
  to grayscale (ITU-R 601 luma).

torchxrayvision models expect [-1024, 1024] instead: :func:`xrv_scale` converts.

Unreadable input raises :class:`~cxrembed.errors.ImageReadError` (one type; its ``kind``
says why, its message names the file and the reason).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cxrembed._deps import require
from cxrembed.errors import ImageReadError
from cxrembed.io._common import ImageMeta, Window, luma, minmax, short
from cxrembed.io.dicom import DICOM_EXTENSIONS, read_dicom
from cxrlabel.vocab import check_window

__all__ = ["ImageMeta", "Window", "read_image", "xrv_scale", "DICOM_EXTENSIONS"]

_PILLOW_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"})
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_XRV_MAX = 1024.0


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
    window = check_window(window, "window")  # an InputError, so also a ValueError
    head = _read_head(path)
    if _looks_like_dicom(path, head):
        return read_dicom(path, window)
    return _read_pillow(path, window, head)


def xrv_scale(image: np.ndarray) -> np.ndarray:
    """Map a [0, 1] image to torchxrayvision's [-1024, 1024] pixel convention.

    Examples
    --------
    >>> xrv_scale(np.array([0.0, 0.5, 1.0], dtype=np.float32)).tolist()
    [-1024.0, 0.0, 1024.0]
    """
    return (np.asarray(image, dtype=np.float32) * (2 * _XRV_MAX) - _XRV_MAX).astype(np.float32)


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
        reason = f"truncated or corrupt {path.suffix or 'image'} file: {short(exc)}"
        raise ImageReadError(path, reason, "corrupt") from None
    intensity = f"{bits}-bit"
    if window == "minmax":
        image, intensity = minmax(image), "minmax"
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
        return minmax(np.asarray(img, dtype=np.float32)), 32
    if mode in ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
        return luma(rgb) / np.float32(255.0), 8
    return np.asarray(img.convert("L"), dtype=np.float32) / np.float32(255.0), 8


# ----------------------------------------------------------------------------- helpers
