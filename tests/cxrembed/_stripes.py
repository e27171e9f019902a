"""A tiny synthetic training set for the training tests: stripes in three orientations.

Class ``a`` has vertical stripes, ``b`` horizontal, ``c`` diagonal, each with a random
phase and pixel noise, so a network must learn orientation (an untrained one retrieves
about at chance) and can learn it in a few dozen steps at 32 px.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

CLASSES = ("a", "b", "c")


def stripes(cls: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """One 8-bit image of class ``cls`` (0, 1, 2)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    coord = (x, y, (x + y) / np.sqrt(2.0))[cls]
    value = 0.5 + 0.2 * np.sin(0.8 * coord + rng.uniform(0, 2 * np.pi))
    value = value + rng.normal(0.0, 0.15, (size, size))
    return (np.clip(value, 0.0, 1.0) * 255).astype(np.uint8)


def write_stripes(
    folder: Path, count: int = 24, *, seed: int = 0, size: int = 32, val_every: int | None = None
) -> pd.DataFrame:
    """Write ``count`` PNGs to ``folder``; return the labels table.

    Columns: ``file``, ``finding`` (a / b / c in turn), ``patient`` (one per image) and
    ``split`` (``val`` for every ``val_every``-th image, else ``train``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        cls = i % len(CLASSES)
        Image.fromarray(stripes(cls, rng, size)).save(folder / f"img{i:03d}.png")
        val = val_every is not None and i % val_every == val_every - 1
        rows.append(
            {
                "file": f"img{i:03d}.png",
                "finding": CLASSES[cls],
                "patient": f"p{i:03d}",
                "split": "val" if val else "train",
            }
        )
    return pd.DataFrame(rows)


#: Overrides for a fast run on the stripes (32 px, resnet18, no loader workers).
FAST = {
    "image_col": "file",
    "label_col": "finding",
    "split_col": "split",
    "group_col": "patient",
    "image_size": 32,
    "embedding_dim": 16,
    "batch_size": 12,
    "m": 4,
    "num_workers": 0,
    "lr": 1e-3,
    "head_lr": 1e-2,
    "warmup_epochs": 0.0,
}


def train_fast(
    table: pd.DataFrame,
    out: Path,
    images: Path,
    *,
    progress: bool = False,
    resume: bool = False,
    **settings: object,
) -> Any:
    """:func:`cxrembed.train.train` on the stripes with :data:`FAST` plus ``settings``
    (e.g. ``epochs=2, batches_per_epoch=2``); quiet unless ``progress``."""
    from cxrembed.train import train

    overrides = {**FAST, **settings}
    return train(table, out, images=images, progress=progress, resume=resume, overrides=overrides)
