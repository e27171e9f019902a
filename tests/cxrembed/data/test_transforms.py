"""Square fitting (letterbox / crop), quantisation, and the radiograph transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrembed.data.square import dequantize, fit_square, quantize
from cxrembed.data.transforms import (
    XRV_NORMALIZATION,
    FitSquare,
    Normalization,
    eval_transform,
    train_transform,
)


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
