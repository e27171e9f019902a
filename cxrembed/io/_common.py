"""What every reader shares: the metadata record, the DICOM window type, pixel helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["ImageMeta", "Window", "luma", "minmax", "short", "plane"]

#: ``"auto"``: the file's VOI LUT or window when present, else the full stored range;
#: ``"none"``: always the full stored range; ``"minmax"``: stretch this image's own
#: min..max; ``(center, width)``: this linear window, in modality (rescaled) units.
Window = Literal["auto", "none", "minmax"] | tuple[float, float]


@dataclass(frozen=True)
class ImageMeta:
    """What :func:`~cxrembed.io.image.read_image` learned about the source image.

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


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, the weights Pillow's ``convert("L")`` uses."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return rgb.astype(np.float32, copy=False) @ weights


def minmax(image: np.ndarray) -> np.ndarray:
    low, high = float(np.min(image)), float(np.max(image))
    if high <= low:
        return np.zeros_like(image, dtype=np.float32)
    return ((image - np.float32(low)) / np.float32(high - low)).astype(np.float32, copy=False)


def short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def plane(image: Any) -> np.ndarray:
    """``image`` (array or tensor) as float32, a leading single channel dropped:
    ``(1, H, W)`` -> ``(H, W)``. Callers check that the result is 2-D.

    Examples
    --------
    >>> plane(np.zeros((1, 2, 3))).shape, plane(np.zeros((3, 2, 3))).shape
    ((2, 3), (3, 2, 3))
    """
    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    array = np.asarray(image, dtype=np.float32)
    return array[0] if array.ndim == 3 and array.shape[0] == 1 else array
