"""The retrieval network: backbone -> (attention) pooling -> projection -> unit-norm embedding.

One class covers both models the COVID retrieval paper (Zhong et al., 2021) compares:

- the metric-learning model (``num_classes=None``): trained with a metric loss on the
  L2-normalised embedding;
- the "direct diagnostic" cross-entropy baseline (``num_classes=C``): a linear multi-label
  classifier on top of the projection, trained with BCE on the logits; its embedding is the
  penultimate layer (the normalised projection that feeds the classifier), so both models are
  searched the same way.

:func:`build_model` rebuilds a model from the ``model`` section of a run's ``config.yaml``;
:meth:`EmbeddingNet.get_config` writes that section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cxrembed.errors import ModelConfigError
from cxrembed.models.attention import SpatialAttentionPool
from cxrembed.models.backbone import BACKBONES, Backbone, build_backbone
from cxrlabel.errors import InputError

__all__ = ["EmbeddingNet", "build_model", "EMBEDDING_NORMS"]

#: Choices of :class:`EmbeddingNet`'s ``embedding_norm``.
EMBEDDING_NORMS: tuple[str | None, ...] = (None, "batchnorm")

_MIN_SIDE = 32  # one cell of the last feature map


class EmbeddingNet(nn.Module):
    """Image ``(B, in_channels, H, W)`` in [0, 1] -> L2-normalised embedding ``(B, D)``.

    Parameters
    ----------
    backbone : str
        ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` or ``"densenet121"``.
    embedding_dim : int
        Size ``D`` of the embedding (128 by default).
    attention : bool
        Spatial attention pooling (:class:`SpatialAttentionPool`) instead of global
        average pooling; its map is returned by :meth:`forward_features`.
    num_classes : int, optional
        When set, adds a linear classifier on the projection: the cross-entropy baseline.
    in_channels : int
        1 for radiographs.
    embedding_norm : {None, "batchnorm"}
        ``"batchnorm"``: a BatchNorm1d on the projection before the L2 normalisation (a
        "BN neck", Luo et al. 2019). Pooled ReLU features all point into one orthant, so a
        fresh network embeds every image within a few degrees of every other (cosine about
        0.98); cosine-based losses then start from a collapsed cone and spend their budget
        escaping it. Centring each dimension over the batch spreads the embeddings from the
        first step.

    Examples
    --------
    >>> import torch
    >>> net = EmbeddingNet("resnet18", embedding_dim=16).eval()
    >>> out = net.forward_features(torch.rand(2, 1, 64, 64))
    >>> tuple(out["embedding"].shape), tuple(out["attention"].shape)
    ((2, 16), (2, 1, 2, 2))
    >>> bool(torch.allclose(out["embedding"].norm(dim=1), torch.ones(2)))
    True
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        embedding_dim: int = 128,
        attention: bool = True,
        num_classes: int | None = None,
        in_channels: int = 1,
        embedding_norm: str | None = None,
    ) -> None:
        super().__init__()
        _check_params(backbone, embedding_dim, attention, num_classes, in_channels)
        if embedding_norm not in EMBEDDING_NORMS:
            raise ModelConfigError(
                f"EmbeddingNet parameters: 'embedding_norm' must be one of "
                f"{list(EMBEDDING_NORMS)}. Got {embedding_norm!r} instead."
            )
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes
        self.backbone: Backbone = build_backbone(backbone, in_channels)
        channels = self.backbone.out_channels
        self.attention_pool = SpatialAttentionPool(channels) if attention else None
        self.projection = nn.Linear(channels, embedding_dim)
        self.neck = nn.BatchNorm1d(embedding_dim) if embedding_norm == "batchnorm" else None
        self.classifier = nn.Linear(embedding_dim, num_classes) if num_classes else None

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, source: str = "model config"
    ) -> EmbeddingNet:
        """Build from a mapping written by :meth:`get_config` (see :func:`build_model`)."""
        return build_model(config, source=source)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as plain values, for the ``model`` section of config.yaml.

        ``embedding_norm`` is listed only when set, so a model without a neck describes
        itself as models did before the option existed.
        """
        config = {
            "backbone": self.backbone.arch,
            "embedding_dim": self.embedding_dim,
            "attention": self.attention_pool is not None,
            "num_classes": self.num_classes,
            "in_channels": self.backbone.in_channels,
        }
        if self.neck is not None:
            config["embedding_norm"] = "batchnorm"
        return config

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return the L2-normalised embeddings ``(B, D)``."""
        return self.forward_features(images)["embedding"]

    def forward_features(self, images: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """Return every intermediate a caller may need, keyed by name.

        Keys: ``embedding`` (B, D) unit norm; ``projection`` (B, D) the same before
        normalisation; ``pooled`` (B, C) pooled backbone features; ``logits`` (B, K) or None
        without a classifier; ``attention`` (B, 1, h, w) the pooling map, or None without
        attention.
        """
        return self.forward_head(self.feature_map(images))

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """Check the images and return the backbone's last feature map ``(B, C, h, w)``."""
        self._check_images(images)
        return self.backbone(images)

    def forward_head(self, feature_map: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """Everything after the backbone, from its feature map ``(B, C, h, w)``.

        Split out (with :meth:`feature_map`) so explanations such as Grad-CAM can
        differentiate with respect to the map.
        """
        if self.attention_pool is not None:
            pooled, amap = self.attention_pool(feature_map)
        else:
            pooled, amap = feature_map.mean(dim=(2, 3)), None
        projection = self.projection(pooled)
        if self.neck is not None:
            projection = self.neck(projection)
        logits = self.classifier(projection) if self.classifier is not None else None
        return {
            "embedding": F.normalize(projection, dim=1),
            "projection": projection,
            "pooled": pooled,
            "logits": logits,
            "attention": amap,
        }

    def _check_images(self, images: torch.Tensor) -> None:
        expected = self.backbone.in_channels
        if not isinstance(images, torch.Tensor):
            raise InputError(
                f"EmbeddingNet expects a torch.Tensor of images shaped (B, {expected}, H, W); "
                f"got {type(images).__name__}. Convert with torch.as_tensor(x)."
            )
        if images.ndim != 4 or images.shape[1] != expected:
            hint = " Add the channel axis with x.unsqueeze(1)." if images.ndim == 3 else ""
            raise InputError(
                f"EmbeddingNet expects images shaped (B, {expected}, H, W); "
                f"got {tuple(images.shape)}.{hint}"
            )
        if not images.is_floating_point():
            raise InputError(
                f"EmbeddingNet expects floating-point images in [0, 1]; got dtype {images.dtype}. "
                "Convert with x.float() / 255 for 8-bit pixels."
            )
        if min(images.shape[-2:]) < _MIN_SIDE:
            raise InputError(
                f"EmbeddingNet needs images at least {_MIN_SIDE}x{_MIN_SIDE} pixels (the "
                f"backbone downsamples 32 times); got {tuple(images.shape[-2:])}. Resize up."
            )


def build_model(config: Mapping[str, Any], *, source: str = "model config") -> EmbeddingNet:
    """Rebuild an :class:`EmbeddingNet` from a config mapping.

    Accepts the flat mapping :meth:`EmbeddingNet.get_config` returns, or a whole run config
    holding it under ``model``. Unknown keys are rejected (a typo must not silently fall back
    to a default). ``source`` names the file in error messages.

    Examples
    --------
    >>> net = build_model({"model": {"backbone": "resnet18", "embedding_dim": 32}})
    >>> net.get_config()["embedding_dim"]
    32
    """
    if not isinstance(config, Mapping):
        raise ModelConfigError(
            f"{source}: expected a mapping of model options; got {type(config).__name__}."
        )
    section = config.get("model", config)
    if not isinstance(section, Mapping):
        raise ModelConfigError(
            f"{source}: 'model' must be a mapping of model options; got {section!r}."
        )
    known = (
        "backbone",
        "embedding_dim",
        "attention",
        "num_classes",
        "in_channels",
        "embedding_norm",
    )
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ModelConfigError(
            f"{source}: unknown model option(s) {unknown}; expected only {list(known)}. "
            "Fix the spelling or remove them."
        )
    try:
        return EmbeddingNet(**{key: section[key] for key in known if key in section})
    except ModelConfigError as exc:
        raise ModelConfigError(f"{source}: {exc}") from exc


def _check_params(
    backbone: object,
    embedding_dim: object,
    attention: object,
    num_classes: object,
    in_channels: object,
) -> None:
    def positive_int(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1

    problems = []
    if backbone not in BACKBONES:
        problems.append(f"'backbone' must be one of {sorted(BACKBONES)}. Got {backbone!r}")
    if not positive_int(embedding_dim):
        problems.append(f"'embedding_dim' must be a positive integer. Got {embedding_dim!r}")
    if not isinstance(attention, bool):
        problems.append(f"'attention' must be true or false. Got {attention!r}")
    if num_classes is not None and not positive_int(num_classes):
        problems.append(f"'num_classes' must be a positive integer or None. Got {num_classes!r}")
    if not positive_int(in_channels):
        problems.append(f"'in_channels' must be a positive integer. Got {in_channels!r}")
    if problems:
        raise ModelConfigError("EmbeddingNet parameters: " + "; ".join(problems) + " instead.")
