"""Square fitting (letterbox / crop), quantisation, and the radiograph transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from cxrembed.data.square import dequantize, fit_square, quantize
from cxrembed.data.transforms import (
    XRV_NORMALIZATION,
    AugmentParams,
    BatchAugment,
    FitSquare,
    Normalization,
    eval_transform,
    train_transform,
)

NONE = {"rotation": 0.0, "scale": (1.0, 1.0), "translate": 0.0, "brightness": 0.0, "contrast": 0.0}
RAW = Normalization(0.0, 1.0)  # BatchAugment output in [0, 1], to compare pixels directly


def test_letterbox_keeps_the_whole_image_and_pads_with_zeros():
    image = np.ones((30, 60), dtype=np.float32)
    out = fit_square(image, 20)
    assert out.shape == (20, 20) and out.dtype == np.float32
    np.testing.assert_array_equal(out[5:15], 1.0)  # 60 -> 20 wide, 30 -> 10 tall, centred
    np.testing.assert_array_equal(out[:5], 0.0)
    np.testing.assert_array_equal(out[15:], 0.0)


def test_crop_fills_the_square_from_the_centre():
    image = np.zeros((20, 40), dtype=np.float32)
    image[:, 10:30] = 1.0  # the central square
    out = fit_square(image, 10, "crop")
    assert out.shape == (10, 10)
    assert out[:, 1:-1].min() > 0.99  # the centre survived, the sides are gone


def test_fit_preserves_a_constant_level_and_is_identity_at_size():
    image = np.full((37, 23), 0.3, dtype=np.float32)
    np.testing.assert_allclose(fit_square(image, 16, "crop"), 0.3, atol=1e-6)
    square = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    np.testing.assert_array_equal(fit_square(square, 16), square)


def test_fit_rejects_bad_arguments():
    with pytest.raises(ValueError, match="fit"):
        fit_square(np.zeros((4, 4)), 4, "stretch")
    with pytest.raises(ValueError, match="2-D"):
        fit_square(np.zeros((1, 4, 4)), 4)


@pytest.mark.parametrize("dtype, top", [("uint8", 255), ("uint16", 65535)])
def test_quantize_round_trip(dtype, top):
    values = np.linspace(0, 1, 101, dtype=np.float32)
    stored = quantize(values, dtype)
    assert stored.dtype == np.dtype(dtype) and stored[0] == 0 and stored[-1] == top
    assert np.abs(dequantize(stored) - values).max() <= 0.5 / top + 1e-7


def test_normalization_conventions():
    x = torch.tensor([0.0, 0.5, 1.0])
    assert Normalization()(x).tolist() == [-2.0, 0.0, 2.0]
    assert XRV_NORMALIZATION(x).tolist() == [-1024.0, 0.0, 1024.0]
    torch.testing.assert_close(Normalization().inverse(Normalization()(x)), x)


def test_eval_transform_is_fit_then_normalise():
    torch.manual_seed(0)
    image = torch.rand(1, 30, 50)
    expected = torch.from_numpy(fit_square(image[0].numpy(), 24))[None]
    torch.testing.assert_close(eval_transform(24)(image), (expected - 0.5) / 0.25)
    with pytest.raises(ValueError, match=r"\(1, H, W\)"):
        FitSquare(8)(torch.rand(3, 8, 8))


def test_train_transform_shape_range_and_randomness():
    torch.manual_seed(0)
    image = torch.rand(1, 40, 32)
    transform = train_transform(32)
    outs = [transform(image) for _ in range(4)]
    assert all(o.shape == (1, 32, 32) for o in outs)
    assert all(o.min() >= -2.0 and o.max() <= 2.0 for o in outs)  # clamped to [0, 1] first
    assert not torch.equal(outs[0], outs[1])  # augmentation is random


def _plain(size, **kwargs):
    return train_transform(
        size, rotation=0.0, translate=0.0, scale=(1.0, 1.0), brightness=0.0, contrast=0.0, **kwargs
    )


def test_no_horizontal_flip_by_default_and_flip_when_asked():
    torch.manual_seed(0)
    image = torch.zeros(1, 16, 16)
    image[:, :, :4] = 1.0  # bright on the left only
    plain = _plain(16)
    assert all(torch.equal(plain(image), eval_transform(16)(image)) for _ in range(20))
    flipping = _plain(16, hflip=True)
    flips = sum(bool(flipping(image)[0, :, -1].gt(0).all()) for _ in range(40))
    assert 5 < flips < 35


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _params(count=1, *, angle=0.0, translate=(0.0, 0.0), scale=1.0, flip=False, **factors):
    double = {"dtype": torch.float64}
    return AugmentParams(
        angle=torch.full((count,), float(angle), **double),
        translate=torch.tensor([list(translate)] * count, **double),
        scale=torch.full((count,), float(scale), **double),
        brightness=torch.full((count,), float(factors.get("brightness", 1.0)), **double),
        contrast=torch.full((count,), float(factors.get("contrast", 1.0)), **double),
        brightness_first=torch.full((count,), bool(factors.get("brightness_first", True))),
        flip=torch.full((count,), bool(flip)),
    )


def _square(size=16, top=4, left=4, side=3):
    image = torch.zeros(1, 1, size, size)
    image[..., top : top + side, left : left + side] = 1.0
    return image


def test_batch_augment_with_zero_ranges_equals_the_eval_transform():
    torch.manual_seed(0)
    raw = [torch.rand(1, 30, 50), torch.rand(1, 24, 24), torch.rand(1, 50, 20)]
    for normalization in (Normalization(), XRV_NORMALIZATION):
        expected = torch.stack([eval_transform(24, normalization=normalization)(r) for r in raw])
        fitted = torch.stack([FitSquare(24)(r) for r in raw])
        for seed in range(3):
            out = BatchAugment(**NONE, normalization=normalization)(fitted, _gen(seed))
            assert torch.equal(out, expected)


def test_whole_pixel_translation_moves_a_bright_square():
    image = _square()
    out = BatchAugment(normalization=RAW).apply(image, _params(translate=(2, -3)))
    expected = torch.zeros_like(image)
    expected[..., 1:4, 6:9] = 1.0  # 3 rows up, 2 columns right
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_quarter_turn_and_flip_move_pixels_where_expected():
    image = torch.zeros(1, 1, 9, 9)
    image[..., 4, 7] = 1.0  # right of the centre
    turned = BatchAugment(normalization=RAW).apply(image, _params(angle=90.0))
    expected = torch.zeros_like(image)
    expected[..., 7, 4] = 1.0  # a positive angle turns clockwise (y down): below the centre
    torch.testing.assert_close(turned, expected, atol=1e-5, rtol=0)
    image = torch.rand(2, 1, 8, 8)
    flipped = BatchAugment(hflip=True, normalization=RAW).apply(image, _params(2, flip=True))
    assert torch.equal(flipped, image.flip(-1))


def test_affine_matches_torchvision_for_given_parameters():
    torch.manual_seed(1)
    images = torch.rand(3, 1, 20, 20)
    cases = [(4.0, (1, -2), 1.0), (-3.0, (0, 0), 1.04), (30.0, (3, 1), 0.9)]
    params = AugmentParams(
        angle=torch.tensor([c[0] for c in cases], dtype=torch.float64),
        translate=torch.tensor([c[1] for c in cases], dtype=torch.float64),
        scale=torch.tensor([c[2] for c in cases], dtype=torch.float64),
        brightness=torch.ones(3, dtype=torch.float64),
        contrast=torch.ones(3, dtype=torch.float64),
        brightness_first=torch.ones(3, dtype=torch.bool),
        flip=torch.zeros(3, dtype=torch.bool),
    )
    out = BatchAugment(normalization=RAW).apply(images, params)
    for image, got, (angle, shift, scale) in zip(images, out, cases, strict=True):
        expected = v2.functional.affine(
            image,
            angle=angle,
            translate=list(shift),
            scale=scale,
            shear=[0.0, 0.0],
            interpolation=v2.InterpolationMode.BILINEAR,
        )  # no fill: zeros outside, as BatchAugment
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("brightness_first", [True, False])
def test_brightness_and_contrast_match_torchvision(brightness_first):
    torch.manual_seed(2)
    images = torch.rand(2, 1, 12, 12) * 0.9 + 0.1
    b, c = 1.5, 0.75  # large factors, so the clamps take part
    params = _params(2, brightness=b, contrast=c, brightness_first=brightness_first)
    out = BatchAugment(normalization=RAW).apply(images, params)
    F = v2.functional
    for image, got in zip(images, out, strict=True):
        if brightness_first:
            expected = F.adjust_contrast(F.adjust_brightness(image, b), c)
        else:
            expected = F.adjust_brightness(F.adjust_contrast(image, c), b)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    only = BatchAugment(normalization=RAW).apply(images, _params(2, contrast=c))
    torch.testing.assert_close(only[0], F.adjust_contrast(images[0], c), atol=1e-6, rtol=0)


def test_parameters_follow_the_ranges_and_differ_between_images():
    augment = BatchAugment(rotation=5.0, scale=(0.9, 1.2), translate=0.1, brightness=0.2)
    p = augment.sample(400, 40, _gen(3))
    assert p.angle.abs().max() <= 5.0 and p.angle.abs().max() > 4.5
    assert p.scale.min() >= 0.9 and p.scale.max() <= 1.2
    assert p.translate.abs().max() == 4.0 and torch.equal(p.translate, p.translate.round())
    assert p.brightness.min() >= 0.8 and p.brightness.max() <= 1.2
    assert p.contrast.min() >= 0.9 and p.contrast.max() <= 1.1  # the default 0.1
    assert 150 < int(p.brightness_first.sum()) < 250 and not p.flip.any()  # hflip off
    assert len(set(p.angle.tolist())) == 400 and len(set(p.scale.tolist())) == 400
    assert 150 < int(BatchAugment(hflip=True).sample(400, 40, _gen(3)).flip.sum()) < 250
    # a spread above 1 keeps the factor >= 0, as ColorJitter does
    assert BatchAugment(contrast=1.5).sample(100, 8, _gen(4)).contrast.min() >= 0.0


def test_same_seed_same_batch_other_seed_other_batch_and_normalised_range():
    torch.manual_seed(5)
    images = torch.rand(6, 1, 32, 32)
    augment = BatchAugment(hflip=True)
    a, b, other = augment(images, _gen(7)), augment(images, _gen(7)), augment(images, _gen(8))
    assert torch.equal(a, b) and not torch.equal(a, other)
    assert a.min() >= -2.0 and a.max() <= 2.0  # clamped to [0, 1], then normalised
    # images of one batch get different jitter: same input, different outputs
    same = augment(images[:1].expand(4, -1, -1, -1).contiguous(), _gen(9))
    assert all(not torch.equal(same[0], same[k]) for k in range(1, 4))
    # the global generator is neither used nor moved
    state = torch.random.get_rng_state()
    augment(images, _gen(7))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_batch_augment_refuses_what_it_cannot_augment():
    with pytest.raises(ValueError, match=r"\(B, 1, S, S\)"):
        BatchAugment()(torch.rand(1, 8, 8), _gen())
    with pytest.raises(ValueError, match="float"):
        BatchAugment()(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), _gen())
