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

:class:`BatchAugment` applies it to a whole batch of fitted squares at once (one
``grid_sample`` for every image's own affine, vectorised jitter), with the randomness of
an explicit generator: training calls it once per batch, because per image (torchvision's
``RandomAffine`` and ``ColorJitter`` one at a time) the loader took a sixth of a CPU
training step at 64 px. :func:`train_transform` is the same augmentation for one image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from cxrembed.data.square import Fit, fit_square

__all__ = [
    "Normalization",
    "DEFAULT_NORMALIZATION",
    "XRV_NORMALIZATION",
    "FitSquare",
    "AugmentParams",
    "BatchAugment",
    "train_transform",
    "eval_transform",
    "normalization_for",
    "eval_transform_for",
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


@dataclass(frozen=True)
class AugmentParams:
    """The draws of :meth:`BatchAugment.sample` for a batch of ``B`` images (CPU tensors).

    ``angle`` (B,) degrees (positive turns clockwise, as ``v2.functional.affine``),
    ``translate`` (B, 2) whole pixels ``(x right, y down)``, ``scale`` (B,), ``brightness``
    and ``contrast`` (B,) factors (1: unchanged), ``brightness_first`` (B,) bool (the order
    of the two, random as in ``ColorJitter``), ``flip`` (B,) bool.
    """

    angle: torch.Tensor
    translate: torch.Tensor
    scale: torch.Tensor
    brightness: torch.Tensor
    contrast: torch.Tensor
    brightness_first: torch.Tensor
    flip: torch.Tensor


@dataclass(frozen=True)
class BatchAugment:
    """The training augmentation of a batch ``(B, 1, S, S)`` of fitted [0, 1] images at once.

    Why: per image, torchvision's transforms make the loader a large part of a CPU
    training step; here every image gets its own random affine (rotation uniform in
    ±``rotation`` degrees, translation uniform in ±``translate`` x S rounded to whole
    pixels, scale uniform in ``scale``, as ``v2.RandomAffine``) through one
    ``F.grid_sample`` (bilinear, zeros outside, ``align_corners=False`` at pixel centres
    as torchvision does), then brightness and contrast jitter as ``v2.ColorJitter`` does
    for one channel (factors uniform in ``[max(0, 1 - b), 1 + b]``; brightness multiplies,
    contrast blends with the image mean, each clamps to [0, 1]; random order), an optional
    horizontal flip (probability 1/2), clamping to [0, 1] and ``normalization``.

    All randomness comes from the ``generator`` given to :meth:`__call__` (the global
    torch generator is not used), so a batch is a function of its pixels and its seed.
    Zero ranges give the identity: the output is then exactly the normalised input.
    Outside the image is 0; torchvision's ``RandomAffine(fill=0)`` also darkens the one
    pixel band along the edge by its coverage, this does not.

    Examples
    --------
    >>> images = torch.rand(4, 1, 32, 32)
    >>> out = BatchAugment()(images, torch.Generator().manual_seed(0))
    >>> out.shape, bool(out.min() >= -2.0 and out.max() <= 2.0)
    (torch.Size([4, 1, 32, 32]), True)
    >>> plain = BatchAugment(rotation=0, scale=(1, 1), translate=0, brightness=0, contrast=0)
    >>> torch.equal(plain(images, torch.Generator()), Normalization()(images))
    True
    """

    rotation: float = 5.0
    scale: tuple[float, float] = (0.95, 1.05)
    translate: float = 0.03
    brightness: float = 0.1
    contrast: float = 0.1
    hflip: bool = False
    normalization: Normalization = DEFAULT_NORMALIZATION

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment and normalise ``images`` with draws from ``generator``."""
        _check_batch(images)
        return self.apply(images, self.sample(images.shape[0], images.shape[-1], generator))

    def sample(self, count: int, size: int, generator: torch.Generator) -> AugmentParams:
        """Draw the parameters of ``count`` images of ``size`` px.

        One (count, 8) uniform draw whatever the ranges, so each parameter keeps its
        stream when another range changes.
        """
        u = torch.rand((count, 8), generator=generator, dtype=torch.float64)
        low, high = float(self.scale[0]), float(self.scale[1])
        shift = float(self.translate) * size
        return AugmentParams(
            angle=(2.0 * u[:, 0] - 1.0) * float(self.rotation),
            translate=torch.round((2.0 * u[:, 1:3] - 1.0) * shift),
            scale=low + (high - low) * u[:, 3],
            brightness=_factor(u[:, 4], self.brightness),
            contrast=_factor(u[:, 5], self.contrast),
            brightness_first=u[:, 6] < 0.5,
            flip=(u[:, 7] < 0.5) & bool(self.hflip),
        )

    def apply(self, images: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Augment ``images`` (B, 1, S, S) with given ``params``; clamp and normalise."""
        _check_batch(images)
        out = images
        if bool((params.angle != 0).any() | (params.translate != 0).any()) or bool(
            (params.scale != 1).any()
        ):
            theta = _inverse_theta(params, images.shape[-1]).to(images.dtype)
            grid = F.affine_grid(theta, list(images.shape), align_corners=False)
            out = F.grid_sample(
                out, grid, mode="bilinear", padding_mode="zeros", align_corners=False
            )
        bright = bool((params.brightness != 1).any())
        contrast = bool((params.contrast != 1).any())
        b = params.brightness.to(images.dtype).view(-1, 1, 1, 1)
        c = params.contrast.to(images.dtype).view(-1, 1, 1, 1)
        if bright and contrast:
            first = params.brightness_first.view(-1, 1, 1, 1)
            out = torch.where(
                first, _contrast(_brightness(out, b), c), _brightness(_contrast(out, c), b)
            )
        elif bright:
            out = _brightness(out, b)
        elif contrast:
            out = _contrast(out, c)
        if bool(params.flip.any()):
            out = torch.where(params.flip.view(-1, 1, 1, 1), out.flip(-1), out)
        return self.normalization(out.clamp(0.0, 1.0))


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
    """Training transform of one image: fit to a square, :class:`BatchAugment`, normalise.

    Randomness comes from torch's global generator (seeded per DataLoader worker by
    torch); training itself augments whole batches with seeded generators
    (:class:`cxrembed.train.data.ImageView`).

    Examples
    --------
    >>> t = train_transform(32)
    >>> t(torch.rand(1, 40, 50)).shape
    torch.Size([1, 32, 32])
    """
    augment = BatchAugment(
        rotation=rotation,
        scale=(float(scale[0]), float(scale[1])),
        translate=translate,
        brightness=brightness,
        contrast=contrast,
        hflip=hflip,
        normalization=normalization,
    )
    return v2.Compose([FitSquare(size, fit), _OneImage(augment)])


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


def normalization_for(settings: Any) -> Normalization:
    """The pixel normalisation of a run's settings.

    ``settings`` is a :class:`~cxrembed.train.config.RunConfig` or its ``preprocessing``
    section (anything with ``mean`` and ``std``), so training and inference read it the same
    way without depending on each other.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> normalization_for(SimpleNamespace(mean=0.5, std=0.5))
    Normalization(mean=0.5, std=0.5)
    """
    pre = getattr(settings, "preprocessing", settings)
    return Normalization(pre.mean, pre.std)


def eval_transform_for(settings: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The deterministic transform a run validates and embeds with: fit to the square,
    normalise (``settings`` as in :func:`normalization_for`, plus ``image_size`` and ``fit``).

    Examples
    --------
    >>> from cxrembed.train.config import RunConfig
    >>> t = eval_transform_for(RunConfig.from_dict({"preprocessing": {"image_size": 40}}))
    >>> tuple(t(torch.rand(1, 50, 30)).shape)
    (1, 40, 40)
    """
    pre = getattr(settings, "preprocessing", settings)
    return eval_transform(pre.image_size, fit=pre.fit, normalization=normalization_for(pre))


@dataclass(frozen=True)
class _OneImage:
    """A :class:`BatchAugment` on one ``(1, S, S)`` image, seeded from the global generator."""

    augment: BatchAugment

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        seed = int(torch.randint(0, 2**63 - 1, ()))
        return self.augment(image[None], torch.Generator().manual_seed(seed))[0]


def _check_batch(images: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 1 or images.shape[2] != images.shape[3]:
        raise ValueError(
            f"expected a (B, 1, S, S) batch of square images; got shape {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise ValueError(f"expected float images in [0, 1]; got {images.dtype}")


def _factor(u: torch.Tensor, spread: float) -> torch.Tensor:
    """ColorJitter's factor: uniform in ``[max(0, 1 - spread), 1 + spread]``."""
    low, high = max(0.0, 1.0 - float(spread)), 1.0 + float(spread)
    return low + (high - low) * u


def _inverse_theta(params: AugmentParams, size: int) -> torch.Tensor:
    """(B, 2, 3) output -> input map in ``affine_grid``'s [-1, 1] coordinates.

    torchvision's inverse affine about the centre (no shear): ``R(-angle) / scale``, then
    minus the translation; pixel offsets become ``2 / size`` per pixel.
    """
    rad = params.angle * (math.pi / 180.0)
    cos, sin = torch.cos(rad) / params.scale, torch.sin(rad) / params.scale
    tx, ty = params.translate[:, 0], params.translate[:, 1]
    theta = torch.stack(
        [
            torch.stack([cos, sin, -(cos * tx + sin * ty) * (2.0 / size)], dim=1),
            torch.stack([-sin, cos, (sin * tx - cos * ty) * (2.0 / size)], dim=1),
        ],
        dim=1,
    )
    return theta


def _brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``v2.functional.adjust_brightness`` per image: multiply, clamp to [0, 1]."""
    return (images * factor).clamp_(0.0, 1.0)


def _contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``v2.functional.adjust_contrast`` per 1-channel image: blend with its mean, clamp."""
    mean = images.mean(dim=(-3, -2, -1), keepdim=True)
    return (images * factor + mean * (1.0 - factor)).clamp_(0.0, 1.0)
