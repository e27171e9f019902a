"""A trained run ready to embed images: the model, its preprocessing and its config hash.

``cxr embed`` (gallery images, in batches) and ``cxr search`` (query images) must feed the
network exactly the pixels it was trained on: same reader window, same square fit, same
size, same normalisation. :class:`Encoder` holds those settings next to the model, so both
paths share one definition, and carries the run's config hash so embeddings and indexes can
be traced to the run that made them.

Examples
--------
>>> import numpy as np, torch
>>> from cxrembed.models import EmbeddingNet
>>> torch.manual_seed(0) and None
>>> enc = Encoder(EmbeddingNet("resnet18", embedding_dim=8).eval(), image_size=32)
>>> enc.encode(enc.prepare_batch([np.zeros((40, 30), np.float32)])).shape
(1, 8)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cxrembed.data.transforms import (
    DEFAULT_NORMALIZATION,
    Normalization,
    eval_transform,
    normalization_for,
)
from cxrembed.io.image import Window, read_image
from cxrembed.models.encode import encode_batch
from cxrembed.models.explain import attention_map, grad_cam
from cxrlabel.errors import InputError

__all__ = ["Encoder"]


class Encoder:
    """Images in [0, 1] -> unit-norm float32 embeddings, with the run's preprocessing.

    Parameters
    ----------
    model : torch.nn.Module
        An :class:`~cxrembed.models.EmbeddingNet` (``forward`` gives unit-norm embeddings).
    image_size : int
        Side of the square the model takes.
    fit : {"letterbox", "crop"}
        How images are fitted into the square (:mod:`cxrembed.data.square`).
    normalization : Normalization
        ``(x - mean) / std`` applied after fitting.
    window : Window
        DICOM intensity mapping used when reading files (:func:`cxrembed.io.image.read_image`).
    config_hash : str, optional
        Hash of the run's model + preprocessing settings.
    weights_sha256 : str, optional
        Fingerprint of the weights (:func:`~cxrembed.train.checkpoint.weights_sha256`):
        with ``config_hash``, what embeddings and indexes record to be searched with these
        weights only.
    device : str or torch.device
        Where the model runs (the model is expected to be there already).
    source : str
        Name of the run (its folder) for messages.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        image_size: int,
        fit: str = "letterbox",
        normalization: Normalization = DEFAULT_NORMALIZATION,
        window: Window = "auto",
        config_hash: str | None = None,
        weights_sha256: str | None = None,
        device: str | torch.device = "cpu",
        source: str = "<model>",
    ) -> None:
        self.model = model
        self.image_size = image_size
        self.fit = fit
        self.normalization = normalization
        self.window = window
        self.config_hash = config_hash
        self.weights_sha256 = weights_sha256
        self.device = torch.device(device)
        self.source = source

    @classmethod
    def from_run(
        cls,
        run_dir: str | os.PathLike[str],
        *,
        device: str | torch.device | None = "auto",
        which: str = "best",
    ) -> Encoder:
        """Load a run folder written by ``cxr train`` (model weights, config.yaml).

        ``which``: ``best`` (``model.safetensors``) or ``last`` (the latest checkpoint).

        Raises
        ------
        CxrError
            The folder is not a run, or its files are damaged (from ``open_run``).
        """
        from cxrembed.inference.run import open_run
        from cxrembed.models import resolve_device
        from cxrembed.train.config import config_hash

        where = resolve_device(device)
        model, config, weights = open_run(run_dir, device=where, which=which)  # type: ignore[arg-type]
        pre = config.preprocessing
        window: Window = (
            pre.window
            if isinstance(pre.window, str)
            else (float(pre.window[0]), float(pre.window[1]))
        )
        return cls(
            model.eval(),
            image_size=int(pre.image_size),
            fit=pre.fit,
            normalization=normalization_for(config),
            window=window,
            config_hash=config_hash(config),
            weights_sha256=weights,
            device=where,
            source=str(run_dir),
        )

    @cached_property
    def transform(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``(1, H, W)`` [0, 1] -> ``(1, S, S)`` normalised (deterministic)."""
        return eval_transform(
            self.image_size,
            fit=self.fit,  # type: ignore[arg-type]
            normalization=self.normalization,
        )

    @property
    def has_attention(self) -> bool:
        """True when the model pools with a learned attention map."""
        return getattr(self.model, "attention_pool", None) is not None

    def read(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Read one image file as the run reads it: 2-D float32 in [0, 1].

        Raises :class:`~cxrembed.errors.ImageReadError` when the file cannot be read.
        """
        return read_image(Path(path), window=self.window)[0]

    def prepare(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """One image (2-D, or ``(1, H, W)``) in [0, 1] -> the model's input ``(1, S, S)``."""
        tensor = _as_float(image)
        if tensor.ndim == 2:
            tensor = tensor[None]
        if tensor.ndim != 3 or tensor.shape[0] != 1:
            raise InputError(
                f"an image must be 2-D (rows x columns) or (1, rows, columns); got shape "
                f"{tuple(tensor.shape)}. Convert colour images to grayscale first"
            )
        _check_pixels(tensor)
        return self.transform(tensor)

    def prepare_batch(self, images: Sequence[np.ndarray | torch.Tensor]) -> torch.Tensor:
        """Several images -> ``(B, 1, S, S)``.

        A ``(B, S, S)`` array of squares already at the run's size (a cache's batch) is
        checked and normalised in one step, as each image would be; anything else image by
        image.
        """
        size = self.image_size
        if isinstance(images, np.ndarray | torch.Tensor) and images.shape[1:] == (size, size):
            tensor = _as_float(images)
            _check_pixels(tensor)
            return self.normalization(tensor[:, None])
        return torch.stack([self.prepare(image) for image in images])

    def encode(self, batch: torch.Tensor) -> np.ndarray:
        """Prepared images ``(B, 1, S, S)`` -> float32 ``(B, D)`` unit-norm embeddings."""
        return encode_batch(self.model, batch, device=self.device)

    def heatmaps(self, batch: torch.Tensor, reference: np.ndarray | None = None) -> np.ndarray:
        """Where the model looks, ``(B, h, w)`` in [0, 1] at feature-map resolution.

        The attention map for attention models (what the pooling actually weights);
        otherwise Grad-CAM of the cosine similarity to ``reference`` (one embedding, or one
        per image), or of the embedding's own strength without one.
        """
        batch = batch.to(self.device)
        if self.has_attention:
            maps = attention_map(self.model, batch)
        else:
            ref: Any = None if reference is None else torch.as_tensor(reference).to(self.device)
            maps = grad_cam(self.model, batch, reference=ref)
        maps = maps.float().cpu().numpy()
        peak = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
        return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)

    def __repr__(self) -> str:
        return (
            f"Encoder({self.source!r}, image_size={self.image_size}, fit={self.fit!r}, "
            f"config_hash={self.config_hash!r})"
        )


def _as_float(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        return image.float()
    return torch.as_tensor(np.asarray(image, dtype=np.float32))


def _check_pixels(tensor: torch.Tensor) -> None:
    if not torch.isfinite(tensor).all() or tensor.min() < 0 or tensor.max() > 1:
        raise InputError(
            "image pixels must be finite and in [0, 1] (cxrembed's convention; "
            "cxrembed.io.image.read_image gives that). Rescale, e.g. x / 255 for 8-bit pixels"
        )
