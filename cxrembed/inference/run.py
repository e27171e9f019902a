"""Use a finished (or running) training run: rebuild its model, its preprocessing, embed.

:func:`load_run` is what ``cxr embed`` / ``cxr search`` / ``cxr evaluate`` call: it reads
``config.yaml`` (model + preprocessing + label names), rebuilds the network with
:func:`cxrembed.models.build_model`, loads ``model.safetensors`` (or the ``last``
checkpoint) and returns the model in eval mode with its :class:`RunConfig`.
:func:`eval_transform_for` gives the exact image transform the model was validated with,
and :func:`config_hash` the hash stored next to embeddings and indexes. Those, the config
reader and :func:`encode_dataset` are defined where training also uses them
(:mod:`cxrembed.data.transforms`, :mod:`cxrembed.train.checkpoint`,
:mod:`cxrembed.train.config`, :mod:`cxrembed.models.encode`) and re-exported here, so
training never imports inference.

Examples
--------
>>> import tempfile, torch
>>> from cxrembed.models import build_model
>>> from cxrembed.train.checkpoint import RunFolder
>>> run = RunFolder(tempfile.mkdtemp())
>>> cfg = RunConfig.from_dict({"model": {"embedding_dim": 8}, "labels": {"names": ["a"]}})
>>> run.write_config(cfg)
>>> run.save_best(build_model(cfg.to_dict()["model"]), {"epoch": 1})
>>> model, config = load_run(run.path)
>>> ids, vectors = encode_dataset(model, [(torch.rand(1, 32, 32), "x.png")], progress=False)
>>> ids, vectors.shape, vectors.dtype.name
(['x.png'], (1, 8), 'float32')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import torch

from cxrembed.data.transforms import eval_transform_for, normalization_for
from cxrembed.errors import CheckpointError, WeightsError
from cxrembed.models import EmbeddingNet, build_model, resolve_device
from cxrembed.models.encode import encode_dataset
from cxrembed.train.checkpoint import (
    BEST_WEIGHTS,
    CONFIG_FILE,
    LAST_WEIGHTS,
    read_run_config,
    read_weights,
)
from cxrembed.train.config import RunConfig, config_hash

__all__ = [
    "load_run",
    "read_run_config",
    "config_hash",
    "normalization_for",
    "eval_transform_for",
    "encode_dataset",
]


def load_run(
    run_dir: str | os.PathLike[str],
    *,
    which: Literal["best", "last"] = "best",
    device: str | torch.device | None = "cpu",
) -> tuple[EmbeddingNet, RunConfig]:
    """Rebuild a run's model with its weights; return ``(model in eval mode, config)``.

    Parameters
    ----------
    run_dir : path
        A ``cxr train`` output folder.
    which : {"best", "last"}
        ``model.safetensors`` (best by validation retrieval) or the ``last`` checkpoint.
    device : str or torch.device, optional
        Where to put the model (``"auto"``: CUDA when available).

    Returns
    -------
    model : EmbeddingNet
    config : RunConfig
        ``config.preprocessing`` holds image size and normalisation (see
        :func:`eval_transform_for`), ``config.labels.names`` the label columns.

    Raises
    ------
    CheckpointError
        Not a run folder, weights missing or unreadable.
    WeightsError
        The weights do not fit the model the config describes.
    """
    if which not in ("best", "last"):
        raise CheckpointError(f"which must be 'best' or 'last'; got {which!r}")
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    source = str(run_dir / CONFIG_FILE)
    model = build_model(config.to_dict()["model"], source=source)
    path = run_dir / (BEST_WEIGHTS if which == "best" else LAST_WEIGHTS)
    if not path.is_file():
        hint = (" (no epoch has finished yet; use which='last' for the checkpoint of an "
                "interrupted first epoch)") if which == "best" else ""
        raise CheckpointError(f"weights file {str(path)!r} not found{hint}")
    state, _ = read_weights(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise WeightsError(
            f"{str(path)!r} does not fit the model described in {source} ({first}); the "
            "config and weights are from different runs"
        ) from None
    return model.to(resolve_device(device)).eval(), config
