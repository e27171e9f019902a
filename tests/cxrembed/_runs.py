"""Tiny run folders (config.yaml + random weights) and image folders for the embed / search
tests: no training needed, the model is a seeded resnet18 on 32 px images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from cxrembed.models import build_model
from cxrembed.train.checkpoint import RunFolder
from cxrembed.train.config import RunConfig


def make_run(
    path: Path, *, seed: int = 0, image_size: int = 32, dim: int = 8, attention: bool = True
) -> Path:
    """Write a run folder whose model has seeded random weights; return its path."""
    config = RunConfig.from_dict(
        {
            "model": {"embedding_dim": dim, "attention": attention},
            "preprocessing": {"image_size": image_size},
            "labels": {"names": ["a"]},
        }
    )
    run = RunFolder(path)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(config)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = build_model(config.to_dict()["model"])
    finally:
        torch.random.set_rng_state(generator_state)
    run.save_best(model, {"epoch": 1})
    return path


def write_pngs(folder: Path, names: list[str], *, size: int = 40, seed: int = 0) -> list[Path]:
    """Distinct random-texture 8-bit PNGs (``names`` may hold sub-folders)."""
    rng = np.random.default_rng(seed)
    paths = []
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(size, size + 6), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def write_image_table(folder: Path, n: int = 24, classes: str = "abc") -> Path:
    """``n`` PNGs in ``folder`` and their table ``t.csv``: file, finding (cycling through
    ``classes``) and patient (two images each), the input of a tiny ``cxr train``."""
    names = [f"i{k}.png" for k in range(n)]
    write_pngs(folder, names)
    table = folder / "t.csv"
    pd.DataFrame(
        {
            "file": names,
            "finding": [classes[k % len(classes)] for k in range(n)],
            "patient": [f"p{k // 2}" for k in range(n)],
        }
    ).to_csv(table, index=False)
    return table


def tiny_train_argv(table: object, images: object, out: object, epochs: int = 1) -> list:
    """``cxr train`` arguments (after the command word) for a seconds-long CPU run on the
    table of :func:`write_image_table`: 32 px images, batches of 8, 8-d embeddings."""
    return [
        "--labels", table, "--images", images, "--image-col", "file", "--label-col", "finding",
        "--group-col", "patient", "-o", out, "--image-size", "32", "--epochs", str(epochs),
        "--batch-size", "8", "--embedding-dim", "8", "--device", "cpu", "-j", "1", "-q",
    ]  # fmt: skip
