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
import warnings
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
    weights_sha256,
)
from cxrembed.train.config import RunConfig, config_hash
from cxrlabel.checksums import ALGORITHM

__all__ = [
    "load_run",
    "open_run",
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
    model, config, _ = open_run(run_dir, which=which, device=device)
    return model, config


def open_run(
    run_dir: str | os.PathLike[str],
    *,
    which: Literal["best", "last"] = "best",
    device: str | torch.device | None = "cpu",
) -> tuple[EmbeddingNet, RunConfig, str]:
    """:func:`load_run`, plus the fingerprint of the weights loaded
    (:func:`~cxrembed.train.checkpoint.weights_sha256`): what embeddings and indexes record
    so that they are only searched with these weights.

    The weights file is checked against the fingerprint and config hash it recorded when
    saved; weights saved before fingerprints existed load with a note.
    """
    if which not in ("best", "last"):
        raise CheckpointError(f"which must be 'best' or 'last'; got {which!r}")
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    source = str(run_dir / CONFIG_FILE)
    model = build_model(config.to_dict()["model"], source=source)
    path = run_dir / (BEST_WEIGHTS if which == "best" else LAST_WEIGHTS)
    if not path.is_file():
        raise CheckpointError(_missing_weights(path, which))
    state, meta = read_weights(path)
    recorded = meta.get("config_hash")
    if recorded is not None and recorded != config_hash(config):
        raise CheckpointError(
            f"{str(path)!r} was saved by a run with config hash {recorded!r}, but {source} "
            f"describes {config_hash(config)!r}: the config was edited after training, or the "
            "weights were copied from another run. Fix: restore the run's own config.yaml or "
            "weights"
        )
    fingerprint = meta.get(ALGORITHM)
    if fingerprint is None:
        warnings.warn(
            f"{str(path)!r} records no fingerprint (saved by an older cxrkit): it cannot be "
            "checked for damage. Train again to add one",
            UserWarning,
            stacklevel=3,
        )
        fingerprint = weights_sha256(state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise WeightsError(
            f"{str(path)!r} does not fit the model described in {source} ({first}); the "
            "config and weights are from different runs"
        ) from None
    return model.to(resolve_device(device)).eval(), config, fingerprint


def _missing_weights(path: Path, which: str) -> str:
    """Say what to do about a missing weights file, with commands that exist."""
    if which != "best":
        return f"weights file {str(path)!r} not found"
    if path.with_name(LAST_WEIGHTS).is_file():
        return (
            f"weights file {str(path)!r} not found (no epoch has finished yet, or the file was "
            "deleted). Fix: use the latest checkpoint instead (--checkpoint last in cxr embed "
            "and cxr search; which='last' in Python), or restore the file from a copy of the "
            "run folder"
        )
    return (
        f"weights file {str(path)!r} not found, nor {LAST_WEIGHTS} (the run never saved a "
        "checkpoint, or they were deleted). Fix: restore them from a copy of the run folder, "
        "or train again"
    )
