"""Image models: torchvision backbones for 1-channel radiographs, spatial attention pooling,
the embedding network (metric-learning model and cross-entropy baseline), local weights.

Examples
--------
>>> import torch
>>> from cxrembed.models import EmbeddingNet
>>> net = EmbeddingNet("resnet18", embedding_dim=8).eval()
>>> tuple(net(torch.rand(2, 1, 64, 64)).shape)
(2, 8)
"""

from __future__ import annotations

from cxrembed.models.attention import SpatialAttentionPool
from cxrembed.models.backbone import BACKBONES, Backbone, build_backbone
from cxrembed.models.device import resolve_device
from cxrembed.models.embedding_net import EmbeddingNet, build_model
from cxrembed.models.weights import LoadResult, load_pretrained

__all__ = [
    "BACKBONES",
    "Backbone",
    "build_backbone",
    "SpatialAttentionPool",
    "EmbeddingNet",
    "build_model",
    "load_pretrained",
    "LoadResult",
    "resolve_device",
]
