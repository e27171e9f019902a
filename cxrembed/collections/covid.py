"""Read the COVID-19 image data collection (Cohen et al.) into one table.

Two layouts are recognised:

``public``
    the public repository (github.com/ieee8023/covid-chestxray-dataset): ``metadata.csv``
    with ``folder`` and ``filename`` columns, images under ``images/`` (CT scans included:
    only ``modality == "X-ray"`` rows are kept);
``cxr_dev``
    this project's development copy: ``covid_metadata.csv`` whose ``small_image`` column
    holds the path of a 256 px PNG.

The returned table keeps every metadata column and adds ``id`` (the image path relative
to the collection folder, unique), ``image`` (the same path, for ``image_col``) and
``covid`` (``COVID-19`` when the finding names COVID-19, ``other`` for any other
verified finding, blank for ``todo``/blank: unverified findings are left out of scoring).
Rows left out (CT, lateral views when asked, missing image files) are listed with the
reason in :attr:`CovidCollection.excluded`, never dropped silently.

Examples
--------
>>> c = read_covid_collection("../shared/data/cxr_dev")  # doctest: +SKIP
>>> c.layout, len(c.table), c.table["covid"].value_counts().to_dict()  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cxrembed.collections._rows import check_columns, split_rows
from cxrlabel.errors import InputError

__all__ = ["CovidCollection", "read_covid_collection", "LATERAL_VIEWS", "CLINICAL_FEATURES"]

#: Views left out with ``frontal_only=True`` (a blank view is kept).
LATERAL_VIEWS: tuple[str, ...] = ("L", "LL", "RL", "Lateral")
#: Clinical columns of the collection usable as features for outcome prediction.
CLINICAL_FEATURES: tuple[str, ...] = ("age", "sex", "temperature", "pO2_saturation")


@dataclass(frozen=True)
class CovidCollection:
    """The collection as one table.

    Attributes
    ----------
    root : pathlib.Path
        The collection folder; ``image`` paths are relative to it.
    layout : str
        ``public`` or ``cxr_dev``.
    table : pandas.DataFrame
        Kept rows: the metadata columns plus ``id``, ``image``, ``covid``.
    excluded : pandas.DataFrame
        Rows left out: ``row`` (in the metadata file), ``image``, ``reason``.
    """

    root: Path
    layout: str
    table: pd.DataFrame
    excluded: pd.DataFrame


def read_covid_collection(
    root: str | os.PathLike[str], *, frontal_only: bool = False
) -> CovidCollection:
    """Read the metadata of the collection in ``root`` (either layout, see module doc).

    Raises
    ------
    InputError
        Neither layout found, or required columns missing.
    """
    root = Path(root)
    if (root / "metadata.csv").is_file() and (root / "images").is_dir():
        layout, source = "public", root / "metadata.csv"
    elif (root / "covid_metadata.csv").is_file():
        layout, source = "cxr_dev", root / "covid_metadata.csv"
    else:
        raise InputError(
            f"{str(root)!r} holds neither the public COVID-19 image data collection layout "
            "(metadata.csv + images/) nor the cxr_dev copy (covid_metadata.csv); point at "
            "the folder that holds them"
        )
    table = pd.read_csv(source, low_memory=False)
    needed = ["patientid", "finding"] + (
        ["folder", "filename", "modality"] if layout == "public" else ["small_image"]
    )
    check_columns(source, table, needed)
    if layout == "public":
        image = table["folder"].astype(str) + "/" + table["filename"].astype(str)
    else:
        image = table["small_image"].astype(str)
    table = table.assign(id=image, image=image, row=range(len(table)))
    reasons = pd.Series("", index=table.index, dtype=object)
    if "modality" in table.columns:
        reasons[table["modality"].astype(str) != "X-ray"] = "not an X-ray (CT)"
    if frontal_only and "view" in table.columns:
        reasons[(reasons == "") & table["view"].isin(LATERAL_VIEWS)] = "lateral view"
    kept, excluded = split_rows(table, reasons, root)
    kept["covid"] = kept["finding"].map(_covid_class)
    return CovidCollection(root, layout, kept, excluded)


def _covid_class(finding: object) -> object:
    text = "" if pd.isna(finding) else str(finding).strip()
    if not text or text.lower() == "todo":
        return pd.NA
    return "COVID-19" if "covid-19" in text.lower() else "other"
