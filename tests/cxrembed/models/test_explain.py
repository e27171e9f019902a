"""Tests for cxrembed.models.explain: attention maps, Grad-CAM / HiResCAM, overlays and PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from cxrembed.models import EmbeddingNet
from cxrembed.models.explain import attention_map, grad_cam, overlay, save_overlay_png
from cxrlabel.errors import InputError


def _images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def attention_classifier() -> EmbeddingNet:
    torch.manual_seed(0)
    net = EmbeddingNet("resnet18", embedding_dim=16, num_classes=4)
    nn.init.normal_(net.attention_pool.score[2].weight, std=0.5)  # a non-uniform map
    return net.eval()


@pytest.fixture(scope="module")
def mean_pool_nets() -> dict[str, EmbeddingNet]:
    torch.manual_seed(1)
    return {
        "classifier": EmbeddingNet(
            "resnet18", embedding_dim=16, attention=False, num_classes=4
        ).eval(),
        "embedding": EmbeddingNet("resnet18", embedding_dim=16, attention=False).eval(),
    }


def _scaled(cam: torch.Tensor) -> torch.Tensor:
    cam = cam.clamp_min(0)
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak, cam)


# ---------------------------------------------------------------- attention maps


def test_attention_map_is_the_models_own_map(attention_classifier: EmbeddingNet) -> None:
    images = _images(2, 1, 64, 96)
    amap = attention_map(attention_classifier, images)
    with torch.no_grad():
        expected = attention_classifier.forward_features(images)["attention"][:, 0]
    assert amap.shape == (2, 2, 3)
    torch.testing.assert_close(amap, expected)
    assert ((amap > 0) & (amap < 1)).all() and amap.std() > 0


def test_attention_map_needs_an_attention_model(mean_pool_nets: dict) -> None:
    with pytest.raises(InputError, match="attention=True.*grad_cam"):
        attention_map(mean_pool_nets["embedding"], _images(1, 1, 64, 64))


# ---------------------------------------------------------------- Grad-CAM values


@pytest.mark.parametrize("method", ["gradcam", "hirescam"])
@pytest.mark.parametrize("target", ["class", "reference", "default"])
def test_grad_cam_matches_the_closed_form_of_a_mean_pooling_model(
    mean_pool_nets: dict, method: str, target: str
) -> None:
    """With mean pooling, d target / d A[c, i, j] = v_c / (h w) for a per-image vector v:

    class k:      v = W_p^T w_k                     (logit = w_k . (W_p pooled + b_p) + b_k)
    reference r:  v = W_p^T (r - (e.r) e) / |p|     (target = cos(p, r), r unit, e = p / |p|)
    default:      v = W_p^T e                       (target = |p|)
    so both methods give relu(sum_c v_c A_c), up to scale.
    """
    net = mean_pool_nets["embedding" if target != "class" else "classifier"]
    images = _images(2, 1, 64, 96, seed=3)
    with torch.no_grad():
        fmap = net.feature_map(images)
        proj = net.forward_head(fmap)["projection"]
    emb = F.normalize(proj, dim=1)
    w_p = net.projection.weight  # (D, C)
    kwargs: dict = {}
    if target == "class":
        kwargs["class_index"] = [2, 0]
        v = torch.stack([net.classifier.weight[2] @ w_p, net.classifier.weight[0] @ w_p])
    elif target == "reference":
        ref = F.normalize(_images(16, seed=4) - 0.5, dim=0)
        kwargs["reference"] = ref
        v = ((ref - (emb @ ref)[:, None] * emb) / proj.norm(dim=1, keepdim=True)) @ w_p
    else:
        v = emb @ w_p
    expected = _scaled(torch.einsum("bc,bchw->bhw", v, fmap))
    cam = grad_cam(net, images, method=method, **kwargs)
    assert cam.shape == (2, 2, 3)
    assert (cam.amax(dim=(1, 2)) > 0).any()  # not trivially all zero
    torch.testing.assert_close(cam, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["gradcam", "hirescam"])
def test_grad_cam_matches_a_slow_loop_on_an_attention_model(
    attention_classifier: EmbeddingNet, method: str
) -> None:
    """Reference: a backward hook on the full forward pass, then the paper's sums as loops."""
    net = attention_classifier
    images = _images(2, 1, 64, 64, seed=5)
    store: dict[str, torch.Tensor] = {}

    def keep(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        output.retain_grad()
        store["A"] = output

    handle = net.backbone.register_forward_hook(keep)
    try:
        net.forward_features(images)["logits"][:, 1].sum().backward()
    finally:
        handle.remove()
        net.zero_grad(set_to_none=True)
    act, grad = store["A"].detach(), store["A"].grad
    batch, channels, height, width = act.shape
    expected = torch.zeros(batch, height, width)
    for b in range(batch):
        alpha = [float(grad[b, c].mean()) for c in range(channels)]
        for i in range(height):
            for j in range(width):
                if method == "gradcam":
                    value = sum(alpha[c] * float(act[b, c, i, j]) for c in range(channels))
                else:
                    value = float((grad[b, :, i, j] * act[b, :, i, j]).sum())
                expected[b, i, j] = max(value, 0.0)
    expected = _scaled(expected)
    cam = grad_cam(net, images, class_index=1, method=method)
    torch.testing.assert_close(cam, expected, rtol=1e-4, atol=1e-5)


def test_default_classifier_target_is_each_images_top_logit(
    attention_classifier: EmbeddingNet,
) -> None:
    images = _images(2, 1, 64, 64, seed=6)
    with torch.no_grad():
        top = attention_classifier.forward_features(images)["logits"].argmax(dim=1)
    torch.testing.assert_close(
        grad_cam(attention_classifier, images),
        grad_cam(attention_classifier, images, class_index=top),
    )


# ---------------------------------------------------------------- localisation


class _HalfImageNet(EmbeddingNet):
    """Sees only one half of the image; each 16x16 patch gives its own features (no
    receptive-field bleed, so the right answer is known exactly)."""

    def __init__(self, keep: str) -> None:
        super().__init__("resnet18", embedding_dim=8, attention=True)
        self.keep = keep
        self.patch = nn.Conv2d(1, 512, kernel_size=16, stride=16, bias=False)

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        half = images.shape[-1] // 2
        masked = images.clone()
        if self.keep == "left":
            masked[..., half:] = 0
        else:
            masked[..., :half] = 0
        return F.relu(self.patch(masked))


@pytest.mark.parametrize("method", ["gradcam", "hirescam"])
@pytest.mark.parametrize("keep", ["left", "right"])
def test_heatmap_lies_on_the_half_that_drives_the_output(method: str, keep: str) -> None:
    torch.manual_seed(7)
    net = _HalfImageNet(keep)
    images = _images(2, 1, 64, 128, seed=8)  # not square: catches a transposed map
    cam = grad_cam(net, images, method=method)
    assert cam.shape == (2, 4, 8)
    seen, unseen = (cam[..., :4], cam[..., 4:]) if keep == "left" else (cam[..., 4:], cam[..., :4])
    assert (seen.amax(dim=(1, 2)) == 1).all()
    assert (unseen == 0).all()
    # ...and the upsampled overlay colours the same half of the picture
    rgb = overlay(images[0, 0], cam[0]).astype(int)
    tint = np.abs(rgb - rgb.mean(axis=2, keepdims=True)).sum(axis=2)  # 0 where plain gray
    left, right = tint[:, :56].sum(), tint[:, 72:].sum()
    assert (left > 10 * right) if keep == "left" else (right > 10 * left)


def test_hirescam_is_zero_where_attention_ignores_the_features() -> None:
    """A real ResNet whose pooling only reads the left half of the map, on a mirror-symmetric
    image: both halves have strong features, only the left one affects the output."""

    class LeftScore(nn.Module):
        def forward(self, features: torch.Tensor) -> torch.Tensor:
            score = torch.zeros_like(features[:, :1])
            score[..., features.shape[-1] // 2 :] = -1e4  # gate 0 on the right
            return score

    torch.manual_seed(9)
    net = EmbeddingNet("resnet18", embedding_dim=8).eval()
    net.attention_pool.score = LeftScore()
    half = _images(1, 1, 128, 64, seed=10)
    images = torch.cat([half, half.flip(-1)], dim=-1)
    with torch.no_grad():
        fmap = net.feature_map(images)
    assert fmap[..., 2:].sum() > 0.5 * fmap[..., :2].sum()  # the right half is not blank
    cam = grad_cam(net, images, method="hirescam")
    assert cam.shape == (1, 4, 4)
    assert (cam[..., 2:] == 0).all() and cam[..., :2].max() == 1


# ---------------------------------------------------------------- Grad-CAM hygiene


def test_grad_cam_restores_the_mode_and_leaves_no_gradients() -> None:
    torch.manual_seed(11)
    net = EmbeddingNet("resnet18", embedding_dim=8, num_classes=2).train()
    grad_cam(net, _images(2, 1, 64, 64), class_index=0)
    assert net.training
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"class_index": 9}, r"class_index must be one index in \[0, 3\]"),
        ({"class_index": [0, 1, 2]}, "one per image"),
        ({"class_index": 0, "reference": torch.zeros(16)}, "not both"),
        ({"reference": torch.zeros(3, 16)}, "one embedding"),
        ({"method": "cam++"}, "method must be one of"),
    ],
)
def test_grad_cam_argument_errors(
    attention_classifier: EmbeddingNet, kwargs: dict, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        grad_cam(attention_classifier, _images(2, 1, 64, 64), **kwargs)


def test_class_index_on_an_embedding_model_is_refused(mean_pool_nets: dict) -> None:
    with pytest.raises(InputError, match="classifier model.*reference"):
        grad_cam(mean_pool_nets["embedding"], _images(1, 1, 64, 64), class_index=0)


# ---------------------------------------------------------------- overlays and PNGs


def test_overlay_keeps_cold_pixels_gray_and_upsamples_in_place() -> None:
    image = np.linspace(0, 1, 48 * 64, dtype=np.float32).reshape(48, 64)
    heat = np.zeros((3, 4), dtype=np.float32)
    heat[0, 3] = 1.0  # top-right cell
    rgb = overlay(image, heat)
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    gray = np.rint(image * 255).astype(np.uint8)
    # far from the hot cell, the heat upsampled bilinearly is exactly 0: plain image
    assert (rgb[32:, :32] == gray[32:, :32, None]).all()
    tint = np.abs(rgb.astype(int) - gray[..., None]).sum(axis=2)
    assert np.unravel_index(tint.argmax(), tint.shape) in {
        (r, c) for r in range(16) for c in range(48, 64)
    }
    assert (overlay(image, np.zeros((3, 4))) == gray[..., None]).all()  # flat map: no tint
    assert (overlay(image, heat, alpha=0.0) == gray[..., None]).all()


@pytest.mark.parametrize(
    ("image", "heat", "message"),
    [
        (np.full((8, 8), 2.0), np.ones((2, 2)), r"in \[0, 1\]"),
        (np.zeros((2, 8, 8)), np.ones((2, 2)), "2-D array"),
        (np.zeros((8, 8)), np.full((2, 2), np.nan), "NaN"),
        (np.zeros((8, 8)), np.ones(4), "2-D array"),
    ],
)
def test_overlay_rejects_bad_inputs(image: np.ndarray, heat: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        overlay(image, heat)


def test_png_is_written_atomically_and_reads_back(tmp_path: Path) -> None:
    image = torch.rand(40, 30, generator=torch.Generator().manual_seed(12))
    heat = torch.rand(2, 2, generator=torch.Generator().manual_seed(13))
    path = save_overlay_png(tmp_path / "sub" / "cam.png", image, heat)
    with Image.open(path) as png:
        assert png.format == "PNG" and png.mode == "RGB" and png.size == (30, 40)
        assert (np.asarray(png) == overlay(image, heat)).all()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["cam.png"]  # no temp left
    with pytest.raises(InputError, match=r"\.png"):
        save_overlay_png(tmp_path / "cam.jpg", image, heat)


@pytest.mark.realdata
def test_overlay_on_a_real_radiograph(cxr_dev: Path, tmp_path: Path) -> None:
    from cxrembed.io.image import read_image

    pixels, _ = read_image(sorted((cxr_dev / "covid_images_256").glob("*.png"))[0])
    torch.manual_seed(14)
    net = EmbeddingNet("resnet18", embedding_dim=8)
    images = torch.from_numpy(pixels)[None, None]
    cam = grad_cam(net, images)
    assert cam.shape == (1, -(-pixels.shape[0] // 32), -(-pixels.shape[1] // 32))
    out = save_overlay_png(tmp_path / "real.png", pixels, cam[0])
    with Image.open(out) as png:
        assert png.size == (pixels.shape[1], pixels.shape[0])
