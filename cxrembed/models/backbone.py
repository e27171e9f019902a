"""Torchvision backbones cut at their last convolutional feature map, for 1-channel images.

Radiographs are grayscale, so the first convolution takes one channel. Weights made for
RGB input are *folded* by summing the kernels over the colour axis: a convolution is linear,
so the folded kernel applied to a gray image gives exactly what the RGB kernel gives on that
gray image copied into three channels. Torchvision is always called with ``weights=None``:
cxrkit never downloads; pretrained weights come from a local file (see
:mod:`cxrembed.models.weights`).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torchvision
from torch import nn

from cxrembed.errors import ModelConfigError
from cxrlabel.vocab import Interval

__all__ = ["BACKBONES", "Backbone", "build_backbone", "set_in_channels", "fold_conv_weight"]

#: Supported backbone names and the channel count of their last feature map.
BACKBONES: dict[str, int] = {
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "densenet121": 1024,
}

_RESNET_LAYERS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


class Backbone(nn.Sequential):
    """A feature extractor: image ``(B, in_channels, H, W)`` -> map ``(B, out_channels, h, w)``.

    Built by :func:`build_backbone`. Parameter names are torchvision's (``conv1.weight``,
    ``layer1.0.bn1.weight`` for ResNets; the part after ``features.`` for DenseNets), so
    torchvision state dicts load with at most a prefix stripped. The map is non-negative
    (it ends with a ReLU) and is 32 times smaller than the image on each side.

    Attributes
    ----------
    arch : str
        Backbone name, one of :data:`BACKBONES`.
    in_channels, out_channels : int
        Channels of the input image and of the last feature map.
    first_conv : str
        Name of the first convolution (``"conv1"`` or ``"conv0"``), the layer folded when
        the input channel count changes.
    """

    def __init__(
        self,
        layers: OrderedDict[str, nn.Module],
        *,
        arch: str,
        out_channels: int,
        first_conv: str,
    ) -> None:
        super().__init__(layers)
        self.arch = arch
        self.out_channels = out_channels
        self.first_conv = first_conv

    @property
    def in_channels(self) -> int:
        """Channel count the backbone expects (read from its first convolution)."""
        return getattr(self, self.first_conv).in_channels


def build_backbone(name: str = "resnet18", in_channels: int = 1) -> Backbone:
    """Build a randomly initialised torchvision backbone taking ``in_channels`` channels.

    Parameters
    ----------
    name : str
        One of ``"resnet18"``, ``"resnet34"``, ``"resnet50"``, ``"densenet121"``.
    in_channels : int
        1 for radiographs (the default); 3 to mirror an RGB model exactly.

    Examples
    --------
    >>> import torch
    >>> net = build_backbone("resnet18")
    >>> net.out_channels, net.in_channels
    (512, 1)
    >>> tuple(net.eval()(torch.zeros(1, 1, 64, 64)).shape)
    (1, 512, 2, 2)
    """
    if name not in BACKBONES:
        raise ModelConfigError(
            f"unknown backbone {name!r}: expected one of {sorted(BACKBONES)}. "
            "Pick one of those names (pretrained weights come from a local file)."
        )
    _check_channels(in_channels)
    factory = getattr(torchvision.models, name)
    net = factory(weights=None)  # never download: weights come from a local file
    if name.startswith("resnet"):
        layers = OrderedDict((layer, getattr(net, layer)) for layer in _RESNET_LAYERS)
        first_conv = "conv1"
    else:
        layers = OrderedDict(net.features.named_children())
        layers["relu5"] = nn.ReLU(inplace=True)  # torchvision applies it in forward()
        first_conv = "conv0"
    backbone = Backbone(layers, arch=name, out_channels=BACKBONES[name], first_conv=first_conv)
    return set_in_channels(backbone, in_channels)


def set_in_channels(backbone: Backbone, in_channels: int) -> Backbone:
    """Replace the first convolution so it takes ``in_channels``, folding its weights.

    3 -> 1 sums the RGB kernels (exact on gray images); 1 -> N repeats the kernel divided
    by N (exact on a gray image copied into N channels). Modifies ``backbone`` in place and
    returns it.

    Examples
    --------
    >>> rgb = build_backbone("resnet18", in_channels=3)
    >>> set_in_channels(rgb, 1).in_channels
    1
    """
    _check_channels(in_channels)
    old: nn.Conv2d = getattr(backbone, backbone.first_conv)
    if old.in_channels == in_channels:
        return backbone
    new = nn.Conv2d(
        in_channels,
        old.out_channels,
        kernel_size=old.kernel_size,
        stride=old.stride,
        padding=old.padding,
        dilation=old.dilation,
        groups=old.groups,
        bias=old.bias is not None,
        padding_mode=old.padding_mode,
        device=old.weight.device,
        dtype=old.weight.dtype,
    )
    with torch.no_grad():
        new.weight.copy_(fold_conv_weight(old.weight, in_channels))
        if old.bias is not None:
            new.bias.copy_(old.bias)
    setattr(backbone, backbone.first_conv, new)
    return backbone


def fold_conv_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt a conv kernel ``(out, c, k, k)`` to ``in_channels`` input channels.

    Summing over the channel axis (c -> 1) or repeating divided by the count (1 -> n) keeps
    the output identical on gray images.

    Examples
    --------
    >>> import torch
    >>> fold_conv_weight(torch.ones(2, 3, 1, 1), 1).flatten().tolist()
    [3.0, 3.0]
    """
    found = weight.shape[1]
    if found == in_channels:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    if found == 1:
        return weight.repeat(1, in_channels, 1, 1) / in_channels
    raise ModelConfigError(
        f"cannot adapt a first convolution with {found} input channels to {in_channels}: "
        "only 3 -> 1 (sum) and 1 -> N (repeat) keep the output unchanged on gray images. "
        "Use in_channels=1 for radiographs."
    )


def _check_channels(in_channels: object) -> None:
    if not Interval(int, 1, None).contains(in_channels):
        raise ModelConfigError(
            f"The 'in_channels' parameter must be a positive integer (1 for radiographs). "
            f"Got {in_channels!r} instead."
        )
