"""Tiny run folders (config.yaml + random weights) and image folders for the embed / search
tests: no training needed, the model is a seeded resnet18 on 32 px images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
