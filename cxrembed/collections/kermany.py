"""Read the Kermany pediatric chest X-ray collection (or its shipped 64 px demo subset).

Kermany, Zhang, Goldbaum, "Identifying medical diagnoses and treatable diseases by
image-based deep learning", Cell 2018; data: Mendeley Data v2, doi:10.17632/rscbjbr9sj.2,
CC BY 4.0. Children's frontal radiographs graded normal / bacterial / viral pneumonia.

Layout (the ``kermany_dev`` development copy and the demo subset made by
``benchmarks/make_demo_subset.py`` share it): ``labels.csv`` with ``image`` (path relative
to the folder), ``label`` (``NORMAL`` / ``PNEUMONIA``), ``subtype`` (``normal`` /
``bacteria`` / ``virus``), ``patient_id`` and optionally ``split``; images under the folder.

The returned table keeps every column and adds ``id`` (the image path, unique) and
``pneumonia`` (1 for bacteria or virus, 0 for normal). Rows left out (unknown subtype,
missing image file, listed twice) are in :attr:`KermanyCollection.excluded` with the reason.

Patient ids come from file names and are approximate (two children can share a number), so
:func:`patient_split` keeps every id on one side, which is conservative.

Examples
--------
>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> _ = (root / "a.png").write_bytes(b"x"); _ = (root / "b.png").write_bytes(b"x")
>>> _ = (root / "labels.csv").write_text("image,label,subtype,patient_id\\n"
...     "a.png,NORMAL,normal,IM-1\\nb.png,PNEUMONIA,virus,person2\\nc.png,NORMAL,normal,IM-3\\n")
>>> c = read_kermany_collection(root)
>>> c.table[["id", "subtype", "pneumonia"]].values.tolist(), c.excluded["reason"].tolist()
([['a.png', 'normal', 0], ['b.png', 'virus', 1]], ['image file not found'])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cxrembed.collections._rows import check_columns, split_rows
from cxrlabel.errors import InputError

__all__ = ["SUBTYPES", "KermanyCollection", "read_kermany_collection", "patient_split"]

#: The three graded classes, in a fixed order (normal first).
SUBTYPES: tuple[str, ...] = ("normal", "bacteria", "virus")
_REQUIRED = ("image", "subtype", "patient_id")


@dataclass(frozen=True)
class KermanyCollection:
    """The collection as one table.

    Attributes
    ----------
    root : pathlib.Path
        The folder; ``image`` paths are relative to it.
    table : pandas.DataFrame
        Kept rows: the ``labels.csv`` columns plus ``id`` and ``pneumonia``.
    excluded : pandas.DataFrame
        Rows left out: ``row`` (in labels.csv), ``image``, ``reason``.
    """

    root: Path
    table: pd.DataFrame
    excluded: pd.DataFrame


def read_kermany_collection(root: str | os.PathLike[str]) -> KermanyCollection:
    """Read ``root/labels.csv`` and check that every image is there (see the module doc).

    Raises
    ------
    InputError
        No ``labels.csv``, or a required column missing.
    """
    root = Path(root)
    source = root / "labels.csv"
    if not source.is_file():
        raise InputError(
            f"{str(root)!r} has no labels.csv; point at the kermany_dev folder (or the demo "
            "subset made by benchmarks/make_demo_subset.py)"
        )
    table = pd.read_csv(source, dtype={"patient_id": str, "image": str})
    check_columns(source, table, _REQUIRED)
    table = table.assign(id=table["image"], row=range(len(table)))
    table["subtype"] = table["subtype"].astype(str).str.strip().str.lower()
    reasons = pd.Series("", index=table.index, dtype=object)
    reasons[~table["subtype"].isin(SUBTYPES)] = f"subtype not one of {', '.join(SUBTYPES)}"
    kept, excluded = split_rows(table, reasons, root)
    kept["pneumonia"] = (kept["subtype"] != "normal").astype(int)
    return KermanyCollection(root, kept, excluded)


def patient_split(
    table: pd.DataFrame,
    *,
    test_fraction: float = 0.25,
    seed: int = 0,
    group_col: str = "patient_id",
    stratify_col: str = "subtype",
    names: tuple[str, str] = ("train", "test"),
) -> np.ndarray:
    """``train`` / ``test`` per row, whole patients on one side, stratified by subtype.

    Examples
    --------
    >>> t = pd.DataFrame({"patient_id": list("aabbccddee"), "subtype": ["normal"] * 4 +
    ...                   ["virus"] * 6})
    >>> split = patient_split(t, test_fraction=0.4, seed=0)
    >>> sorted(set(t.patient_id[split == "train"]) & set(t.patient_id[split == "test"]))
    []
    """
    from cxrembed.data.split import split_by_group

    _, test = split_by_group(
        table, group_col, val_fraction=test_fraction, seed=seed, stratify_col=stratify_col
    )
    out = np.full(len(table), names[0], dtype=object)
    out[test] = names[1]
    return out
