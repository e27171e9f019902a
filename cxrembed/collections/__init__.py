"""Readers of public radiograph collections, and a synthetic set for demos and tests.

Each reader turns a collection's own layout into one labels table (an image path column, a
patient column, label columns) that ``cxr prepare`` / ``cxr train`` read.

Modules
-------
covid
    The COVID-19 image data collection (Cohen et al.).
kermany
    The Kermany pediatric chest X-rays (normal / bacterial / viral pneumonia), and the
    64 px demo subset that ships in ``data/kermany_demo``.
synthetic
    Drawn radiograph-like images with known findings and short reports.
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports, names_by_module

# Public names by defining module, imported on first use.
_LAZY = names_by_module(
    {
        "cxrembed.collections.covid": ["CovidCollection", "read_covid_collection"],
        "cxrembed.collections.kermany": ["KermanyCollection", "read_kermany_collection"],
        "cxrembed.collections.synthetic": ["SyntheticSet", "make_synthetic_set"],
    }
)
__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports("cxrembed.collections", _LAZY)
