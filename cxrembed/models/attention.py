"""Spatial attention pooling: a learned map weights the last feature map before pooling.

Global average pooling gives every location of the feature map the same vote, so the
mediastinum, the arm and the text burnt into the corner count as much as the lungs. Zhong et
al. (2021) add a spatial attention module on the last feature map of their retrieval network
so that pooling concentrates on the regions that matter, and show the learned map to
clinicians. This module follows that idea; the layer design below is ours (the paper does not
fix one we could copy):

- score ``s = conv1x1(ReLU(conv1x1(F)))``, one scalar per location, shape ``(B, 1, h, w)``;
- ``gate="sigmoid"`` (default): the map is ``a = sigmoid(s)`` in (0, 1), an independent
  "keep" gate per location, so both lungs can be fully on at once; pooling is the
  map-weighted mean ``sum(a * F) / sum(a)``, which does not depend on how much of the image
  is attended;
- ``gate="softmax"``: the map is a softmax over locations (it sums to 1), as in
  attention-based MIL pooling (Ilse et al., 2018); pooling is ``sum(a * F)``.

The weights are computed as ``softmax(log a)`` in both cases, which is the same quantity but
stays finite when every gate is close to 0. The last convolution starts at zero, so a new
model pools exactly like global average pooling and learns to deviate from it.

References
----------
A. Zhong, X. Li, D. Wu et al., "Deep metric learning-based image retrieval system for chest
radiograph and its clinical applications in COVID-19", Medical Image Analysis 70 (2021) 101993.
M. Ilse, J. Tomczak, M. Welling, "Attention-based deep multiple instance learning", ICML 2018.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cxrembed.errors import ModelConfigError

__all__ = ["SpatialAttentionPool"]

_GATES = ("sigmoid", "softmax")


class SpatialAttentionPool(nn.Module):
    """Pool a feature map ``(B, C, h, w)`` to ``(B, C)`` with a learned spatial map.

    Parameters
    ----------
    in_channels : int
        Channels of the feature map.
    hidden_channels : int, optional
        Width of the scoring layer; default ``max(in_channels // 8, 16)``.
    gate : {"sigmoid", "softmax"}
        How scores become the map (see the module docstring).

    Examples
    --------
    >>> import torch
    >>> pool = SpatialAttentionPool(8)
    >>> pooled, amap = pool(torch.rand(2, 8, 4, 4))
    >>> tuple(pooled.shape), tuple(amap.shape)
    ((2, 8), (2, 1, 4, 4))
    """

    def __init__(
        self, in_channels: int, hidden_channels: int | None = None, gate: str = "sigmoid"
    ) -> None:
        super().__init__()
        if gate not in _GATES:
            raise ModelConfigError(
                f"The 'gate' parameter of SpatialAttentionPool must be one of {list(_GATES)}. "
                f"Got {gate!r} instead."
            )
        hidden = hidden_channels or max(in_channels // 8, 16)
        self.gate = gate
        self.score = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, kernel_size=1),
        )
        nn.init.zeros_(self.score[2].weight)  # uniform map at start: pooling == GAP
        nn.init.zeros_(self.score[2].bias)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(pooled (B, C), attention map (B, 1, h, w))``."""
        scores = self.score(features)
        flat = scores.flatten(2)  # (B, 1, h*w)
        log_gate = F.logsigmoid(flat) if self.gate == "sigmoid" else flat
        weights = torch.softmax(log_gate, dim=-1)  # sigmoid: a / sum(a), computed stably
        pooled = (features.flatten(2) * weights).sum(dim=-1)
        amap = torch.sigmoid(scores) if self.gate == "sigmoid" else weights.view_as(scores)
        return pooled, amap
