"""A tiny folder in the Kermany layout (``labels.csv`` + images), drawn here: the three
subtypes are stripe orientations (:mod:`._stripes`), so a network can learn them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ._stripes import stripes

SUBTYPES = ("normal", "bacteria", "virus")


def write_kermany(
    folder: Path,
    patients: int = 30,
    *,
    size: int = 32,
    seed: int = 0,
    split: bool = True,
    source: bool = False,
) -> pd.DataFrame:
    """One or two images per patient; ``split`` adds a patient-level train/test column.

    With ``source=True`` the images are 3-channel JPEGs named like the real collection's
    (``person<N>_<subtype>_<k>.jpeg``, ``IM-<NNNN>-<k>.jpeg``).
    """
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for p in range(patients):
        subtype = SUBTYPES[p % 3]
        for k in range(1 + p % 2):
            pixels = stripes(p % 3, rng, size)
            if source:
                stem = f"IM-{p:04d}-{k:04d}" if subtype == "normal" else f"person{p}_{subtype}_{k}"
                name = f"images/{stem}.jpeg"
                Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(folder / name, quality=95)
            else:
                name = f"images/p{p:03d}_{k}.png"
                Image.fromarray(pixels).save(folder / name)
            rows.append(
                {
                    "image": name,
                    "label": "NORMAL" if subtype == "normal" else "PNEUMONIA",
                    "subtype": subtype,
                    "patient_id": f"P{p:03d}",
                    "split": "test" if split and p % 4 == 3 else "train",
                }
            )
    table = pd.DataFrame(rows)
    if not split:
        table = table.drop(columns="split")
    table.to_csv(folder / "labels.csv", index=False)
    return table
