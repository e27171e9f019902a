"""Reading radiographs (DICOM, PNG, JPEG) into one pixel convention: float32 in [0, 1].

Names are imported lazily, so ``import cxrembed.io`` does not import pydicom or Pillow.

Modules
-------
image
    :func:`read_image`, :class:`ImageMeta`, :func:`xrv_scale`.
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports

__all__ = [
    "read_image",
    "ImageMeta",
    "Window",
    "xrv_scale",
    "DICOM_EXTENSIONS",
]

_LAZY = {
    "read_image": "cxrembed.io.image",
    "ImageMeta": "cxrembed.io.image",
    "Window": "cxrembed.io.image",
    "xrv_scale": "cxrembed.io.image",
    "DICOM_EXTENSIONS": "cxrembed.io.image",
}

__getattr__, __dir__ = lazy_exports("cxrembed.io", _LAZY)
