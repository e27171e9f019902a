"""Image transforms for radiographs, on 1-channel float tensors ``(1, H, W)``.

Pixel convention, defined here once: readers (:func:`cxrembed.io.image.read_image`, the cache)
give [0, 1] with bone bright; the last transform step normalises with a
:class:`Normalization` ``(x - mean) / std``. The default (mean 0.5, std 0.25) maps [0, 1]
to [-2, 2]; :data:`XRV_NORMALIZATION` (mean 0.5, std 1/2048) gives torchxrayvision's
[-1024, 1024]. The normalisation is part of a run's config: use the same one to embed.

Augmentation is light and suited to radiographs: a small random affine (rotation ±5°,
scale 0.95-1.05, translation ±3 %) and brightness/contrast jitter. No horizontal flip by
default: anatomy is not symmetric (heart on the left, ``L`` markers); ``hflip=True``
enables it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms import v2

from cxrembed.data.square import Fit, fit_square

__all__ = [
    "Normalization",
    "DEFAULT_NORMALIZATION",
    "XRV_NORMALIZATION",
    "FitSquare",
    "train_transform",
    "eval_transform",
]


@dataclass(frozen=True)
class Normalization:
    """``(x - mean) / std`` on [0, 1] images; :meth:`inverse` undoes it.

    Examples
    --------
    >>> Normalization()(torch.tensor([0.0, 0.5, 1.0])).tolist()
    [-2.0, 0.0, 2.0]
    >>> XRV_NORMALIZATION(torch.tensor([0.0, 1.0])).tolist()
    [-1024.0, 1024.0]
    """

    mean: float = 0.5
    std: float = 0.25

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return (image - self.mean) / self.std

    def inverse(self, image: torch.Tensor) -> torch.Tensor:
        """Back to [0, 1] (for display)."""
        return image * self.std + self.mean


DEFAULT_NORMALIZATION = Normalization(0.5, 0.25)
XRV_NORMALIZATION = Normalization(0.5, 1.0 / 2048.0)


@dataclass(frozen=True)
class FitSquare:
    """Fit a ``(1, H, W)`` image into ``size`` x ``size`` (see :mod:`cxrembed.data.square`)."""

    size: int
    fit: Fit = "letterbox"

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 3 or image.shape[0] != 1:
            raise ValueError(f"expected a (1, H, W) image tensor; got shape {tuple(image.shape)}")
        if image.shape[1] == image.shape[2] == self.size:
            return image
        plane = image[0].detach().cpu().numpy().astype(np.float32, copy=False)
        return torch.from_numpy(fit_square(plane, self.size, self.fit))[None]


def train_transform(
    size: int = 224,
    *,
    fit: Fit = "letterbox",
    rotation: float = 5.0,
    scale: tuple[float, float] = (0.95, 1.05),
    translate: float = 0.03,
    brightness: float = 0.1,
    contrast: float = 0.1,
    hflip: bool = False,
    normalization: Normalization = DEFAULT_NORMALIZATION,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Training transform: fit to a square, light augmentation, normalise.

    Randomness comes from torch's generator (seeded per DataLoader worker by torch).

    Examples
    --------
    >>> t = train_transform(32)
    >>> t(torch.rand(1, 40, 50)).shape
    torch.Size([1, 32, 32])
    """
    steps: list[Callable[[torch.Tensor], torch.Tensor]] = [FitSquare(size, fit)]
    if rotation or translate or tuple(scale) != (1.0, 1.0):
        steps.append(
            v2.RandomAffine(
                degrees=rotation,
                translate=(translate, translate),
                scale=tuple(scale),
                interpolation=v2.InterpolationMode.BILINEAR,
                fill=0.0,
            )
        )
    if brightness or contrast:
        steps.append(v2.ColorJitter(brightness=brightness, contrast=contrast))
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [_clamp01, normalization]
    return v2.Compose(steps)


def eval_transform(
    size: int = 224,
    *,
    fit: Fit = "letterbox",
    normalization: Normalization = DEFAULT_NORMALIZATION,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Evaluation/embedding transform: fit to a square and normalise (deterministic).

    Examples
    --------
    >>> eval_transform(4)(torch.ones(1, 4, 4)).tolist()[0][0]
    [2.0, 2.0, 2.0, 2.0]
    """
    return v2.Compose([FitSquare(size, fit), normalization])


def _clamp01(image: torch.Tensor) -> torch.Tensor:
    return image.clamp(0.0, 1.0)
