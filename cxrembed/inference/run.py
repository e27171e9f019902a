"""Use a finished (or running) training run: rebuild its model, its preprocessing, embed.

:func:`load_run` is what ``cxr embed`` / ``cxr search`` / ``cxr evaluate`` call: it reads
``config.yaml`` (model + preprocessing + label names), rebuilds the network with
:func:`cxrembed.models.build_model`, loads ``model.safetensors`` (or the ``last``
checkpoint) and returns the model in eval mode with its :class:`RunConfig`.
:func:`eval_transform_for` gives the exact image transform the model was validated with,
and :func:`config_hash` the hash stored next to embeddings and indexes.

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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from cxrembed.data.transforms import Normalization, eval_transform
from cxrembed.errors import CheckpointError, WeightsError
from cxrembed.models import EmbeddingNet, build_model, resolve_device
from cxrembed.train.checkpoint import BEST_WEIGHTS, CONFIG_FILE, LAST_WEIGHTS, read_weights
from cxrembed.train.config import RunConfig, config_hash

__all__ = [
    "load_run",
    "read_run_config",
    "config_hash",
    "normalization_for",
    "eval_transform_for",
    "encode_dataset",
]


def read_run_config(run_dir: str | os.PathLike[str]) -> RunConfig:
    """The validated ``config.yaml`` of a run folder."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{str(run_dir)!r} is not a run folder: {CONFIG_FILE} not found. Give the --out "
            "folder of `cxr train`"
        )
    return RunConfig.from_yaml(path)


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


def normalization_for(config: RunConfig) -> Normalization:
    """The run's pixel normalisation."""
    return Normalization(config.preprocessing.mean, config.preprocessing.std)


def eval_transform_for(config: RunConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """The deterministic transform the run validates with: fit to the square, normalise.

    Examples
    --------
    >>> t = eval_transform_for(RunConfig.from_dict({"preprocessing": {"image_size": 40}}))
    >>> tuple(t(torch.rand(1, 50, 30)).shape)
    (1, 40, 40)
    """
    pre = config.preprocessing
    return eval_transform(pre.image_size, fit=pre.fit,  # type: ignore[arg-type]
                          normalization=normalization_for(config))


def encode_dataset(
    model: nn.Module,
    data: Iterable[Any],
    *,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> tuple[list[str], np.ndarray]:
    """Embed every image of ``data``; return ``(ids, float32 N x D unit vectors)``.

    ``data`` is a dataset of items ``(image, ..., id)`` (the :mod:`cxrembed.data` contract:
    ``(image, target, mask, id)``; ``(image, id)`` also works) or a ``DataLoader`` over one
    (batches ``(images, ..., ids)``). Images must already be transformed (see
    :func:`eval_transform_for`). The model runs in eval mode without gradients; its
    training mode is restored afterwards.
    """
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    batches = data if isinstance(data, torch.utils.data.DataLoader) else _batched(data, 32)
    ids: list[str] = []
    parts: list[np.ndarray] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in tqdm(batches, desc="embedding", unit="batch", disable=not progress):
                images, batch_ids = batch[0], batch[-1]
                parts.append(model(images.to(device)).float().cpu().numpy())
                ids.extend(str(i) for i in batch_ids)
    finally:
        model.train(was_training)
    dim = getattr(model, "embedding_dim", 0)
    vectors = np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)
    return ids, np.ascontiguousarray(vectors, dtype=np.float32)


def _batched(items: Iterable[Any], size: int) -> Iterable[tuple[torch.Tensor, list[str]]]:
    images: list[torch.Tensor] = []
    ids: list[str] = []
    if hasattr(items, "__len__") and hasattr(items, "__getitem__"):  # a map-style dataset
        source = items
        items = (source[i] for i in range(len(source)))
    for item in items:
        images.append(item[0])
        ids.append(item[-1])
        if len(images) == size:
            yield torch.stack(images), ids
            images, ids = [], []
    if images:
        yield torch.stack(images), ids
