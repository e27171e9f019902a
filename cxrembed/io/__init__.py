"""Reading radiographs (DICOM, PNG, JPEG) into one pixel convention: float32 in [0, 1].

Names are imported lazily, so ``import cxrembed.io`` does not import pydicom or Pillow.

Modules
-------
image
    :func:`read_image` (any format), :class:`ImageMeta`, :func:`xrv_scale`; Pillow formats.
dicom
    DICOM decoding: modality LUT, VOI / window, MONOCHROME1, transfer syntaxes.
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports, names_by_module

# Public names by defining module, imported on first use.
_LAZY = names_by_module(
    {
        "cxrembed.io.image": ["read_image", "ImageMeta", "Window", "xrv_scale", "DICOM_EXTENSIONS"],
    }
)
__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports("cxrembed.io", _LAZY)
