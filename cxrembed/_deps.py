"""Lazy imports of the heavy optional dependencies, with an install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from cxrlabel.errors import MissingExtraError

__all__ = ["require"]


def require(module: str, extra: str = "embed") -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install.

    Examples
    --------
    >>> require("math").sqrt(4.0)
    2.0
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], extra) from exc
