"""Where a model looks: its learned attention map, Grad-CAM for any model, PNG overlays.

- :func:`attention_map` returns the map an attention-pooling model computes itself (the map
  it actually uses to weight its features: a faithful explanation by construction).
- :func:`grad_cam` works for every :class:`~cxrembed.models.EmbeddingNet`, with or without
  attention: it differentiates a scalar target with respect to the last feature map. The
  target is a class logit (classifier baseline), the cosine similarity to a reference
  embedding (retrieval: "what makes this image close to the query"), or, by default for
  embedding models, the length of the un-normalised projection (its self-similarity; the
  normalised embedding has constant length, so it has no gradient to follow).
  ``method="gradcam"`` is Selvaraju et al. (2017): channel weights are the spatially averaged
  gradients, so the map shows where the *channels* that matter are active (it can also light
  up look-alike regions the output ignores). ``method="hirescam"`` (Draelos & Carin, 2020)
  multiplies gradient and activation element-wise: it is zero wherever the output does not
  depend on the feature map, at the cost of a noisier map.
- :func:`overlay` blends a heatmap on the radiograph; :func:`save_overlay_png` writes it.

References
----------
R. R. Selvaraju et al., "Grad-CAM: visual explanations from deep networks via gradient-based
localization", ICCV 2017. R. L. Draelos, L. Carin, "Use HiResCAM instead of Grad-CAM for
faithful explanations of convolutional neural networks", arXiv:2011.08891 (2020).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cxrembed.io._common import plane
from cxrlabel.atomic import atomic_path
from cxrlabel.errors import InputError

__all__ = ["attention_map", "grad_cam", "overlay", "save_overlay_png"]

_METHODS = ("gradcam", "hirescam")


def attention_map(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Return the attention-pooling map ``(B, h, w)`` of an attention model, in eval mode.

    Examples
    --------
    >>> import torch
    >>> from cxrembed.models import EmbeddingNet
    >>> net = EmbeddingNet("resnet18", embedding_dim=8)
    >>> tuple(attention_map(net, torch.rand(2, 1, 64, 64)).shape)
    (2, 2, 2)
    """
    if getattr(model, "attention_pool", None) is None:
        raise InputError(
            "attention_map needs a model built with attention=True; this one pools without "
            "attention. Use grad_cam(model, images) instead."
        )
    with _eval_mode(model), torch.no_grad():
        return model.forward_features(images)["attention"][:, 0]


def grad_cam(
    model: torch.nn.Module,
    images: torch.Tensor,
    *,
    class_index: int | Sequence[int] | torch.Tensor | None = None,
    reference: torch.Tensor | None = None,
    method: str = "gradcam",
) -> torch.Tensor:
    """Grad-CAM heatmaps ``(B, h, w)`` on the last feature map, each scaled to max 1.

    Parameters
    ----------
    model : EmbeddingNet
        Any model with ``feature_map`` and ``forward_head`` (every EmbeddingNet).
    images : Tensor
        ``(B, C, H, W)`` batch, as the model takes it.
    class_index : int or sequence of int, optional
        Explain this logit (one for all images, or one per image); classifier models only.
        Default for classifiers: each image's top logit.
    reference : Tensor, optional
        ``(D,)`` or ``(B, D)`` embedding(s): explain the cosine similarity to it.
    method : {"gradcam", "hirescam"}
        Channel-averaged gradients (Grad-CAM) or element-wise gradient x activation.

    Returns
    -------
    Tensor
        Non-negative heatmaps at feature-map resolution; all zero when nothing in the map
        increases the target. Upsample with :func:`overlay`.

    Examples
    --------
    >>> import torch
    >>> from cxrembed.models import EmbeddingNet
    >>> net = EmbeddingNet("resnet18", embedding_dim=8, num_classes=3)
    >>> cam = grad_cam(net, torch.rand(2, 1, 64, 64), class_index=1)
    >>> tuple(cam.shape), bool(cam.min() >= 0), bool(cam.max() <= 1)
    ((2, 2, 2), True, True)
    """
    if method not in _METHODS:
        raise InputError(f"method must be one of {list(_METHODS)}; got {method!r}.")
    if class_index is not None and reference is not None:
        raise InputError("pass class_index or reference to grad_cam, not both.")
    with _eval_mode(model):
        with torch.no_grad():
            feature_map = model.feature_map(images)
        feature_map = feature_map.detach().requires_grad_(True)
        with torch.enable_grad():
            outputs = model.forward_head(feature_map)
            target = _target(outputs, class_index, reference)
            (grads,) = torch.autograd.grad(target.sum(), feature_map)
    if method == "gradcam":
        cam = (grads.mean(dim=(2, 3), keepdim=True) * feature_map).sum(dim=1)
    else:
        cam = (grads * feature_map).sum(dim=1)
    cam = F.relu(cam.detach())
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak.clamp_min(torch.finfo(cam.dtype).tiny), cam)


def overlay(
    image: np.ndarray | torch.Tensor,
    heatmap: np.ndarray | torch.Tensor,
    *,
    alpha: float = 0.5,
    cmap: str = "jet",
) -> np.ndarray:
    """Blend ``heatmap`` (h, w) over a gray ``image`` (H, W) in [0, 1]; return RGB uint8.

    The heatmap is scaled to [0, 1] (min to max), upsampled bilinearly to the image size and
    coloured with ``cmap``; each pixel mixes in the colour in proportion to its heat, so cold
    regions show the plain radiograph.

    Examples
    --------
    >>> import numpy as np
    >>> rgb = overlay(np.full((8, 8), 0.5), np.array([[0.0, 1.0]]))
    >>> rgb.shape, rgb.dtype.name
    ((8, 8, 3), 'uint8')
    >>> rgb[0, 0].tolist()  # no heat: the plain gray pixel
    [128, 128, 128]
    """
    gray = _as_2d(image, "image")
    if gray.size and (gray.min() < 0 or gray.max() > 1):
        raise InputError(
            f"overlay expects the image in [0, 1] (cxrembed's pixel convention); got values "
            f"in [{gray.min():.4g}, {gray.max():.4g}]. Rescale it, e.g. with "
            "(x - x.min()) / (x.max() - x.min())."
        )
    heat = _as_2d(heatmap, "heatmap")
    if not 0 <= alpha <= 1:
        raise InputError(f"alpha must be in [0, 1]; got {alpha!r}.")
    low, high = heat.min(), heat.max()
    heat = (heat - low) / (high - low) if high > low else np.zeros_like(heat)
    heat = (
        F.interpolate(
            torch.from_numpy(heat)[None, None],
            size=gray.shape,
            mode="bilinear",
            align_corners=False,
        )[0, 0]
        .clamp(0, 1)
        .numpy()
    )
    colour = matplotlib.colormaps[cmap](heat)[..., :3]
    weight = (alpha * heat)[..., None]
    rgb = (1 - weight) * gray[..., None] + weight * colour
    return np.rint(rgb * 255).astype(np.uint8)


def save_overlay_png(
    path: str | os.PathLike[str],
    image: np.ndarray | torch.Tensor,
    heatmap: np.ndarray | torch.Tensor,
    *,
    alpha: float = 0.5,
    cmap: str = "jet",
) -> Path:
    """Write :func:`overlay` of ``heatmap`` on ``image`` as a PNG (atomically); return the path.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "cam.png"
    >>> save_overlay_png(out, np.zeros((8, 8)), np.eye(2)).stat().st_size > 0
    True
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"save_overlay_png writes PNG files; got {path}. Use a .png name.")
    rgb = overlay(image, heatmap, alpha=alpha, cmap=cmap)
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")
    return path


def _target(
    outputs: dict[str, torch.Tensor | None],
    class_index: int | Sequence[int] | torch.Tensor | None,
    reference: torch.Tensor | None,
) -> torch.Tensor:
    """The scalar per image that Grad-CAM explains."""
    logits, embedding = outputs["logits"], outputs["embedding"]
    batch = embedding.shape[0]
    if reference is not None:
        ref = torch.as_tensor(reference, dtype=embedding.dtype, device=embedding.device)
        if ref.ndim == 1:
            ref = ref.expand(batch, -1)
        if ref.shape != embedding.shape:
            raise InputError(
                f"reference must be one embedding ({embedding.shape[1]},) or one per image "
                f"{tuple(embedding.shape)}; got {tuple(ref.shape)}."
            )
        return (embedding * F.normalize(ref, dim=1)).sum(dim=1)
    if logits is None:
        if class_index is not None:
            raise InputError(
                "class_index needs a classifier model (built with num_classes); this is an "
                "embedding model: pass reference=<embedding> or nothing."
            )
        projection = outputs["projection"]
        return projection.norm(dim=1)
    if class_index is None:
        index = logits.argmax(dim=1)
    else:
        index = torch.as_tensor(class_index, device=logits.device).long().reshape(-1)
        index = index.expand(batch) if index.numel() == 1 else index
        if index.shape != (batch,) or index.min() < 0 or index.max() >= logits.shape[1]:
            raise InputError(
                f"class_index must be one index in [0, {logits.shape[1] - 1}] or one per "
                f"image ({batch}); got {class_index!r}."
            )
    return logits.gather(1, index[:, None])[:, 0]


def _as_2d(array: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    array = plane(array)
    if array.ndim != 2:
        raise InputError(
            f"overlay expects the {name} as a 2-D array (height, width); got shape "
            f"{array.shape}. Pass one image, e.g. images[0, 0]."
        )
    if not np.isfinite(array).all():
        raise InputError(f"overlay: the {name} contains NaN or infinite values.")
    return array


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Run in eval mode (batch-norm running statistics) and restore the caller's mode."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
