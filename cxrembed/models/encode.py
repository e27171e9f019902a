"""The one embedding loop: a model over batches of prepared images, without gradients.

Training (per-epoch validation), :class:`~cxrembed.inference.encoder.Encoder` and
``cxr embed`` all embed through :func:`encode_batch` / :func:`encode_dataset`, so eval mode,
the device move and the float32 output are the same everywhere.

Examples
--------
>>> import torch
>>> from cxrembed.models import EmbeddingNet
>>> net = EmbeddingNet("resnet18", embedding_dim=8)
>>> ids, vectors = encode_dataset(net, [(torch.rand(1, 32, 32), "x.png")], progress=False)
>>> ids, vectors.shape, vectors.dtype.name, net.training
(['x.png'], (1, 8), 'float32', True)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

__all__ = ["encode_batch", "encode_dataset"]

_BATCH = 32


def encode_batch(
    model: nn.Module, images: torch.Tensor, *, device: str | torch.device | None = None
) -> np.ndarray:
    """Prepared images ``(B, 1, S, S)`` -> float32 ``(B, D)`` embeddings.

    The model runs in eval mode without gradients; its training mode is restored afterwards.
    """
    with _evaluating(model):
        return _forward(model, images, _device(model, device))


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
    :func:`cxrembed.data.transforms.eval_transform_for`). The model runs in eval mode
    without gradients; its training mode is restored afterwards.
    """
    where = _device(model, device)
    batches = data if isinstance(data, torch.utils.data.DataLoader) else _batched(data, _BATCH)
    ids: list[str] = []
    parts: list[np.ndarray] = []
    with _evaluating(model):
        for batch in tqdm(batches, desc="embedding", unit="batch", disable=not progress):
            images, batch_ids = batch[0], batch[-1]
            parts.append(_forward(model, images, where))
            ids.extend(str(i) for i in batch_ids)
    dim = getattr(model, "embedding_dim", 0)
    vectors = np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)
    return ids, np.ascontiguousarray(vectors, dtype=np.float32)


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _forward(model: nn.Module, images: torch.Tensor, device: torch.device) -> np.ndarray:
    return model(images.to(device, non_blocking=True)).float().cpu().numpy()


def _device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


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
